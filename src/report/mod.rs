//! Prove: compliance evidence from the audit log, computed by the SQL in `queries/report/`.
//!
//! [`build`] runs every section's queries over one consistent table version and returns a
//! [`Report`]: plain data, which the renderers turn into HTML, Markdown, JSON or CSV. The queries
//! see these tables:
//!
//! - `events`: `audit_log` restricted to the period and workspaces, plus `local_time`,
//!   `local_date`, `local_hour`, `local_dow` (1 = Monday) in the report's time zone, `off_hours`
//!   (weekend or outside business hours) and `administrative` (not a sign-in, not case work);
//! - `before_period`: the same workspaces' events before the period (for first-seen addresses);
//! - `report_days`: every local date of the period (`local_date`);
//! - `report_params`: one row of the report's settings (`period_start`, `period_end`, `tz`,
//!   `burst_failures`, `burst_minutes`, `gap_hours`).
//!
//! Guarantee: the same table version and options give the same report, byte for byte, apart
//! from the generation time (which `SOURCE_DATE_EPOCH` fixes).

pub mod catalog;
pub mod render;

use std::path::PathBuf;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, TimeZone, Utc};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::functions::expr_fn::{date_part, to_local_time};
use datafusion::prelude::{DataFrame, Expr, SessionContext, cast as cast_expr, col, lit};
use serde::Serialize;

use crate::engine;
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::schema::{self, col as c};
use crate::time::Window;

/// What to report on and how.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// First local day of the period.
    pub from: NaiveDate,
    /// Last local day of the period (inclusive).
    pub to: NaiveDate,
    /// IANA time zone name (or `UTC`, or an offset like `+02:00`) that days and hours are in.
    pub tz: String,
    /// Business hours on weekdays, local time: [start, end).
    pub business_hours: (NaiveTime, NaiveTime),
    /// Workspace names or account ids to include; empty means all.
    pub workspaces: Vec<String>,
    /// Section names to include; empty means all.
    pub sections: Vec<String>,
    /// Read the table as of this version.
    pub as_of_version: Option<u64>,
    /// A burst is at least this many failed logins ...
    pub burst_failures: u32,
    /// ... within this many minutes.
    pub burst_minutes: u32,
    /// Silences longer than this are flagged as possible collection gaps.
    pub gap_hours: u32,
    /// A folder of the user's own report queries.
    pub queries_dir: Option<PathBuf>,
    /// Stated in the header.
    pub generated_at: DateTime<Utc>,
    /// Where the queries run.
    pub engine: engine::Engine,
}

/// A value from a query, as every format shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl Value {
    pub fn is_number(&self) -> bool {
        matches!(self, Value::Int(_) | Value::Float(_))
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Null => Ok(()),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Text(s) => f.write_str(s),
        }
    }
}

/// One table of a section: its query's title, explanation and result.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    /// `<section>.<table>`, also the CSV file's name.
    pub key: String,
    pub title: String,
    pub explanation: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    /// The values of one column, by name.
    pub fn column(&self, name: &str) -> Option<Vec<&Value>> {
        let i = self.columns.iter().position(|c| c == name)?;
        Some(self.rows.iter().map(|r| &r[i]).collect())
    }
}

/// A section's headline number, e.g. 12 `changes`.
#[derive(Debug, Clone, Serialize)]
pub struct Count {
    pub value: i64,
    pub unit: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub name: String,
    pub title: String,
    pub controls: String,
    pub explanation: String,
    pub count: Option<Count>,
    pub tables: Vec<Table>,
}

/// A workspace seen in the period.
#[derive(Debug, Clone, Serialize)]
pub struct Workspace {
    pub name: Option<String>,
    pub account_id: Option<String>,
}

