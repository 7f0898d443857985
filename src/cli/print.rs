//! What the commands print: each job's metrics as a human summary on stderr or as JSON on
//! stdout, and the tables of `schema`, `stats`, `history` and the `--list` flags. Results
//! (query rows, reports) are written by the jobs themselves; this module only reports on them.

use std::fmt::Write as _;
use std::io::Write;

use anyhow::Result;
use auditlake::Lake;
use auditlake::export::ExportSummary;
use auditlake::ingest::{IngestMetrics, PullMetrics};
use auditlake::lake::TableStats;
use auditlake::maintain::{CompactMetrics, HistoryEntry, RetentionMetrics, VacuumMetrics};
use auditlake::query::named::NamedQuery;
use auditlake::report::catalog::SectionQueries;
use auditlake::schema;
use auditlake::verify::VerifyReport;

use super::args::{InfoFormat, SummaryArgs, SummaryFormat};

impl SummaryArgs {
    /// Prints a job's metrics: JSON on stdout, or (unless quiet) the text on stderr.
    pub fn print<M: serde::Serialize>(&self, say: bool, metrics: &M, text: impl FnOnce(&M) -> String) -> Result<()> {
        if self.format == SummaryFormat::Json {
            println!("{}", serde_json::to_string_pretty(metrics)?);
        } else if say {
            eprint!("{}", text(metrics));
        }
        Ok(())
    }
}

/// A spinner with the elapsed time on stderr while a long job runs: only on a terminal, and not
/// with `--quiet` (ingest draws its own bar of bytes read).
pub struct Spinner(Option<indicatif::ProgressBar>);

impl Spinner {
    pub fn start(say: bool, what: &str) -> Spinner {
        use std::io::IsTerminal;
        if !say || !std::io::stderr().is_terminal() {
            return Spinner(None);
        }
        let bar = indicatif::ProgressBar::new_spinner()
            .with_style(indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("valid template"));
        bar.set_message(what.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        Spinner(Some(bar))
    }

    pub fn stop(self) {
        if let Some(bar) = self.0 {
            bar.finish_and_clear();
        }
    }
}

/// Prints a value as pretty JSON on stdout (`--format json` of the info commands).
pub fn json<T: serde::Serialize>(value: &T) -> Result<()> {
    writeln!(std::io::stdout().lock(), "{}", serde_json::to_string_pretty(value)?)?;
    Ok(())
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[i]) }
}

fn plural(n: impl Into<u64>) -> &'static str {
    if n.into() == 1 { "" } else { "s" }
}

/// The human summary of an ingest run.
pub fn ingest(lake: &Lake, m: &IngestMetrics) -> String {
    let mut s = String::new();
    let version = match m.table_version {
        Some(v) => format!("committed version {v}"),
        None => "nothing new to commit".to_string(),
    };
    let _ = writeln!(
        s,
        "ingested {} of {} records from {} input{} into {} ({version})",
        m.ingested,
        m.read,
        m.inputs,
        plural(m.inputs as u64),
        lake.location()
    );
    rows_detail(&mut s, m);
    s
}

/// The lines `ingest` and `pull` share: what happened to the entries read.
fn rows_detail(s: &mut String, m: &IngestMetrics) {
    let _ = writeln!(s, "  duplicates skipped  {}", m.duplicates);
    let _ = writeln!(s, "  rejected            {}", m.rejected);
    if !m.skipped_inputs.is_empty() {
        let _ = writeln!(s, "  inputs skipped      {}", m.skipped_inputs.len());
        for skipped in m.skipped_inputs.iter().take(10) {
            let _ = writeln!(s, "    {}: {}", skipped.input, skipped.reason);
        }
        if m.skipped_inputs.len() > 10 {
            let _ = writeln!(s, "    ... and {} more", m.skipped_inputs.len() - 10);
        }
    }
    for f in &m.rejected_files {
        let _ = writeln!(s, "    reasons and records in {f}");
    }
    let parts = match (m.partitions.first(), m.partitions.last()) {
        (Some(a), Some(b)) if a != b => format!("{} ({a} .. {b})", m.partitions.len()),
        (Some(a), _) => format!("1 ({a})"),
        _ => "0".to_string(),
    };
    let _ = writeln!(s, "  partitions touched  {parts}");
    let _ = writeln!(
        s,
        "  read {}, wrote {} in {} file{}, {:.2} s, {:.0} records/s",
        human_bytes(m.bytes_read),
        human_bytes(m.bytes_written),
        m.files_written,
        plural(m.files_written),
        m.seconds,
        m.rows_per_sec
    );
}

