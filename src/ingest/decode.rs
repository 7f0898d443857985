//! Splits an input byte stream into one raw text per log entry, without holding the input in memory.
//!
//! Torq entries arrive in four shapes, all handled here, each optionally gzip-compressed (that is
//! undone before this module, see [`super::source`]):
//!
//! - a JSON array of entries (the "Collect Torq audit logs" template),
//! - an API page `{"audit_logs": [...], "next_page_token": "..."}` (also `activity_logs`),
//!   pretty-printed or several in a row,
//! - NDJSON, one entry (or one API page) a line,
//! - a single pretty-printed entry or several concatenated.
//!
//! Guarantee: memory is bounded by `max_entry` (`--max-entry-size`) and the read buffer, never by
//! the file or its layout: a one-line minified array or page is scanned element by element like a
//! pretty one, and an entry (or NDJSON line) past `max_entry` is handed on as its first
//! [`KEEP_OF_OVERSIZED`] bytes and its size, to be rejected, never held whole.
//! Entries are not parsed here, only delimited, so one broken entry costs only itself: an NDJSON
//! line that is not JSON is one rejection and the next line reads normally. In the array and page
//! shapes a structural break (an unclosed string or bracket) swallows the rest of the file into
//! one rejected "truncated" record, because nothing after it can be delimited with confidence.

use std::io::{self, BufRead};

/// One delimited entry: its raw JSON text (borrowed for the duration of the `emit` call, so
/// NDJSON lines are not copied) and the 1-based line where it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRecord<'a> {
    pub text: &'a [u8],
    pub line: u64,
    /// Set when the input ended inside this record.
    pub truncated: bool,
    /// Set when the entry was larger than `max_entry`: `text` is then only its first
    /// [`KEEP_OF_OVERSIZED`] bytes, and `size` its whole size.
    pub oversized: bool,
    pub size: u64,
    /// Set on an empty record that reports an object read as an API page although it named
    /// `id` or `timestamp` after its `audit_logs` array: its elements were taken as entries,
    /// and the object's own fields were not kept (holding them would mean holding the page).
    pub misread_page: bool,
}

/// What is kept of an entry over the size limit, for the quarantine.
pub const KEEP_OF_OVERSIZED: usize = 1024;

/// How much of the first line is read to choose between NDJSON and structural scanning; a
/// longer first line (a minified array or page) is scanned structurally from the start.
const PROBE_BYTES: usize = 1 << 20;

/// Nesting tracked exactly; deeper levels are only counted (no entry that deep parses anyway).
const MAX_TRACKED_DEPTH: usize = 256;

/// An entry the structural scanner is still collecting.
#[derive(Debug)]
struct Pending {
    text: Vec<u8>,
    line: u64,
    truncated: bool,
    /// Bytes of the entry seen so far (`text` stops growing past the limit).
    size: u64,
    oversized: bool,
}

impl Pending {
    fn push(&mut self, bytes: &[u8], max_entry: usize) {
        self.size += bytes.len() as u64;
        if self.oversized {
            return;
        }
        if self.text.len() + bytes.len() > max_entry {
            self.oversized = true;
            let keep = KEEP_OF_OVERSIZED.min(max_entry);
            self.text.extend_from_slice(&bytes[..bytes.len().min(keep.saturating_sub(self.text.len()))]);
            self.text.truncate(keep);
            self.text.shrink_to_fit();
        } else {
            self.text.extend_from_slice(bytes);
        }
    }
}

/// `record_depth` inside a page object after its entries: nothing there is an entry.
const SKIP: usize = usize::MAX;

/// Keys whose array value holds the entries in a Torq API page.
const PAGE_KEYS: [&[u8]; 2] = [b"audit_logs", b"activity_logs"];

/// Keys only an entry has: an object naming one before its `audit_logs` array is not a page.
const ENTRY_KEYS: [&[u8]; 2] = [b"id", b"timestamp"];

/// Longest key tracked (longer ones are none of the above).
const MAX_KEY: usize = 32;

