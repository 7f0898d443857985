//! The report's formats. Every value that came from the logs is attacker-controlled text, so each
//! renderer escapes it for its format: HTML entities, Markdown punctuation, CSV formula prefixes.

pub mod csv;
pub mod html;
pub mod markdown;

use super::Report;

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One self-contained file: inline CSS and SVG charts, no script, no network.
    Html,
    /// GitHub-flavoured Markdown tables.
    Markdown,
    /// The [`Report`] as JSON, for machines.
    Json,
    /// A folder: the header, a section index, and one file per table.
    Csv,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Html => "html",
            Format::Markdown => "md",
            Format::Json => "json",
            Format::Csv => "csv",
        }
    }
}

/// The report as pretty JSON: the same structure as [`Report`], values typed.
pub fn json(report: &Report) -> String {
    let mut s = serde_json::to_string_pretty(report).expect("a report is always serialisable");
    s.push('\n');
    s
}

/// "1 event", "2 events": the unit is the count query's column name, plural.
pub(crate) fn count_text(count: &super::Count) -> String {
    let unit = if count.value == 1 { count.unit.strip_suffix('s').unwrap_or(&count.unit) } else { &count.unit };
    format!("{} {unit}", count.value)
}

/// The header's rows, as (label, value) pairs every format shows.
pub(crate) fn header_rows(report: &Report) -> Vec<(&'static str, String)> {
    let h = &report.header;
    let workspaces = if h.workspaces.is_empty() {
        "none with events".to_string()
    } else {
        h.workspaces
            .iter()
            .map(|w| match (&w.name, &w.account_id) {
                (Some(n), Some(id)) => format!("{n} ({id})"),
                (Some(n), None) => n.clone(),
                (None, Some(id)) => id.clone(),
                (None, None) => "(no workspace)".to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut rows = vec![
        ("Period", format!("{} to {} (inclusive), {}", h.period_from, h.period_to, h.time_zone)),
        ("Period in UTC", format!("{} to {} (end exclusive)", h.period_start_utc, h.period_end_utc)),
        (
            "Workspace filter",
            if h.workspace_filter.is_empty() { "all workspaces".to_string() } else { h.workspace_filter.join(", ") },
        ),
        ("Workspaces with events", workspaces),
        ("Events in period", h.events.to_string()),
        ("Table", h.table.clone()),
        (
            "Table version",
            h.table_version
                .map_or("none (no table yet)".to_string(), |v| format!("{v} (reproduce with --as-of-version {v})")),
        ),
        ("Business hours", format!("{} ({})", h.business_hours, h.time_zone)),
        ("Burst rule", h.burst_rule.clone()),
        ("Gap threshold", format!("{} hours", h.gap_hours)),
        ("Generated", h.generated_at.clone()),
        ("auditlake version", h.auditlake_version.clone()),
    ];
    if let Some(evidence) = &h.evidence {
        rows.insert(7, ("Tamper evidence", evidence.clone()));
    }
    rows
}