pub fn pull(lake: &Lake, m: &PullMetrics) -> String {
    let mut s = String::new();
    let (Some(start), Some(end)) = (&m.window_start, &m.window_end) else {
        let at = m.cursor.as_deref().unwrap_or("none");
        let _ = writeln!(s, "nothing to pull for workspace '{}': the window is empty (cursor {at})", m.workspace);
        return s;
    };
    let version = match m.rows.table_version {
        Some(v) => format!("version {v}, {} commit{}", m.commits, plural(m.commits)),
        None => "nothing new to commit".to_string(),
    };
    let _ = writeln!(
        s,
        "pulled {} new of {} entries in {} page{} for workspace '{}' into {} ({version})",
        m.rows.ingested,
        m.rows.read,
        m.pages,
        plural(m.pages),
        m.workspace,
        lake.location()
    );
    if m.first_run_default {
        let _ = writeln!(
            s,
            "  no cursor for this workspace and no --since: read the last 24 hours (--since goes further back)"
        );
    }
    if m.since_ignored {
        let _ = writeln!(s, "  --since ignored: this workspace has a cursor, and pulls continue from it");
    }
    let _ = writeln!(s, "  window              {start} .. {end}");
    let _ = writeln!(
        s,
        "  cursor              {} -> {}",
        m.cursor_before.as_deref().unwrap_or("none"),
        m.cursor.as_deref().unwrap_or("none")
    );
    let _ = writeln!(
        s,
        "  requests            {} ({} retried, {} throttled, {} token{})",
        m.api.requests,
        m.api.retries,
        m.api.throttled,
        m.api.tokens,
        plural(m.api.tokens)
    );
    rows_detail(&mut s, &m.rows);
    if m.interrupted {
        let _ =
            writeln!(s, "  stopped by a signal before the end of the window; the next pull continues from the cursor");
    }
    s
}

pub fn export(m: &ExportSummary) -> String {
    let mut s = String::new();
    let Some(to) = m.to_version else {
        let _ = writeln!(s, "nothing new to export to {}: no events committed since its last export", m.out);
        return s;
    };
    let versions = match m.from_version {
        Some(from) => format!("versions {}..={to}", from + 1),
        None => format!("the table as of version {to}"),
    };
    let _ = writeln!(
        s,
        "exported {} event{} of {versions} to {} in {} file{} ({:.1}s)",
        m.events,
        plural(m.events),
        m.out,
        m.files.len(),
        plural(m.files.len() as u64),
        m.seconds
    );
    if m.resumed {
        let _ = writeln!(s, "  finished the range a killed export had begun (its files were rewritten, not doubled)");
    }
    for (class, n) in &m.by_class {
        let _ = writeln!(s, "  {class:<24} {n}");
    }
    if m.before_since > 0 {
        let _ = writeln!(s, "  left out by --since      {}", m.before_since);
    }
    s
}

pub fn verify(r: &VerifyReport, format: InfoFormat) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if format == InfoFormat::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(r)?)?;
        return Ok(());
    }
    let verdict = if r.intact { "INTACT" } else { "TAMPERING FOUND" };
    writeln!(out, "{verdict}: version 0..={} of the table checked ({} commits)", r.checked_through, r.commits)?;
    match (r.covered_from, &r.chain_head) {
        (Some(from), Some(head)) => writeln!(out, "  evidence from version {from}; chain head {head}")?,
        (Some(from), None) => writeln!(out, "  evidence from version {from}; the version checked has no record")?,
        (None, _) => writeln!(out, "  no evidence yet: `auditlake verify --init` starts the chain")?,
    }
    if let Some(copy) = &r.evidence_copy {
        writeln!(out, "  evidence compared with the copy at {copy}")?;
    }
    if r.signatures_checked {
        writeln!(out, "  every record's signature checked against --public-key")?;
    }
    let how = if r.quick { "sizes checked (--quick)" } else { "hashed" };
    writeln!(
        out,
        "  live files {} ({} {how}, {}; {} from before evidence: size only)",
        r.live_files,
        if r.quick { r.live_files - r.files_not_covered } else { r.files_hashed },
        human_bytes(r.bytes_hashed),
        r.files_not_covered
    )?;
    for m in &r.maintenance {
        writeln!(out, "  maintenance  version {:>6}  {:<10}  {}", m.version, m.kind, m.detail)?;
    }
    for f in &r.findings {
        let at = match (f.version, &f.path) {
            (Some(v), Some(p)) => format!("version {v}, {p}"),
            (Some(v), None) => format!("version {v}"),
            (None, Some(p)) => p.clone(),
            (None, None) => String::new(),
        };
        writeln!(out, "  FINDING  {:<24} {at}: {}", f.kind, f.detail)?;
    }
    Ok(())
}

pub fn compact(m: &CompactMetrics) -> String {
    let mut s = String::new();
    if m.dry_run {
        let rows: u64 = m.partitions.iter().map(|p| p.rows).sum();
        let _ = writeln!(
            s,
            "would compact {} partition(s): {} files ({}, {rows} rows)",
            m.partitions.len(),
            m.files_before,
            human_bytes(m.bytes_before)
        );
    } else {
        let _ = writeln!(
            s,
            "compacted {} partition(s): {} files ({}) -> {} files ({}), {} rows, {} duplicates removed, {:.2} s",
            m.partitions.len(),
            m.files_before,
            human_bytes(m.bytes_before),
            m.files_after,
            human_bytes(m.bytes_after),
            m.rows,
            m.duplicates_removed,
            m.seconds
        );
    }
    for p in &m.partitions {
        let _ = writeln!(s, "  {}  {} files  {}", p.date, p.files.len(), human_bytes(p.bytes));
    }
    if let Some(v) = m.table_version {
        let _ = writeln!(s, "  committed version {v}, checkpoint written");
    }
    s
}