/// Calls `emit` once per entry in `input`; entries over `max_entry` bytes come as
/// [`RawRecord::oversized`]. Stops early if `emit` returns an error.
pub fn split_records<R: BufRead>(
    mut input: R,
    max_entry: usize,
    mut emit: impl FnMut(RawRecord<'_>) -> io::Result<()>,
) -> io::Result<()> {
    // Choose NDJSON (line-by-line) or structural scanning from the first line. A file is NDJSON
    // when its first line is a whole JSON value, or when its second line starts a new object:
    // then a broken first line still costs only itself.
    let mut first = Vec::new();
    let mut line_no = 0u64;
    // Skip leading blank lines, keeping the count right.
    let complete = loop {
        first.clear();
        let (n, complete) = read_line_capped(&mut input, &mut first, PROBE_BYTES)?;
        if n == 0 {
            return Ok(());
        }
        if complete {
            line_no += 1;
        }
        if !is_blank(&first) || !complete {
            break complete;
        }
    };
    let lead = first.iter().copied().find(|b| !b.is_ascii_whitespace());
    if !complete && matches!(lead, Some(b'[' | b'{')) {
        // A first line longer than the probe: a minified array or page, or one huge entry.
        let mut scanner = Scanner::new(line_no + 1, max_entry);
        scanner.feed(&first, &mut emit)?;
        return scan_rest(scanner, input, &mut emit);
    }
    if !complete {
        // Not JSON structure: NDJSON whose first line is too long (it will be rejected).
        return split_lines(None, first, line_no, max_entry, input, &mut emit);
    }
    let first_is_whole = lead == Some(b'{') && {
        let mut probe = Scanner::new(line_no, usize::MAX);
        probe.feed(&first, &mut |_| Ok(()))?;
        probe.balanced_after_one_value()
    };
    let ndjson = lead != Some(b'[')
        && (lead != Some(b'{') || first_is_whole || {
            // Look at the second non-blank line without consuming it.
            let buf = input.fill_buf()?;
            let next = buf.iter().copied().find(|b| !b.is_ascii_whitespace());
            next == Some(b'{')
        });
    if ndjson {
        split_lines(Some(&first), Vec::new(), line_no, max_entry, input, &mut emit)
    } else {
        let mut scanner = Scanner::new(line_no, max_entry);
        scanner.feed(&first, &mut emit)?;
        scan_rest(scanner, input, &mut emit)
    }
}

/// Feeds the rest of `input` to `scanner`, buffer by buffer.
fn scan_rest<R: BufRead>(
    mut scanner: Scanner,
    mut input: R,
    emit: &mut impl FnMut(RawRecord<'_>) -> io::Result<()>,
) -> io::Result<()> {
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let n = buf.len();
        scanner.feed(buf, emit)?;
        input.consume(n);
    }
    scanner.finish(emit)
}

/// Reads up to and including the next newline, but at most `cap` bytes; returns the bytes read
/// and whether the line ended (newline or end of input) within them.
fn read_line_capped<R: BufRead>(input: &mut R, out: &mut Vec<u8>, cap: usize) -> io::Result<(usize, bool)> {
    let mut read = 0;
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok((read, true));
        }
        let room = cap - out.len();
        let (take, done) = match memchr::memchr(b'\n', &buf[..buf.len().min(room)]) {
            Some(i) => (i + 1, true),
            None => (buf.len().min(room), false),
        };
        out.extend_from_slice(&buf[..take]);
        input.consume(take);
        read += take;
        if done {
            return Ok((read, true));
        }
        if out.len() >= cap {
            return Ok((read, false));
        }
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|b| b.is_ascii_whitespace())
}

