//! Markdown (GitHub-flavoured): renders on a code host. Log values are escaped so that they stay
//! text: Markdown punctuation gets a backslash, `<`, `>` and `&` become entities (code hosts pass
//! some inline HTML through), line breaks inside a cell become spaces, control and bidi
//! characters are shown as escapes ([`crate::text::visible`]), and a bare URL is broken up
//! (`https\://`, `www\.`) so that it is not turned into a link.

use std::fmt::Write as _;

use super::{count_text, header_rows};
use crate::report::{Report, Table, Value};

/// Escapes text for a Markdown paragraph or table cell.
pub fn escape(s: &str) -> String {
    let flat = s.replace(['\n', '\r'], " ");
    let shown = crate::text::visible(&flat);
    let mut out = String::with_capacity(shown.len());
    for (i, ch) in shown.char_indices() {
        let rest = &shown[i..];
        match ch {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            // GitHub links bare URLs (`scheme://`, `www.`); an escaped character breaks the match.
            ':' if rest.starts_with("://") => out.push_str("\\:"),
            '.' if i >= 3 && shown.as_bytes()[i - 3..i].eq_ignore_ascii_case(b"www") => out.push_str("\\."),
            // Inline syntax only: values sit in table cells and paragraphs, never at a block's start.
            // With `[` and `]` escaped, `(` and `!` cannot form a link or an image.
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | '$' => {
                out.push('\\');
                out.push(ch);
            }
            c => out.push(c),
        }
    }
    out
}

fn cell(v: &Value) -> String {
    match v {
        Value::Text(s) => escape(s),
        other => other.to_string(),
    }
}

fn table(out: &mut String, t: &Table) {
    let _ = writeln!(out, "### {}\n", escape(&t.title));
    if !t.explanation.is_empty() {
        let _ = writeln!(out, "{}\n", escape(&t.explanation));
    }
    if t.rows.is_empty() {
        out.push_str("*No rows in this period.*\n\n");
        return;
    }
    let numeric: Vec<bool> = (0..t.columns.len())
        .map(|i| {
            t.rows.iter().any(|r| r[i].is_number()) && t.rows.iter().all(|r| r[i].is_number() || r[i] == Value::Null)
        })
        .collect();
    let _ = writeln!(out, "| {} |", t.columns.iter().map(|c| escape(c)).collect::<Vec<_>>().join(" | "));
    let _ =
        writeln!(out, "|{}|", numeric.iter().map(|n| if *n { "---:" } else { "---" }).collect::<Vec<_>>().join("|"));
    for row in &t.rows {
        let _ = writeln!(out, "| {} |", row.iter().map(cell).collect::<Vec<_>>().join(" | "));
    }
    let _ = writeln!(out, "\n{} row{}\n", t.rows.len(), if t.rows.len() == 1 { "" } else { "s" });
}

/// The whole report as Markdown.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", escape(&report.header.title));
    out.push_str("| | |\n|---|---|\n");
    for (label, value) in header_rows(report) {
        let _ = writeln!(out, "| {} | {} |", escape(label), escape(&value));
    }
    out.push('\n');
    if report.header.events == 0 {
        out.push_str("**No events in this period.** Every section below is empty; check that collection ran.\n\n");
    }
    for (n, s) in report.sections.iter().enumerate() {
        let _ = writeln!(out, "## {}. {}\n", n + 1, escape(&s.title));
        if !s.controls.is_empty() {
            let _ = writeln!(out, "*Evidence for: {}*\n", escape(&s.controls));
        }
        if !s.explanation.is_empty() {
            let _ = writeln!(out, "{}\n", escape(&s.explanation));
        }
        if let Some(c) = &s.count {
            let _ = writeln!(out, "**{}**\n", escape(&count_text(c)));
        }
        for t in &s.tables {
            table(&mut out, t);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_values_stay_text() {
        assert_eq!(escape("<script>alert(1)</script>"), "&lt;script&gt;alert(1)&lt;/script&gt;");
        assert_eq!(escape("a|b\nc"), "a\\|b c");
        assert_eq!(escape("[x](javascript:y)"), "\\[x\\](javascript:y)");
        assert_eq!(escape("2026-09-01T08:00:00Z dana@acme.example"), "2026-09-01T08:00:00Z dana@acme.example");
        assert_eq!(escape("**bold** `code`"), "\\*\\*bold\\*\\* \\`code\\`");
        // Regression (issue 19): bare URLs were linked and bidi overrides passed through.
        assert_eq!(escape("see https://evil.example/x"), "see https\\://evil.example/x");
        assert_eq!(escape("www.evil.example"), "www\\.evil.example");
        assert_eq!(escape("a\u{202E}b"), "a\\\\u{202e}b");
    }
}