/// What the report was computed from and with: enough to reproduce it.
#[derive(Debug, Clone, Serialize)]
pub struct Header {
    pub title: String,
    pub period_from: String,
    pub period_to: String,
    pub time_zone: String,
    /// The period as UTC instants: [start, end).
    pub period_start_utc: String,
    pub period_end_utc: String,
    /// The `--workspace` filter; empty means all.
    pub workspace_filter: Vec<String>,
    /// Workspaces with events in the period.
    pub workspaces: Vec<Workspace>,
    pub table: String,
    /// `None` when the lake has no table yet.
    pub table_version: Option<u64>,
    /// The tamper evidence of that version (chain head, and whether `verify --quick` passed),
    /// filled in by the caller that ran the check; `None` when it was not checked.
    pub evidence: Option<String>,
    pub events: i64,
    pub business_hours: String,
    pub burst_rule: String,
    pub gap_hours: u32,
    pub generated_at: String,
    pub auditlake_version: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub header: Header,
    pub sections: Vec<Section>,
}

impl Report {
    pub fn table(&self, key: &str) -> Option<&Table> {
        self.sections.iter().flat_map(|s| &s.tables).find(|t| t.key == key)
    }
}

/// Parses `08:00-18:00`.
pub fn parse_business_hours(text: &str) -> std::result::Result<(NaiveTime, NaiveTime), String> {
    let bad = || format!("invalid business hours '{text}': expected HH:MM-HH:MM, e.g. 08:00-18:00");
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let parse = |s: &str| NaiveTime::parse_from_str(s.trim(), "%H:%M").map_err(|_| bad());
    let (start, end) = (parse(a)?, if b.trim() == "24:00" { NaiveTime::MIN } else { parse(b)? });
    if end != NaiveTime::MIN && start >= end {
        return Err(format!("invalid business hours '{text}': the start must be before the end"));
    }
    Ok((start, end))
}

/// Parses a time zone name, with a message that says what is accepted.
pub fn parse_tz(text: &str) -> std::result::Result<Tz, String> {
    Tz::from_str(text.trim()).map_err(|_| {
        format!("unknown time zone '{text}': use an IANA name such as Europe/Berlin or America/New_York, UTC, or an offset like +02:00")
    })
}

