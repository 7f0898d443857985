//! HTML: one self-contained file with inline CSS and inline SVG charts (events per day, events per
//! action family, top actors), readable on screen and printed to PDF.
//!
//! Guarantee: no script runs and nothing is fetched. Every log value is entity-escaped, and the
//! page's Content-Security-Policy allows no script, no connection and no external resource, so
//! even a value that slipped through could not act.

use std::fmt::Write as _;

use super::{count_text, header_rows};
use crate::report::{Report, Section, Table, Value};

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

const STYLE: &str = r#"
:root { --ink: #1a202c; --muted: #4a5568; --line: #cbd5e0; --bar: #2b6cb0; --flag: #c05621; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); margin: 2rem auto; max-width: 72rem; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .5rem; }
h2 { font-size: 1.25rem; border-bottom: 2px solid var(--line); padding-bottom: .2rem; margin-top: 2.5rem; }
h3 { font-size: 1.05rem; margin: 1.5rem 0 .3rem; }
p { margin: .3rem 0; }
.controls { color: var(--muted); font-style: italic; }
.explain { color: var(--muted); }
.count { font-size: 1.1rem; }
.count strong { font-size: 1.5rem; }
.empty { color: var(--flag); font-weight: 600; }
table { border-collapse: collapse; margin: .4rem 0 .2rem; font-size: 12.5px; }
th, td { border: 1px solid var(--line); padding: .15rem .45rem; text-align: left; vertical-align: top; }
th { background: #edf2f7; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
td.flag { color: var(--flag); font-weight: 600; }
table.meta th { background: none; text-align: left; white-space: nowrap; }
.rows { color: var(--muted); font-size: 12px; }
nav ol { columns: 3; }
svg { display: block; margin: .5rem 0 1rem; max-width: 100%; height: auto; }
svg text { font: 11px system-ui, sans-serif; fill: var(--muted); }
svg rect.bar { fill: var(--bar); }
svg rect.gap { fill: var(--flag); }
@media print {
  body { margin: 0; max-width: none; font-size: 11px; }
  nav { display: none; }
  h2 { break-before: auto; break-after: avoid; }
  h3 { break-after: avoid; }
  thead { display: table-header-group; }
  tr, svg { break-inside: avoid; }
}
"#;

fn cell(v: &Value) -> String {
    match v {
        Value::Int(_) | Value::Float(_) => format!("<td class=\"n\">{v}</td>"),
        Value::Null => "<td></td>".to_string(),
        Value::Text(s) if s.starts_with("no events") => format!("<td class=\"flag\">{}</td>", escape(s)),
        other => format!("<td>{}</td>", escape(&other.to_string())),
    }
}

fn table(out: &mut String, t: &Table) {
    let _ = writeln!(out, "<h3 id=\"{}\">{}</h3>", escape(&t.key), escape(&t.title));
    if !t.explanation.is_empty() {
        let _ = writeln!(out, "<p class=\"explain\">{}</p>", escape(&t.explanation));
    }
    if t.rows.is_empty() {
        out.push_str("<p class=\"rows\">No rows in this period.</p>\n");
        return;
    }
    out.push_str("<table><thead><tr>");
    for c in &t.columns {
        let _ = write!(out, "<th>{}</th>", escape(c));
    }
    out.push_str("</tr></thead><tbody>\n");
    for row in &t.rows {
        out.push_str("<tr>");
        for v in row {
            out.push_str(&cell(v));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
    let _ = writeln!(out, "<p class=\"rows\">{} row{}</p>", t.rows.len(), if t.rows.len() == 1 { "" } else { "s" });
}

/// (label, value) pairs of a table's two columns, skipping rows whose value is not a number.
fn series(t: &Table, label: &str, value: &str) -> Option<Vec<(String, f64)>> {
    let labels = t.column(label)?;
    let values = t.column(value)?;
    Some(
        labels
            .into_iter()
            .zip(values)
            .filter_map(|(l, v)| {
                let l = if *l == Value::Null { "(none)".to_string() } else { l.to_string() };
                Some((l, v.as_f64()?))
            })
            .collect(),
    )
}

/// Vertical bars, one a day; days without events get a short mark in the flag colour.
fn day_chart(points: &[(String, f64)]) -> String {
    let (w, h, left, bottom) = (720.0, 180.0, 36.0, 22.0);
    let max = points.iter().map(|p| p.1).fold(0.0, f64::max).max(1.0);
    let step = (w - left) / points.len().max(1) as f64;
    let mut s = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"Events per day\">\n"
    );
    let _ = writeln!(s, "<text x=\"0\" y=\"12\">{max}</text><text x=\"0\" y=\"{}\">0</text>", h - bottom);
    let label_every = (points.len() / 10).max(1);
    for (i, (day, n)) in points.iter().enumerate() {
        let x = left + i as f64 * step;
        let bar_h = (h - bottom - 6.0) * n / max;
        let (class, y, bh) =
            if *n == 0.0 { ("gap", h - bottom - 3.0, 3.0) } else { ("bar", h - bottom - bar_h, bar_h) };
        let _ = writeln!(
            s,
            "<rect class=\"{class}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{bh:.1}\"><title>{}: {n}</title></rect>",
            (step - 1.0).max(1.0),
            escape(day)
        );
        if i % label_every == 0 {
            let _ = writeln!(s, "<text x=\"{x:.1}\" y=\"{}\">{}</text>", h - 6.0, escape(day.get(5..).unwrap_or(day)));
        }
    }
    s.push_str("</svg>\n");
    s
}

/// Horizontal bars for the first `limit` points.
fn bar_chart(points: &[(String, f64)], limit: usize, label: &str) -> String {
    let points = &points[..points.len().min(limit)];
    let (w, row, left) = (720.0, 18.0, 240.0);
    let h = row * points.len() as f64 + 4.0;
    let max = points.iter().map(|p| p.1).fold(0.0, f64::max).max(1.0);
    let mut s = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{}\">\n",
        escape(label)
    );
    for (i, (name, n)) in points.iter().enumerate() {
        let y = i as f64 * row;
        let bw = ((w - left - 60.0) * n / max).max(1.0);
        let shown: String =
            if name.chars().count() > 36 { name.chars().take(35).chain(['…']).collect() } else { name.clone() };
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><rect class=\"bar\" x=\"{left}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{:.1}\"><title>{}: {n}</title></rect><text x=\"{:.1}\" y=\"{:.1}\">{n}</text>",
            left - 6.0,
            y + 13.0,
            escape(&shown),
            y + 2.0,
            row - 4.0,
            escape(name),
            left + bw + 4.0,
            y + 13.0
        );
    }
    s.push_str("</svg>\n");
    s
}

/// The charts shown at the top of a section, from its own tables.
fn charts(s: &Section) -> String {
    let find = |key: &str| s.tables.iter().find(|t| t.key == key);
    let mut out = String::new();
    let points = |key: &str, label: &str| find(key).and_then(|t| series(t, label, "events")).filter(|p| !p.is_empty());
    if let Some(p) = points("volume.per_day", "day") {
        out.push_str("<h3>Chart: events per day</h3>\n");
        out.push_str(&day_chart(&p));
    }
    if let Some(p) = points("volume.per_family", "family") {
        out.push_str("<h3>Chart: events per action family</h3>\n");
        out.push_str(&bar_chart(&p, 20, "Events per action family"));
    }
    if let Some(p) = points("actors.top", "actor_name") {
        out.push_str("<h3>Chart: top actors</h3>\n");
        out.push_str(&bar_chart(&p, 10, "Top actors by events"));
    }
    out
}

/// The whole report as one HTML document.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let title = escape(&report.header.title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"generator\" content=\"auditlake {}\">\n\
<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<header>\n<h1>{title}</h1>\n<table class=\"meta\">\n",
        escape(&report.header.auditlake_version)
    );
    for (label, value) in header_rows(report) {
        let _ = writeln!(out, "<tr><th>{}</th><td>{}</td></tr>", escape(label), escape(&value));
    }
    out.push_str("</table>\n");
    if report.header.events == 0 {
        out.push_str("<p class=\"empty\">No events in this period. Every section below is empty; check that collection ran.</p>\n");
    }
    out.push_str("</header>\n<nav><h2>Sections</h2><ol>\n");
    for s in &report.sections {
        let _ = writeln!(out, "<li><a href=\"#{}\">{}</a></li>", escape(&s.name), escape(&s.title));
    }
    out.push_str("</ol></nav>\n<main>\n");
    for (n, s) in report.sections.iter().enumerate() {
        let _ = writeln!(out, "<section id=\"{}\">\n<h2>{}. {}</h2>", escape(&s.name), n + 1, escape(&s.title));
        if !s.controls.is_empty() {
            let _ = writeln!(out, "<p class=\"controls\">Evidence for: {}</p>", escape(&s.controls));
        }
        if !s.explanation.is_empty() {
            let _ = writeln!(out, "<p>{}</p>", escape(&s.explanation));
        }
        if let Some(c) = &s.count {
            let text = count_text(c);
            let (num, unit) = text.split_once(' ').unwrap_or((&text, ""));
            let _ = writeln!(out, "<p class=\"count\"><strong>{}</strong> {}</p>", escape(num), escape(unit));
        }
        out.push_str(&charts(s));
        for t in &s.tables {
            table(&mut out, t);
        }
        out.push_str("</section>\n");
    }
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_values_is_text() {
        assert_eq!(escape("<script>alert('x')</script>"), "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;");
        assert_eq!(escape("\" onmouseover=\"x"), "&quot; onmouseover=&quot;x");
        assert_eq!(escape("a & b"), "a &amp; b");
    }

    #[test]
    fn charts_escape_their_labels() {
        let svg = bar_chart(&[("<img src=x onerror=alert(1)>".to_string(), 3.0)], 10, "t");
        assert!(!svg.contains("<img"), "{svg}");
        assert!(svg.contains("&lt;img src=x onerror=alert(1)&gt;"));
    }
}