/// NDJSON: every non-blank line is an entry, except a line holding an API page, which is opened.
/// Lines are split inside the reader's buffer (SIMD `memchr`) and handed on from there; only a
/// line that straddles two buffer fills is copied. A line that grows past `max_entry` while it
/// straddles is scanned structurally instead (a minified page on one line is opened element by
/// element; anything else becomes one oversized entry), so no line is ever held whole.
///
/// `first` is a whole first line already read (line `line_no`); `carry` is the start of line
/// `line_no + 1`, not yet ended.
fn split_lines<R: BufRead>(
    first: Option<&[u8]>,
    mut carry: Vec<u8>,
    mut line_no: u64,
    max_entry: usize,
    mut input: R,
    emit: &mut impl FnMut(RawRecord<'_>) -> io::Result<()>,
) -> io::Result<()> {
    if let Some(first) = first {
        one_line(first, line_no, max_entry, emit)?;
    }
    // A long line being scanned structurally, until its newline outside any value.
    let mut long_line: Option<Scanner> = None;
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            if let Some(mut scanner) = long_line.take() {
                scanner.finish(emit)?;
            } else if !carry.is_empty() {
                one_line(&carry, line_no + 1, max_entry, emit)?;
            }
            return Ok(());
        }
        let n = buf.len();
        let mut start = 0;
        if let Some(mut scanner) = long_line.take() {
            match scanner.feed_to_line_end(buf, emit)? {
                Some(used) => {
                    scanner.finish(emit)?;
                    line_no = scanner.line - 1;
                    start = used;
                }
                None => {
                    long_line = Some(scanner);
                    input.consume(n);
                    continue;
                }
            }
        }
        let offset = start;
        for end in memchr::memchr_iter(b'\n', &buf[offset..]).map(|e| e + offset) {
            line_no += 1;
            if carry.is_empty() {
                one_line(&buf[start..end], line_no, max_entry, emit)?;
            } else {
                carry.extend_from_slice(&buf[start..end]);
                one_line(&carry, line_no, max_entry, emit)?;
                carry.clear();
            }
            start = end + 1;
        }
        carry.extend_from_slice(&buf[start..]);
        input.consume(n);
        if carry.len() > max_entry.max(PROBE_BYTES) {
            let mut scanner = Scanner::new(line_no + 1, max_entry);
            scanner.feed(&carry, emit)?;
            carry = Vec::new();
            long_line = Some(scanner);
        }
    }
}