/// Midnight at the start of `day` in `tz`, as UTC. When midnight does not exist (a DST jump
/// at midnight), the first instant of the day.
fn local_midnight(tz: &Tz, day: NaiveDate) -> DateTime<Utc> {
    let naive = day.and_time(NaiveTime::MIN);
    let mut t = tz.from_local_datetime(&naive).earliest();
    let mut minutes = 0;
    while t.is_none() && minutes < 24 * 60 {
        minutes += 15;
        t = tz.from_local_datetime(&(naive + chrono::Duration::minutes(minutes))).earliest();
    }
    t.map(|t| t.with_timezone(&Utc)).unwrap_or_else(|| naive.and_utc())
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Names of the sections that exist, for messages and `--list`.
pub fn section_names(queries_dir: Option<&std::path::Path>) -> Result<Vec<String>> {
    Ok(catalog::sections(queries_dir)?.into_iter().map(|s| s.name).collect())
}

/// The longest period a report lays out (its volume section has a row a day): a century.
pub const MAX_PERIOD_DAYS: i64 = 36_525;

/// Computes the report.
pub async fn build(lake: &Lake, opts: &ReportOptions) -> Result<Report> {
    if opts.from > opts.to {
        return Err(Error::Period { from: opts.from, to: opts.to });
    }
    let days = (opts.to - opts.from).num_days() + 1;
    if days > MAX_PERIOD_DAYS {
        return Err(Error::PeriodTooLong { from: opts.from, to: opts.to, days, max: MAX_PERIOD_DAYS });
    }
    let tz = parse_tz(&opts.tz).map_err(Error::TimeZone)?;
    let mut sections = catalog::sections(opts.queries_dir.as_deref())?;
    if !opts.sections.is_empty() {
        let known: Vec<String> = sections.iter().map(|s| s.name.clone()).collect();
        for wanted in &opts.sections {
            if !known.contains(wanted) {
                return Err(Error::UnknownSection { name: wanted.clone(), available: known.join(", ") });
            }
        }
        sections.retain(|s| opts.sections.contains(&s.name));
    }

    let start = local_midnight(&tz, opts.from);
    let end = local_midnight(&tz, opts.to.succ_opt().unwrap_or(opts.to));
    let ctx = opts.engine.context().await?;
    let (base, version) = engine::base_table(lake, &ctx, opts.as_of_version, &opts.engine).await?;
    let base = workspace_filter(base, &opts.workspaces)?;
    let in_period = engine::apply_window(base.clone(), &Window { since: Some(start), until: Some(end) })?;
    let before = engine::apply_window(base, &Window { since: None, until: Some(start) })?;
    ctx.register_table("audit_log", in_period.clone().into_view())?;
    ctx.register_table("events", with_local_columns(in_period, &opts.tz, opts.business_hours)?.into_view())?;
    ctx.register_table("before_period", before.into_view())?;
    ctx.register_table("report_days", days_table(&ctx, opts.from, opts.to)?.into_view())?;
    ctx.register_table("report_params", params_table(&ctx, opts, start, end)?.into_view())?;

    let mut out = Vec::new();
    for s in &sections {
        let count = match &s.count {
            Some(q) => {
                let t = run(&ctx, q).await?;
                let value = t.rows.first().and_then(|r| r.first()).and_then(Value::as_f64).unwrap_or(0.0) as i64;
                Some(Count { value, unit: t.columns.first().cloned().unwrap_or_else(|| "rows".into()) })
            }
            None => None,
        };
        let mut tables = Vec::new();
        for q in &s.tables {
            tables.push(run(&ctx, q).await?);
        }
        let (title, controls, explanation) = match s.info {
            Some(i) => (i.title.to_string(), i.controls.to_string(), i.explanation.to_string()),
            None => (s.name.clone(), String::new(), String::new()),
        };
        out.push(Section { name: s.name.clone(), title, controls, explanation, count, tables });
    }

    let ws = collect(&ctx, "SELECT DISTINCT account_name, account_id FROM events ORDER BY 1, 2").await?;
    let workspaces = ws
        .rows
        .into_iter()
        .map(|r| {
            let text = |v: &Value| match v {
                Value::Text(s) => Some(s.clone()),
                _ => None,
            };
            Workspace { name: text(&r[0]), account_id: text(&r[1]) }
        })
        .collect();
    let events = collect(&ctx, "SELECT count(*) FROM events").await?;
    let events = events.rows.first().and_then(|r| r.first()).and_then(Value::as_f64).unwrap_or(0.0) as i64;

    let header = Header {
        title: format!("Torq audit log report, {} to {}", opts.from, opts.to),
        period_from: opts.from.to_string(),
        period_to: opts.to.to_string(),
        time_zone: opts.tz.trim().to_string(),
        period_start_utc: rfc3339(start),
        period_end_utc: rfc3339(end),
        workspace_filter: opts.workspaces.clone(),
        workspaces,
        table: lake.display_path(schema::TABLE_NAME),
        table_version: version,
        evidence: None,
        events,
        business_hours: format!(
            "{}-{} Monday to Friday",
            opts.business_hours.0.format("%H:%M"),
            if opts.business_hours.1 == NaiveTime::MIN {
                "24:00".to_string()
            } else {
                opts.business_hours.1.format("%H:%M").to_string()
            }
        ),
        burst_rule: format!("{} or more failed logins within {} minutes", opts.burst_failures, opts.burst_minutes),
        gap_hours: opts.gap_hours,
        generated_at: rfc3339(opts.generated_at),
        auditlake_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    Ok(Report { header, sections: out })
}

fn workspace_filter(df: DataFrame, workspaces: &[String]) -> Result<DataFrame> {
    if workspaces.is_empty() {
        return Ok(df);
    }
    let list: Vec<_> = workspaces.iter().map(|w| lit(w.clone())).collect();
    let filter = col(c::ACCOUNT_NAME).in_list(list.clone(), false).or(col(c::ACCOUNT_ID).in_list(list, false));
    Ok(df.filter(filter)?)
}

/// SQL for "not a sign-in and not case work": what the off-hours section calls administrative.
const ADMINISTRATIVE: &str = "NOT (action IN ('User logged in', 'User logged out', 'User switched accounts', \
'User login failed') OR scenario_id IS NOT NULL OR action LIKE 'Case %' OR action LIKE 'Cases %' \
OR action LIKE 'Observable %' OR action LIKE 'Attachment %' OR action LIKE 'Note %' \
OR action LIKE 'Link Between Cases %' OR action = 'Workspace Configuration Updated')";

/// Adds the report's local-time columns. The time zone goes in as a type, not as SQL text.
fn with_local_columns(df: DataFrame, tz: &str, hours: (NaiveTime, NaiveTime)) -> Result<DataFrame> {
    use chrono::Timelike;
    let zoned = cast_expr(col(c::TIMESTAMP), DataType::Timestamp(TimeUnit::Microsecond, Some(tz.trim().into())));
    let hour = date_part(lit("hour"), zoned.clone());
    let minute_of_day = hour.clone() * lit(60) + date_part(lit("minute"), zoned.clone());
    let dow = date_part(lit("isodow"), zoned.clone());
    let start = (hours.0.hour() * 60 + hours.0.minute()) as i32;
    let end = if hours.1 == NaiveTime::MIN { 24 * 60 } else { (hours.1.hour() * 60 + hours.1.minute()) as i32 };
    let off_hours =
        dow.clone().gt_eq(lit(6)).or(minute_of_day.clone().lt(lit(start))).or(minute_of_day.gt_eq(lit(end)));
    let administrative = df.parse_sql_expr(ADMINISTRATIVE)?;
    Ok(df
        .with_column("local_time", to_local_time(vec![zoned]))?
        .with_column("local_date", cast_expr(col("local_time"), DataType::Date32))?
        .with_column("local_hour", hour)?
        .with_column("local_dow", dow)?
        .with_column("off_hours", off_hours)?
        .with_column("administrative", administrative)?)
}

// The two small tables are VALUES plans, not in-memory tables, so that a cluster can carry them.

fn days_table(ctx: &SessionContext, from: NaiveDate, to: NaiveDate) -> Result<DataFrame> {
    let rows: Vec<Vec<Expr>> = from.iter_days().take_while(|d| *d <= to).map(|d| vec![engine::date_lit(d)]).collect();
    engine::listing::values(ctx, rows, &["local_date"])
}

fn params_table(
    ctx: &SessionContext,
    opts: &ReportOptions,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<DataFrame> {
    let int = |n: u32| lit(n as i64);
    let row = vec![
        engine::ts_lit(start),
        engine::ts_lit(end),
        lit(opts.tz.trim()),
        int(opts.burst_failures),
        int(opts.burst_minutes),
        int(opts.gap_hours),
    ];
    let names = ["period_start", "period_end", "tz", "burst_failures", "burst_minutes", "gap_hours"];
    engine::listing::values(ctx, vec![row], &names)
}

async fn run(ctx: &SessionContext, q: &catalog::TableQuery) -> Result<Table> {
    let mut t = collect(ctx, &q.sql).await.map_err(|e| Error::ReportQuery {
        key: q.key.clone(),
        origin: q.origin.clone(),
        source: Box::new(e),
    })?;
    t.key = q.key.clone();
    t.title = q.title.clone();
    t.explanation = q.explanation.clone();
    Ok(t)
}

async fn collect(ctx: &SessionContext, sql: &str) -> Result<Table> {
    let df = engine::sql_in(ctx, sql).await?;
    let columns: Vec<String> = df.schema().fields().iter().map(|f| f.name().clone()).collect();
    let batches = df.collect().await?;
    let mut rows = Vec::new();
    for batch in &batches {
        let cols: Vec<Vec<Value>> = batch.columns().iter().map(values).collect::<Result<_>>()?;
        for i in 0..batch.num_rows() {
            rows.push(cols.iter().map(|c| c[i].clone()).collect());
        }
    }
    Ok(Table { key: String::new(), title: String::new(), explanation: String::new(), columns, rows })
}

/// One column's values. Instants are RFC 3339 in UTC; local times (no zone) are shown as such.
fn values(array: &ArrayRef) -> Result<Vec<Value>> {
    let n = array.len();
    let out = match array.data_type() {
        DataType::Null => vec![Value::Null; n],
        DataType::Boolean => {
            let a = array.as_boolean();
            (0..n).map(|i| if a.is_null(i) { Value::Null } else { Value::Bool(a.value(i)) }).collect()
        }
        t if t.is_integer() => {
            let a = cast(array, &DataType::Int64)?;
            let a = a.as_primitive::<Int64Type>();
            (0..n).map(|i| if a.is_null(i) { Value::Null } else { Value::Int(a.value(i)) }).collect()
        }
        t if t.is_floating() || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..)) => {
            let a = cast(array, &DataType::Float64)?;
            let a = a.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
            (0..n)
                .map(|i| if a.is_null(i) || !a.value(i).is_finite() { Value::Null } else { Value::Float(a.value(i)) })
                .collect()
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let a = cast(array, &DataType::Utf8)?;
            let a = a.as_string::<i32>();
            (0..n).map(|i| if a.is_null(i) { Value::Null } else { Value::Text(a.value(i).to_string()) }).collect()
        }
        DataType::Timestamp(_, tz) => {
            let a = cast(array, &DataType::Timestamp(TimeUnit::Microsecond, tz.clone()))?;
            let a = a.as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>();
            (0..n)
                .map(|i| {
                    if a.is_null(i) {
                        return Value::Null;
                    }
                    let Some(t) = DateTime::from_timestamp_micros(a.value(i)) else { return Value::Null };
                    Value::Text(match tz {
                        Some(_) => rfc3339(t),
                        // A local time: no offset, so nobody reads it as UTC.
                        None => t.naive_utc().format("%Y-%m-%d %H:%M:%S").to_string(),
                    })
                })
                .collect()
        }
        _ => {
            let f = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())?;
            (0..n).map(|i| if array.is_null(i) { Value::Null } else { Value::Text(f.value(i).to_string()) }).collect()
        }
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn business_hours_parse() {
        let (a, b) = parse_business_hours("08:00-18:00").unwrap();
        assert_eq!((a.to_string(), b.to_string()), ("08:00:00".into(), "18:00:00".into()));
        assert_eq!(parse_business_hours("00:00-24:00").unwrap().1, NaiveTime::MIN);
        assert!(parse_business_hours("18:00-08:00").unwrap_err().contains("before the end"));
        assert!(parse_business_hours("8-6").unwrap_err().contains("'8-6'"));
    }

    #[test]
    fn periods_are_local_days() {
        let berlin = parse_tz("Europe/Berlin").unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 9, 1).unwrap();
        assert_eq!(rfc3339(local_midnight(&berlin, day)), "2026-08-31T22:00:00Z");
        let winter = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        assert_eq!(rfc3339(local_midnight(&berlin, winter)), "2026-11-30T23:00:00Z");
        assert_eq!(rfc3339(local_midnight(&parse_tz("UTC").unwrap(), day)), "2026-09-01T00:00:00Z");
        assert!(parse_tz("Mars/Olympus").unwrap_err().contains("'Mars/Olympus'"));
    }
}
