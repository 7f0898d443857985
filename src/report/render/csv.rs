//! CSV: a folder with `report.csv` (the header), `sections.csv` (each section's count and
//! tables) and one `<section>.<table>.csv` per table, since tables of one section have
//! different columns.
//!
//! Text that a spreadsheet would run as a formula gets a leading `'` ([`crate::text::defuse`]),
//! and a field holding any locale's separator is quoted. The JSON format keeps such values
//! unchanged.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::report::{Report, Value};

/// A field, quoted when needed and defused when a spreadsheet would evaluate it.
pub fn field(value: &Value) -> String {
    match value {
        Value::Text(s) => quote(&crate::text::defuse(s)),
        other => other.to_string(),
    }
}

/// Quotes a field that holds a separator of any locale (`,` or `;`), a quote, a tab or a line
/// break, or edge spaces: unquoted, `x;=1+1` opens as a formula where `;` separates fields.
fn quote(s: &str) -> String {
    if s.contains([',', ';', '\t', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn line(fields: impl IntoIterator<Item = String>) -> String {
    let mut s = fields.into_iter().collect::<Vec<_>>().join(",");
    s.push_str("\r\n");
    s
}

fn text(s: impl Into<String>) -> String {
    field(&Value::Text(s.into()))
}

/// Writes the report into `dir` (created if missing); returns the files written.
pub fn write(report: &Report, dir: &Path) -> Result<Vec<PathBuf>> {
    let err = |path: &Path| {
        let path = path.display().to_string();
        move |source: std::io::Error| Error::Output { path, source }
    };
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    let mut written = Vec::new();
    let mut put = |name: &str, body: String| -> Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, body).map_err(err(&path))?;
        written.push(path);
        Ok(())
    };

    let mut header = line(["field".into(), "value".into()]);
    for (label, value) in super::header_rows(report) {
        header.push_str(&line([text(label), text(value)]));
    }
    put("report.csv", header)?;

    let mut index = line(
        ["section", "title", "controls", "count", "unit", "table", "table_title", "rows", "file"].map(String::from),
    );
    for s in &report.sections {
        let (count, unit) =
            s.count.as_ref().map_or((String::new(), String::new()), |c| (c.value.to_string(), c.unit.clone()));
        for t in &s.tables {
            index.push_str(&line([
                text(&s.name),
                text(&s.title),
                text(&s.controls),
                count.clone(),
                text(&unit),
                text(&t.key),
                text(&t.title),
                t.rows.len().to_string(),
                text(format!("{}.csv", t.key)),
            ]));
        }
    }
    put("sections.csv", index)?;

    for t in report.sections.iter().flat_map(|s| &s.tables) {
        let mut body = line(t.columns.iter().map(text));
        for row in &t.rows {
            body.push_str(&line(row.iter().map(field)));
        }
        put(&format!("{}.csv", t.key), body)?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused_and_quoted() {
        let t = |s: &str| field(&Value::Text(s.into()));
        assert_eq!(t(r#"=HYPERLINK("http://x","y")"#), r#""'=HYPERLINK(""http://x"",""y"")""#);
        assert_eq!(t("+1"), "'+1");
        assert_eq!(t("-2+3"), "'-2+3");
        assert_eq!(t("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(t("  =1+1"), "'  =1+1");
        assert_eq!(t("\t=1"), "\"'\t=1\"");
        assert_eq!(t("＝1+1"), "'＝1+1");
        assert_eq!(t("dana@acme.example"), "dana@acme.example");
        assert_eq!(t("a,b"), "\"a,b\"");
        // Regression (issue 19): where `;` separates fields, this opened as a formula.
        assert_eq!(t("x;=1+1"), "\"x;=1+1\"");
        // Numbers from the engine are not text and keep their sign.
        assert_eq!(field(&Value::Int(-3)), "-3");
    }
}