fn one_line(
    line: &[u8],
    line_no: u64,
    max_entry: usize,
    emit: &mut impl FnMut(RawRecord<'_>) -> io::Result<()>,
) -> io::Result<()> {
    if is_blank(line) {
        return Ok(());
    }
    let text = trim(line);
    if looks_like_page(text) {
        // A page on one line: reuse the scanner, which opens the page's array.
        let mut scanner = Scanner::new(line_no, max_entry);
        scanner.feed(text, emit)?;
        scanner.finish(emit)
    } else if text.len() > max_entry {
        let keep = KEEP_OF_OVERSIZED.min(max_entry).min(text.len());
        emit(RawRecord {
            text: &text[..keep],
            line: line_no,
            truncated: false,
            oversized: true,
            size: text.len() as u64,
            misread_page: false,
        })
    } else {
        emit(RawRecord {
            text,
            line: line_no,
            truncated: false,
            oversized: false,
            size: text.len() as u64,
            misread_page: false,
        })
    }
}

fn trim(text: &[u8]) -> &[u8] {
    let start = text.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(text.len());
    let end = text.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &text[start..end]
}

/// Cheap pre-check before scanning a line as a page: a page names one of [`PAGE_KEYS`] as a
/// quoted string. It runs on every NDJSON line, so it is one SIMD substring search over the bytes
/// (comparing a window at every byte once cost a third of the ingest's CPU time; std's `str`
/// search, after a UTF-8 check, a tenth).
fn looks_like_page(text: &[u8]) -> bool {
    static LOGS_KEY_END: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"_logs\""));
    if text.first() != Some(&b'{') {
        return false;
    }
    LOGS_KEY_END.find(text).is_some()
        && PAGE_KEYS.iter().any(|key| {
            let quoted = [b"\"", *key, b"\""].concat();
            memchr::memmem::find(text, &quoted).is_some()
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    Array,
    Object,
}

/// A byte-at-a-time JSON structure tracker. It knows nesting, strings and, inside a top-level
/// object, which string is a key, which is all it needs to find entries and open API pages.
struct Scanner {
    stack: Vec<Container>,
    /// Levels below [`MAX_TRACKED_DEPTH`], counted only.
    untracked_depth: u64,
    max_entry: usize,
    /// The top-level object being read named `id` or `timestamp` before any array: it is an
    /// entry, so an `audit_logs` array in it is data, not a page.
    entry_keys_seen: bool,
    /// Depth (stack length) at which values are entries: 0 for top-level values, 1 inside a
    /// top-level array, 2 inside a page's array.
    record_depth: usize,
    in_string: bool,
    escape: bool,
    line: u64,
    /// The entry being collected, when inside one.
    current: Option<Pending>,
    /// Inside a top-level object: whether the next string is a key, and the last key seen.
    expect_key: bool,
    key: Vec<u8>,
    collecting_key: bool,
    last_key: Vec<u8>,
    /// Top-level values completed so far (used by the NDJSON probe).
    values_done: usize,
}

impl Scanner {
    fn new(line: u64, max_entry: usize) -> Self {
        Scanner {
            stack: Vec::new(),
            untracked_depth: 0,
            max_entry,
            entry_keys_seen: false,
            record_depth: 0,
            in_string: false,
            escape: false,
            line,
            current: None,
            expect_key: false,
            key: Vec::new(),
            collecting_key: false,
            last_key: Vec::new(),
            values_done: 0,
        }
    }

    fn balanced_after_one_value(&self) -> bool {
        self.values_done == 1 && self.stack.is_empty() && !self.in_string
    }

    fn begin_record(&mut self) {
        self.current = Some(Pending { text: Vec::new(), line: self.line, truncated: false, size: 0, oversized: false });
    }

    fn end_record(&mut self, emit: &mut impl FnMut(RawRecord<'_>) -> io::Result<()>) -> io::Result<()> {
        if let Some(rec) = self.current.take() {
            let text = trim(&rec.text);
            if !text.is_empty() {
                let size = if rec.oversized { rec.size } else { text.len() as u64 };
                let (truncated, oversized) = (rec.truncated, rec.oversized);
                emit(RawRecord { text, line: rec.line, truncated, oversized, size, misread_page: false })?;
            }
        }
        Ok(())
    }

    fn depth(&self) -> usize {
        self.stack.len() + self.untracked_depth as usize
    }

    fn open(&mut self, c: Container) {
        if self.stack.len() < MAX_TRACKED_DEPTH {
            self.stack.push(c);
        } else {
            self.untracked_depth += 1;
        }
    }

    fn close(&mut self) {
        if self.untracked_depth > 0 {
            self.untracked_depth -= 1;
        } else {
            self.stack.pop();
        }
    }

    fn feed(&mut self, chunk: &[u8], emit: &mut impl FnMut(RawRecord<'_>) -> io::Result<()>) -> io::Result<()> {
        self.feed_until(chunk, false, emit).map(|_| ())
    }

    /// Feeds `chunk` up to the end of the current line, if a newline outside any value ends it
    /// there: returns the bytes used, or `None` when the whole chunk was used.
    fn feed_to_line_end(
        &mut self,
        chunk: &[u8],
        emit: &mut impl FnMut(RawRecord<'_>) -> io::Result<()>,
    ) -> io::Result<Option<usize>> {
        self.feed_until(chunk, true, emit)
    }

    fn feed_until(
        &mut self,
        chunk: &[u8],
        stop_at_line_end: bool,
        emit: &mut impl FnMut(RawRecord<'_>) -> io::Result<()>,
    ) -> io::Result<Option<usize>> {
        let mut i = 0;
        while i < chunk.len() {
            // Fast path: inside an entry's string, copy up to the next quote or backslash at once.
            if self.in_string && !self.escape {
                let rest = &chunk[i..];
                let stop = rest.iter().position(|&b| b == b'"' || b == b'\\' || b == b'\n').unwrap_or(rest.len());
                if stop > 0 {
                    if let Some(rec) = self.current.as_mut() {
                        rec.push(&rest[..stop], self.max_entry);
                    }
                    if self.collecting_key && self.key.len() < MAX_KEY {
                        self.key.extend_from_slice(&rest[..stop.min(MAX_KEY)]);
                    }
                    i += stop;
                    continue;
                }
            }
            // Fast path: a top-level scalar (or garbage) runs to the next structural byte.
            if !self.in_string && self.current.is_some() && self.depth() == 0 {
                let rest = &chunk[i..];
                let stop = rest
                    .iter()
                    .position(|&b| {
                        matches!(b, b'"' | b'{' | b'[' | b'}' | b']' | b',' | b'\\') || b.is_ascii_whitespace()
                    })
                    .unwrap_or(rest.len());
                if stop > 0 {
                    if let Some(rec) = self.current.as_mut() {
                        rec.push(&rest[..stop], self.max_entry);
                    }
                    i += stop;
                    continue;
                }
            }
            let b = chunk[i];
            i += 1;
            self.step(b, emit)?;
            if stop_at_line_end && b == b'\n' && self.depth() == 0 && !self.in_string {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    fn step(&mut self, b: u8, emit: &mut impl FnMut(RawRecord<'_>) -> io::Result<()>) -> io::Result<()> {
        if b == b'\n' {
            self.line += 1;
        }
        let depth = self.depth();
        let at_record_level = depth == self.record_depth;

        if self.in_string {
            self.push(b);
            if self.collecting_key && (b != b'"' || self.escape) && self.key.len() < MAX_KEY {
                self.key.push(b);
            }
            if self.escape {
                self.escape = false;
            } else if b == b'\\' {
                self.escape = true;
            } else if b == b'"' {
                self.in_string = false;
                if self.collecting_key {
                    self.collecting_key = false;
                    self.last_key = std::mem::take(&mut self.key);
                    if ENTRY_KEYS.contains(&self.last_key.as_slice()) {
                        self.entry_keys_seen = true;
                    }
                }
            }
            return Ok(());
        }

        match b {
            b',' if at_record_level && self.record_depth > 0 => {
                // Separator between entries of the container: not part of any entry.
                self.end_record(emit)?;
                return Ok(());
            }
            b']' | b'}' if depth == self.record_depth && self.record_depth > 0 => {
                // The container of entries closes.
                self.end_record(emit)?;
                self.close();
                if self.depth() == 0 {
                    self.top_level_value_closed();
                } else {
                    // A page's array closed: the rest of the page object (its token) is skipped.
                    self.record_depth = SKIP;
                }
                return Ok(());
            }
            _ => {}
        }

        if at_record_level && self.current.is_none() && !b.is_ascii_whitespace() {
            if self.record_depth == 0 && b == b'[' {
                // A top-level array: its elements are the entries.
                self.open(Container::Array);
                self.record_depth = 1;
                return Ok(());
            }
            self.begin_record();
            if self.record_depth == 0 && b == b'{' {
                // A top-level object may be an entry or an API page; watch its keys.
                self.expect_key = true;
                self.last_key.clear();
                self.entry_keys_seen = false;
            }
        }

        // A page's array opens: drop the page object's text collected so far and make the
        // array's elements the entries.
        if b == b'['
            && depth == 1
            && self.record_depth == 0
            && self.stack[0] == Container::Object
            && PAGE_KEYS.contains(&self.last_key.as_slice())
            && !self.entry_keys_seen
        {
            self.current = None;
            self.open(Container::Array);
            self.record_depth = 2;
            self.last_key.clear();
            return Ok(());
        }

        self.push(b);
        match b {
            b'"' => {
                self.in_string = true;
                if depth == 1 && self.stack[0] == Container::Object && self.expect_key {
                    self.collecting_key = true;
                    self.key.clear();
                    self.expect_key = false;
                }
            }
            b'{' => self.open(Container::Object),
            b'[' => self.open(Container::Array),
            b'}' | b']' => {
                self.close();
                if self.depth() == 0 {
                    let misread_page = self.record_depth == SKIP && self.entry_keys_seen;
                    self.top_level_value_closed();
                    // A top-level entry is complete (nothing is collected after a page).
                    self.end_record(emit)?;
                    if misread_page {
                        let line = self.line;
                        emit(RawRecord { text: b"", line, truncated: false, oversized: false, size: 0, misread_page })?;
                    }
                }
            }
            b',' if depth == 1 && self.stack[0] == Container::Object => self.expect_key = true,
            b' ' | b'\t' | b'\r' | b'\n' if depth == 0 && self.current.is_some() => {
                // Whitespace ends a top-level scalar.
                self.end_record(emit)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn top_level_value_closed(&mut self) {
        self.values_done += 1;
        self.expect_key = false;
        self.record_depth = 0;
    }

    fn push(&mut self, b: u8) {
        if let Some(rec) = self.current.as_mut() {
            rec.push(&[b], self.max_entry);
        }
    }

    fn finish(&mut self, emit: &mut impl FnMut(RawRecord<'_>) -> io::Result<()>) -> io::Result<()> {
        // An entry still open at the end of input was cut short. A complete entry whose
        // array never closed (`[{...}` then EOF) is whole and kept.
        let cut = self.in_string || self.depth() > self.record_depth;
        if let Some(rec) = self.current.as_mut() {
            rec.truncated = cut;
        }
        self.end_record(emit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(input: &str) -> Vec<(String, u64, bool)> {
        let mut out = Vec::new();
        split_records(input.as_bytes(), usize::MAX, |r| {
            out.push((String::from_utf8(r.text.to_vec()).unwrap(), r.line, r.truncated));
            Ok(())
        })
        .unwrap();
        out
    }

    fn texts(input: &str) -> Vec<String> {
        split(input).into_iter().map(|(t, _, _)| t).collect()
    }

    #[test]
    fn ndjson_lines_are_entries() {
        let got = split("{\"id\":\"a\"}\n\n{\"id\":\"b\"}\n");
        assert_eq!(got, vec![("{\"id\":\"a\"}".into(), 1, false), ("{\"id\":\"b\"}".into(), 3, false)]);
    }

    #[test]
    fn ndjson_broken_line_costs_only_itself() {
        let got = texts("{\"id\":\"a\", \n{\"id\":\"b\"}\nnot json\n{\"id\":\"c\"}");
        assert_eq!(got, vec!["{\"id\":\"a\",", "{\"id\":\"b\"}", "not json", "{\"id\":\"c\"}"]);
    }

    #[test]
    fn array_elements_are_entries_with_lines() {
        let got = split("[\n  {\"id\": \"a,]}\"},\n  {\"id\": \"b\", \"x\": [1, {\"y\": 2}]}\n]\n");
        assert_eq!(
            got,
            vec![("{\"id\": \"a,]}\"}".into(), 2, false), ("{\"id\": \"b\", \"x\": [1, {\"y\": 2}]}".into(), 3, false)]
        );
    }

    #[test]
    fn array_scalars_are_entries_to_reject() {
        assert_eq!(texts("[1, \"two\", null, {\"id\":\"x\"}]"), vec!["1", "\"two\"", "null", "{\"id\":\"x\"}"]);
    }

    #[test]
    fn empty_inputs_give_nothing() {
        assert!(texts("").is_empty());
        assert!(texts("\n\n  \n").is_empty());
        assert!(texts("[]").is_empty());
        assert!(texts("{\"audit_logs\": [], \"next_page_token\": \"\"}").is_empty());
    }

    #[test]
    fn api_page_is_opened_pretty_or_on_one_line() {
        let pretty = "{\n  \"next_page_token\": \"t\",\n  \"audit_logs\": [\n    {\"id\": \"a\"},\n    {\"id\": \"b\"}\n  ]\n}\n";
        assert_eq!(split(pretty), vec![("{\"id\": \"a\"}".into(), 4, false), ("{\"id\": \"b\"}".into(), 5, false)]);
        let lines = "{\"audit_logs\":[{\"id\":\"a\"}],\"next_page_token\":\"x\"}\n{\"audit_logs\":[{\"id\":\"b\"}]}\n";
        assert_eq!(split(lines), vec![("{\"id\":\"a\"}".into(), 1, false), ("{\"id\":\"b\"}".into(), 2, false)]);
    }

    #[test]
    fn entry_with_nested_key_named_audit_logs_is_an_entry() {
        let got = texts("{\n \"id\": \"a\",\n \"extra_data\": {\"audit_logs\": [1]}\n}\n");
        assert_eq!(got, vec!["{\n \"id\": \"a\",\n \"extra_data\": {\"audit_logs\": [1]}\n}"]);
    }

    #[test]
    fn pretty_objects_concatenated_are_entries() {
        let got = texts("{\n \"id\": \"a\"\n}\n{\n \"id\": \"b\"\n}\n");
        assert_eq!(got, vec!["{\n \"id\": \"a\"\n}", "{\n \"id\": \"b\"\n}"]);
    }

    #[test]
    fn truncated_array_marks_last_entry() {
        let got = split("[{\"id\":\"a\"},\n{\"id\":\"b\", \"action\": \"Wor");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], ("{\"id\":\"a\"}".into(), 1, false));
        assert!(got[1].2, "last entry is truncated");
        assert_eq!(got[1].1, 2);
    }

    #[test]
    fn escaped_quotes_and_brackets_in_strings() {
        let got = texts(r#"[{"id":"a","n":"x\"]},{\\"}, {"id":"b"}]"#);
        assert_eq!(got, vec![r#"{"id":"a","n":"x\"]},{\\"}"#, r#"{"id":"b"}"#]);
    }

    #[test]
    fn huge_single_line_is_one_entry() {
        let big = "x".repeat(5_000_000);
        let input = format!("{{\"id\":\"a\",\"extra_data\":{{\"blob\":\"{big}\"}}}}\n{{\"id\":\"b\"}}\n");
        let got = texts(&input);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].len(), input.find('\n').unwrap());
    }

    #[test]
    fn chunk_boundaries_do_not_matter() {
        let input = "[\n{\"id\":\"a\\\"b\",\"t\":[1,2]},\n{\"id\":\"c\"}\n]";
        let whole = texts(input);
        // A reader that hands out one byte at a time.
        let reader = io::BufReader::with_capacity(1, input.as_bytes());
        let mut got = Vec::new();
        split_records(reader, usize::MAX, |r| {
            got.push(String::from_utf8(r.text.to_vec()).unwrap());
            Ok(())
        })
        .unwrap();
        assert_eq!(got, whole);
    }

    /// (text, line, oversized, size) of every entry, through a small read buffer.
    fn split_limited(input: &[u8], max_entry: usize) -> Vec<(Vec<u8>, u64, bool, u64)> {
        let mut out = Vec::new();
        let reader = io::BufReader::with_capacity(64 << 10, input);
        split_records(reader, max_entry, |r| {
            out.push((r.text.to_vec(), r.line, r.oversized, r.size));
            Ok(())
        })
        .unwrap();
        out
    }

    fn entries(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!(r#"{{"id":"e{i}","timestamp":"2026-09-01T00:00:00Z","pad":"{}"}}"#, "p".repeat(200)))
            .collect()
    }

    #[test]
    fn a_minified_array_is_split_element_by_element() {
        // Regression (issue 19): a one-line array was read whole by `read_until`.
        let items = entries(20_000); // ~5 MB on one line, past the first-line probe
        let input = format!("[{}]", items.join(","));
        let got = split_limited(input.as_bytes(), 4096);
        assert_eq!(got.len(), items.len());
        assert!(got.iter().all(|(_, line, oversized, _)| *line == 1 && !oversized));
        assert_eq!(got[7].0, items[7].as_bytes());
    }

    #[test]
    fn a_minified_page_on_a_later_ndjson_line_is_opened() {
        let page = format!(r#"{{"audit_logs":[{}],"next_page_token":""}}"#, entries(20_000).join(","));
        let input = format!("{}\n{page}\n{}\n", entries(1)[0], entries(1)[0]);
        let got = split_limited(input.as_bytes(), 4096);
        assert_eq!(got.len(), 20_002);
        assert!(got.iter().all(|(_, _, oversized, _)| !oversized));
        assert_eq!(got.last().unwrap().1, 3, "the line after the page keeps its number");
    }

    #[test]
    fn an_entry_over_the_limit_keeps_its_head_and_size() {
        let big = format!(r#"{{"id":"big","blob":"{}"}}"#, "x".repeat(3 << 20));
        let input = format!("{}\n{big}\n{}\n", entries(1)[0], entries(1)[0]);
        let got = split_limited(input.as_bytes(), 1 << 20);
        assert_eq!(got.len(), 3);
        let (text, line, oversized, size) = &got[1];
        assert!(*oversized);
        assert_eq!((*line, *size, text.len()), (2, big.len() as u64, KEEP_OF_OVERSIZED));
        assert!(!got[0].2 && !got[2].2);
        // The same entry inside an array.
        let got = split_limited(format!("[{big}, {}]", entries(1)[0]).as_bytes(), 1 << 20);
        assert_eq!((got[0].2, got[0].3, got[1].2), (true, big.len() as u64, false));
    }

    #[test]
    fn a_line_of_nul_bytes_is_one_oversized_entry() {
        let mut input = vec![0u8; 8 << 20];
        input.extend_from_slice(b"\n{\"id\":\"after\"}\n");
        let got = split_limited(&input, 1 << 20);
        assert_eq!(got.len(), 2);
        assert!(got[0].2);
        // The size counts the line's bytes (its newline may be counted with them).
        assert!((8 << 20..=(8 << 20) + 1).contains(&got[0].3), "{}", got[0].3);
        assert_eq!(got[1].0, br#"{"id":"after"}"#);
    }

    #[test]
    fn an_entry_with_its_own_audit_logs_array_is_an_entry() {
        // Regression (issue 19): such an entry was taken for an API page and dropped.
        let entry = r#"{"id":"a","timestamp":"2026-09-01T00:00:00Z","audit_logs":[{"id":"inner"}]}"#;
        assert_eq!(texts(&format!("{entry}\n")), vec![entry]);
        assert_eq!(texts(&format!("[{entry}]")), vec![entry]);
    }

    #[test]
    fn a_page_that_names_an_id_after_its_array_is_reported() {
        let input = r#"{"audit_logs":[{"id":"inner"}],"id":"outer","timestamp":"2026-09-01T00:00:00Z"}"#;
        let mut got = Vec::new();
        split_records(input.as_bytes(), usize::MAX, |r| {
            got.push((String::from_utf8(r.text.to_vec()).unwrap(), r.misread_page));
            Ok(())
        })
        .unwrap();
        assert_eq!(got, vec![(r#"{"id":"inner"}"#.to_string(), false), (String::new(), true)]);
        // A real page, with its token after the array, is not reported.
        let page = r#"{"audit_logs":[{"id":"a"}],"next_page_token":""}"#;
        assert_eq!(texts(page), vec![r#"{"id":"a"}"#]);
    }

    #[test]
    fn deep_nesting_is_counted_not_stored() {
        let input = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let got = split_limited(input.as_bytes(), 1 << 20);
        assert_eq!(got.len(), 1);
    }
}
