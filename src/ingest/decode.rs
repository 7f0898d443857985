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
//! Guarantee: memory is bounded by the largest single entry (or NDJSON line), never by the file.
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
}

/// An entry the structural scanner is still collecting.
#[derive(Debug)]
struct Pending {
    text: Vec<u8>,
    line: u64,
    truncated: bool,
}

/// `record_depth` inside a page object after its entries: nothing there is an entry.
const SKIP: usize = usize::MAX;

/// Keys whose array value holds the entries in a Torq API page.
const PAGE_KEYS: [&[u8]; 2] = [b"audit_logs", b"activity_logs"];

/// Calls `emit` once per entry in `input`. Stops early if `emit` returns an error.
pub fn split_records<R: BufRead>(
    mut input: R,
    mut emit: impl FnMut(RawRecord<'_>) -> io::Result<()>,
) -> io::Result<()> {
    // Choose NDJSON (line-by-line) or structural scanning from the first line. A file is NDJSON
    // when its first line is a whole JSON value, or when its second line starts a new object:
    // then a broken first line still costs only itself.
    let mut first = Vec::new();
    let mut line_no = 0u64;
    // Skip leading blank lines, keeping the count right.
    loop {
        first.clear();
        if input.read_until(b'\n', &mut first)? == 0 {
            return Ok(());
        }
        line_no += 1;
        if !is_blank(&first) {
            break;
        }
    }
    let lead = first.iter().copied().find(|b| !b.is_ascii_whitespace());
    let first_is_whole = lead == Some(b'{') && {
        let mut probe = Scanner::new(line_no);
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
        split_lines(first, line_no, input, &mut emit)
    } else {
        let mut scanner = Scanner::new(line_no);
        scanner.feed(&first, &mut emit)?;
        loop {
            let buf = input.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            let n = buf.len();
            scanner.feed(buf, &mut emit)?;
            input.consume(n);
        }
        scanner.finish(&mut emit)
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|b| b.is_ascii_whitespace())
}

/// NDJSON: every non-blank line is an entry, except a line holding an API page, which is opened.
/// Lines are split inside the reader's buffer (SIMD `memchr`) and handed on from there; only a
/// line that straddles two buffer fills is copied.
fn split_lines<R: BufRead>(
    first: Vec<u8>,
    mut line_no: u64,
    mut input: R,
    emit: &mut impl FnMut(RawRecord<'_>) -> io::Result<()>,
) -> io::Result<()> {
    one_line(&first, line_no, emit)?;
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            if !carry.is_empty() {
                one_line(&carry, line_no + 1, emit)?;
            }
            return Ok(());
        }
        let n = buf.len();
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', buf) {
            line_no += 1;
            if carry.is_empty() {
                one_line(&buf[start..end], line_no, emit)?;
            } else {
                carry.extend_from_slice(&buf[start..end]);
                one_line(&carry, line_no, emit)?;
                carry.clear();
            }
            start = end + 1;
        }
        carry.extend_from_slice(&buf[start..]);
        input.consume(n);
    }
}

fn one_line(line: &[u8], line_no: u64, emit: &mut impl FnMut(RawRecord<'_>) -> io::Result<()>) -> io::Result<()> {
    if is_blank(line) {
        return Ok(());
    }
    let text = trim(line);
    if looks_like_page(text) {
        // A page on one line: reuse the scanner, which opens the page's array.
        let mut scanner = Scanner::new(line_no);
        scanner.feed(text, emit)?;
        scanner.finish(emit)
    } else {
        emit(RawRecord { text, line: line_no, truncated: false })
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
    fn new(line: u64) -> Self {
        Scanner {
            stack: Vec::new(),
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
        self.current = Some(Pending { text: Vec::new(), line: self.line, truncated: false });
    }

    fn end_record(&mut self, emit: &mut impl FnMut(RawRecord<'_>) -> io::Result<()>) -> io::Result<()> {
        if let Some(rec) = self.current.take() {
            let text = trim(&rec.text);
            if !text.is_empty() {
                emit(RawRecord { text, line: rec.line, truncated: rec.truncated })?;
            }
        }
        Ok(())
    }

    fn feed(&mut self, chunk: &[u8], emit: &mut impl FnMut(RawRecord<'_>) -> io::Result<()>) -> io::Result<()> {
        let mut i = 0;
        while i < chunk.len() {
            // Fast path: inside an entry's string, copy up to the next quote or backslash at once.
            if self.in_string && !self.escape {
                let rest = &chunk[i..];
                let stop = rest.iter().position(|&b| b == b'"' || b == b'\\' || b == b'\n').unwrap_or(rest.len());
                if stop > 0 {
                    if let Some(rec) = self.current.as_mut() {
                        rec.text.extend_from_slice(&rest[..stop]);
                    }
                    if self.collecting_key {
                        self.key.extend_from_slice(&rest[..stop]);
                    }
                    i += stop;
                    continue;
                }
            }
            let b = chunk[i];
            i += 1;
            self.step(b, emit)?;
        }
        Ok(())
    }

    fn step(&mut self, b: u8, emit: &mut impl FnMut(RawRecord<'_>) -> io::Result<()>) -> io::Result<()> {
        if b == b'\n' {
            self.line += 1;
        }
        let depth = self.stack.len();
        let at_record_level = depth == self.record_depth;

        if self.in_string {
            self.push(b);
            if self.collecting_key && (b != b'"' || self.escape) {
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
                self.stack.pop();
                if self.stack.is_empty() {
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
                self.stack.push(Container::Array);
                self.record_depth = 1;
                return Ok(());
            }
            self.begin_record();
            if self.record_depth == 0 && b == b'{' {
                // A top-level object may be an entry or an API page; watch its keys.
                self.expect_key = true;
                self.last_key.clear();
            }
        }

        // A page's array opens: drop the page object's text collected so far and make the
        // array's elements the entries.
        if b == b'['
            && depth == 1
            && self.record_depth == 0
            && self.stack[0] == Container::Object
            && PAGE_KEYS.contains(&self.last_key.as_slice())
        {
            self.current = None;
            self.stack.push(Container::Array);
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
            b'{' => self.stack.push(Container::Object),
            b'[' => self.stack.push(Container::Array),
            b'}' | b']' => {
                self.stack.pop();
                if self.stack.is_empty() {
                    self.top_level_value_closed();
                    // A top-level entry is complete (nothing is collected after a page).
                    self.end_record(emit)?;
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
            rec.text.push(b);
        }
    }

    fn finish(&mut self, emit: &mut impl FnMut(RawRecord<'_>) -> io::Result<()>) -> io::Result<()> {
        // An entry still open at the end of input was cut short. A complete entry whose
        // array never closed (`[{...}` then EOF) is whole and kept.
        let cut = self.in_string || self.stack.len() > self.record_depth;
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
        split_records(input.as_bytes(), |r| {
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
        split_records(reader, |r| {
            got.push(String::from_utf8(r.text.to_vec()).unwrap());
            Ok(())
        })
        .unwrap();
        assert_eq!(got, whole);
    }
}