pub fn retention(m: &RetentionMetrics) -> String {
    let mut s = String::new();
    let verb = if m.dry_run { "would drop" } else { "dropped" };
    let _ = writeln!(
        s,
        "{verb} {} partition(s) before {}: {} files, {} rows, {}",
        m.dropped_partitions.len(),
        m.cutoff,
        m.files_removed,
        m.rows_removed,
        human_bytes(m.bytes_removed)
    );
    for d in &m.dropped_partitions {
        let _ = writeln!(s, "  {d}");
    }
    if let Some(v) = m.table_version {
        let _ = writeln!(s, "  committed version {v}; run `auditlake vacuum` to delete the files");
    }
    s
}

pub fn vacuum(m: &VacuumMetrics) -> String {
    let mut s = String::new();
    let verb = if m.dry_run { "would delete" } else { "deleted" };
    let _ = writeln!(s, "{verb} {} unreferenced file(s), {:.2} s", m.files_deleted.len(), m.seconds);
    for f in &m.files_deleted {
        let _ = writeln!(s, "  {f}");
    }
    s
}

/// `auditlake schema`: the columns, then auditlake's SQL functions.
pub fn schema(format: InfoFormat) -> Result<()> {
    let schema = schema::arrow_schema();
    if format == InfoFormat::Json {
        let cols: Vec<serde_json::Value> = schema
            .fields()
            .iter()
            .map(|f| {
                serde_json::json!({
                    "name": f.name(),
                    "type": schema::type_name(f.data_type()),
                    "nullable": f.is_nullable(),
                    "partition": f.name() == schema::PARTITION_COLUMN,
                    "description": schema::describe(f.name()),
                })
            })
            .collect();
        return json(&cols);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{:<14} {:<22} {:<5} description", "column", "type", "null")?;
    for f in schema.fields() {
        let ty = schema::type_name(f.data_type());
        let ty = if f.name() == schema::PARTITION_COLUMN { format!("{ty} (partition)") } else { ty };
        writeln!(
            out,
            "{:<14} {:<22} {:<5} {}",
            f.name(),
            ty,
            if f.is_nullable() { "yes" } else { "no" },
            schema::describe(f.name())
        )?;
    }
    writeln!(out, "\nfunctions")?;
    for (signature, description) in auditlake::engine::functions::describe() {
        writeln!(out, "  {signature:<32} {description}")?;
    }
    Ok(())
}

pub fn stats(stats: &TableStats, format: InfoFormat) -> Result<()> {
    if format == InfoFormat::Json {
        return json(stats);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "table    {}", stats.table)?;
    writeln!(out, "version  {}", stats.version)?;
    if let Some(c) = &stats.last_commit {
        writeln!(out, "last     {} {}", c.timestamp.as_deref().unwrap_or("?"), c.operation.as_deref().unwrap_or("?"))?;
    }
    writeln!(out, "rows     {}\nfiles    {}\nbytes    {}", stats.rows, stats.files, human_bytes(stats.bytes))?;
    writeln!(out, "\n{:<12} {:>10} {:>6} {:>10}", "date", "rows", "files", "bytes")?;
    for p in &stats.partitions {
        writeln!(out, "{:<12} {:>10} {:>6} {:>10}", p.date, p.rows, p.files, human_bytes(p.bytes))?;
    }
    Ok(())
}

pub fn history(entries: &[HistoryEntry], format: InfoFormat) -> Result<()> {
    if format == InfoFormat::Json {
        return json(&entries);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{:>7}  {:<24}  {:<14}  metrics", "version", "time", "operation")?;
    for e in entries {
        let metrics = e.metrics.as_ref().map(|m| m.to_string()).unwrap_or_default();
        writeln!(
            out,
            "{:>7}  {:<24}  {:<14}  {metrics}",
            e.version,
            e.timestamp.as_deref().unwrap_or("?"),
            e.operation.as_deref().unwrap_or("?")
        )?;
    }
    Ok(())
}

/// `auditlake query --list`.
pub fn named_queries<'a>(queries: impl IntoIterator<Item = &'a NamedQuery>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for q in queries {
        let params = if q.params.is_empty() {
            String::new()
        } else {
            format!("  [--param {}]", q.params.iter().map(|p| format!("{p}=...")).collect::<Vec<_>>().join(" "))
        };
        let origin = if q.origin == "embedded" { String::new() } else { format!("  ({})", q.origin) };
        writeln!(out, "{:<20} {}{params}{origin}", q.name, q.description)?;
    }
    Ok(())
}

/// `auditlake report --list`.
pub fn report_sections(sections: &[SectionQueries]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for s in sections {
        let title = s.info.map_or(s.name.as_str(), |i| i.title);
        writeln!(out, "{:<16} {title}", s.name)?;
        for t in &s.tables {
            let origin = if t.origin == "embedded" { String::new() } else { format!("  ({})", t.origin) };
            writeln!(out, "  {:<36} {}{origin}", t.key, t.title)?;
        }
    }
    Ok(())
}
