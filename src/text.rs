//! Log values are attacker-controlled text. What every output that shows them to a person or a
//! spreadsheet needs, in one place: control and bidi characters made visible (a terminal must
//! not run an escape sequence from a log), and formulas defused (a spreadsheet must not run
//! `=HYPERLINK(...)` from a log).

use std::borrow::Cow;

/// Characters that reorder or hide text (Trojan Source, CVE-2021-42574).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// The text with control characters (C0, DEL, C1) and bidi controls written as visible escapes:
/// `\n`, `\t`, `\r`, else `\u{1b}`. Text without any comes back borrowed.
pub fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || is_bidi_control(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Whether a spreadsheet would evaluate the text as a formula: it starts (after spaces) with
/// `=`, `+`, `-`, `@`, a tab, a line break, or a full-width sign.
pub fn is_formula(s: &str) -> bool {
    let first = s.trim_start_matches(' ').chars().next();
    matches!(first, Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\n' | '＝' | '＋' | '－' | '＠'))
}

/// The text with a leading `'` when a spreadsheet would evaluate it, as OWASP advises.
pub fn defuse(s: &str) -> Cow<'_, str> {
    if is_formula(s) { Cow::Owned(format!("'{s}")) } else { Cow::Borrowed(s) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_become_visible() {
        assert_eq!(visible("plain"), "plain");
        assert!(matches!(visible("plain"), Cow::Borrowed(_)));
        assert_eq!(visible("a\x1b[31mred\x07"), "a\\u{1b}[31mred\\u{7}");
        assert_eq!(visible("x\ny\tz"), "x\\ny\\tz");
        assert_eq!(visible("ab\u{202E}cd"), "ab\\u{202e}cd");
        assert_eq!(visible("\u{9b}2J"), "\\u{9b}2J");
    }

    #[test]
    fn formulas_are_defused() {
        assert_eq!(defuse("=1+1"), "'=1+1");
        assert_eq!(defuse("  @SUM(A1)"), "'  @SUM(A1)");
        assert_eq!(defuse("＝1"), "'＝1");
        assert_eq!(defuse("dana@acme.example"), "dana@acme.example");
    }
}
