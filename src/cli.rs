//! The command line: clap definitions, and their resolution into the jobs' plain options.
//!
//! Only this module knows clap. Each command resolves its flags (and env, and defaults) into an
//! options struct, calls its job, and prints the job's metrics: a human summary on stderr, or
//! JSON on stdout with `--format json`. stdout carries results only.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::generate::{FeedFormat, GenerateOptions};
use crate::ingest::{IngestMetrics, IngestOptions};
use crate::lake::Lake;
use crate::query::named;
use crate::query::search::SearchFilters;
use crate::query::{Engine, OutputFormat, Window};
use crate::schema;

/// Exit status when an ingest committed its good records but rejected some.
pub const EXIT_REJECTED: u8 = 3;

/// auditlake keeps Torq audit logs in a Delta Lake table you own and answers SQL over it.
///
/// Start with `auditlake ingest sample-data/`, then `auditlake query --name by_action`.
#[derive(Debug, Parser)]
#[command(name = "auditlake", version, propagate_version = true, max_term_width = 100)]
#[command(after_help = "Exit status: 0 success; 1 failure; 2 usage error; \
3 ingest committed its good records but rejected some (see _rejected/ in the lake).")]
pub struct Cli {
    /// Where the lake lives: a folder (created on first ingest), file:///path, s3://bucket/prefix
    /// (settings and credentials from the AWS_* environment), or memory://NAME
    #[arg(long, global = true, env = "AUDITLAKE_LAKE", default_value = "./lake", value_name = "URL")]
    pub lake: String,

    /// No progress bars or summaries on stderr (errors are still printed)
    #[arg(long, short, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load JSON batches of Torq audit logs into the lake, once per event
    ///
    /// Each INPUT is a file, a directory (read recursively) or `-` for stdin, holding a JSON
    /// array of entries, a Torq API page ({"audit_logs": [...]}), NDJSON, or a single entry;
    /// any of them gzip-compressed (detected by content). Entries whose id is already in the
    /// table are skipped, so re-ingesting is safe. The run is one atomic commit.
    ///
    /// Bad records (not JSON objects, no id, no parseable timestamp, wrong types) are written
    /// with their reason to <lake>/_rejected/ and the good ones are still ingested; the exit
    /// status is then 3, so a scheduler notices.
    #[command(after_help = "Examples:\n  auditlake ingest sample-data/\n  \
zcat torq-*.json.gz | auditlake ingest -\n  auditlake --lake /srv/lake ingest batch.json --format json")]
    Ingest(IngestArgs),

    /// Run SQL (DataFusion dialect) over the table `audit_log`, or a named query
    ///
    /// Queries are read-only: DDL, DML, COPY and SET are refused. `--since/--until` restrict
    /// every query to a window (and prune date partitions).
    #[command(
        after_help = "Examples:\n  auditlake query \"SELECT action, count(*) FROM audit_log GROUP BY 1 ORDER BY 2 DESC\"\n  \
auditlake query --name by_action --since 7d\n  auditlake query --name actor_timeline --param email=dana@acme.example\n  \
auditlake query --list\n  auditlake query --name by_tag --format csv --out tags.csv"
    )]
    Query(QueryArgs),

    /// Find events by action, person, tag, scenario ... without writing SQL (newest first)
    #[command(after_help = "Examples:\n  auditlake search --action 'User role updated' --since 30d\n  \
auditlake search --email dana@acme.example --tag prod\n  auditlake search --actor-type api_key --text secret --format ndjson")]
    Search(SearchArgs),

    /// Show the table's columns and types
    Schema(FormatArgs),

    /// Show rows, files and bytes per date partition, the table version and the last commit
    Stats(FormatArgs),

    /// Rewrite small files of each date partition into few large ones, dropping duplicate ids
    ///
    /// Only partitions with two or more files below the target size are rewritten; a second run
    /// with nothing to do commits nothing. Readers keep working throughout (one atomic commit).
    /// Writes a Delta checkpoint afterwards so the log stays cheap to read.
    Compact(CompactArgs),

    /// Drop whole date partitions older than --keep (at least 90 days unless --force)
    ///
    /// The dropped files stay on storage, still readable by time travel, until `vacuum`.
    #[command(after_help = "Examples:\n  auditlake retention --keep 400d --dry-run\n  auditlake retention --keep 400d")]
    Retention(RetentionArgs),

    /// Delete files no longer referenced by the table, once older than --older-than
    ///
    /// Removes files replaced by compaction, dropped by retention, or left by an ingest that was
    /// killed before it committed. Never younger than 1 hour without --force, because running
    /// queries may still read them.
    Vacuum(VacuumArgs),

    /// The table's commits: what was done to the audit log itself, when, and how much
    History(HistoryArgs),

    /// Compliance evidence for a period: SOC 2, ISO 27001 A.8.15 and PCI DSS 10, without SQL
    ///
    /// Nine sections (volume and gaps, privileged access, authentication, credentials, IdP,
    /// change management, cases, off-hours activity, actors), each computed by the SQL files in
    /// queries/report/ and shown with what it proves, a count and the rows behind it. The header
    /// names the table version read: `--as-of-version N` reproduces a report exactly.
    #[command(
        after_help = "Examples:\n  auditlake report --from 2026-09-01 --to 2026-09-30 --format html --out sept.html\n  \
auditlake report --from 2026-07-01 --to 2026-09-30 --tz Europe/Berlin --business-hours 08:00-18:00 --out q3.md\n  \
auditlake report --from 2026-09-01 --to 2026-09-30 --section access --section change --format csv --out sept/\n  \
auditlake report --list"
    )]
    Report(ReportArgs),

    /// Write a realistic synthetic Torq audit feed (for demos and benchmarks)
    #[command(after_help = "Examples:\n  auditlake generate --events 1000000 --days 30 --out feed.ndjson\n  \
auditlake generate --events 5000 --format pages | gzip > pages.json.gz")]
    Generate(GenerateArgs),

    /// Start a Ballista scheduler and executor in this process, on loopback, to try --cluster
    ///
    /// Prints the scheduler's df:// URL on stdout and runs until Ctrl-C. The executor reads the
    /// lake's files with the same object-store settings (AWS_* ...) as this command. For a real
    /// cluster, run Ballista's own scheduler and executors (see deploy/ballista/).
    #[cfg(feature = "cluster")]
    #[command(after_help = "Examples:\n  auditlake cluster &\n  \
auditlake query --name by_action --cluster df://localhost:PORT")]
    Cluster(ClusterArgs),
}

#[cfg(feature = "cluster")]
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Task slots of the in-process executor (default: one per core)
    #[arg(long, value_name = "N")]
    pub vcores: Option<usize>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// First day of the period (YYYY-MM-DD, in --tz)
    #[arg(long, value_parser = parse_date, required_unless_present = "list")]
    pub from: Option<chrono::NaiveDate>,
    /// Last day of the period, included (YYYY-MM-DD, in --tz)
    #[arg(long, value_parser = parse_date, required_unless_present = "list")]
    pub to: Option<chrono::NaiveDate>,
    /// Only this workspace: its name or account id (repeatable)
    #[arg(long, value_name = "NAME")]
    pub workspace: Vec<String>,
    /// html (one self-contained file), md, json, or csv (a folder); by default from --out's
    /// extension (.html, .json, .md; none means a csv folder), else md
    #[arg(long, value_enum)]
    pub format: Option<ReportFormat>,
    /// Write to this file (a folder for csv) instead of stdout
    #[arg(long, value_name = "FILE|DIR")]
    pub out: Option<PathBuf>,
    /// Time zone that days, business hours and weekends are in (IANA name, UTC, or +HH:MM)
    #[arg(long, default_value = "UTC", value_name = "ZONE")]
    pub tz: String,
    /// Business hours on weekdays, local time; other times and weekends are off-hours
    #[arg(long, default_value = "08:00-18:00", value_name = "HH:MM-HH:MM", value_parser = parse_hours)]
    pub business_hours: (chrono::NaiveTime, chrono::NaiveTime),
    /// Only these sections (repeatable or comma-separated; see --list)
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub section: Vec<String>,
    /// Flag a burst at this many failed logins ...
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub burst_failures: u32,
    /// ... within this many minutes, per user and per address
    #[arg(long, default_value_t = 10, value_name = "M")]
    pub burst_minutes: u32,
    /// Flag silences (no event at all) longer than this many hours as possible collection gaps
    #[arg(long, default_value_t = 24, value_name = "H")]
    pub gap_hours: u32,
    /// A folder of your own `<section>.<table>.sql` report queries (replace or add tables)
    #[arg(long, value_name = "DIR")]
    pub queries: Option<PathBuf>,
    /// Read the table as of this Delta version (the header of a past report names it)
    #[arg(long, value_name = "N")]
    pub as_of_version: Option<u64>,
    /// List the sections and their tables, then exit
    #[arg(long)]
    pub list: bool,

    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ReportFormat {
    Html,
    #[value(alias = "markdown")]
    Md,
    Json,
    Csv,
}

fn parse_hours(text: &str) -> Result<(chrono::NaiveTime, chrono::NaiveTime), String> {
    crate::report::parse_business_hours(text)
}

#[derive(Debug, Args)]
pub struct CompactArgs {
    /// Aim for files of about this size
    #[arg(long, default_value = "256MiB", value_parser = parse_size)]
    pub target_size: u64,
    #[command(flatten)]
    pub window: WindowArgs,
    /// Print the plan; change nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub summary: SummaryArgs,
}

#[derive(Debug, Args)]
pub struct RetentionArgs {
    /// Keep this much history, e.g. 400d, 56w
    #[arg(long, value_parser = parse_duration_arg)]
    pub keep: chrono::Duration,
    /// Print the partitions that would be dropped; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Allow keeping less than 90 days
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub summary: SummaryArgs,
}

#[derive(Debug, Args)]
pub struct VacuumArgs {
    /// Only delete unreferenced files older than this
    #[arg(long, default_value = "24h", value_parser = parse_duration_arg)]
    pub older_than: chrono::Duration,
    /// List the files that would be deleted; delete nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Allow a window under 1 hour (only when nothing else runs)
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub summary: SummaryArgs,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Show at most this many commits, newest first
    #[arg(long)]
    pub limit: Option<usize>,
    /// `table` for people, `json` for tools
    #[arg(long, value_enum, default_value_t = InfoFormat::Table)]
    pub format: InfoFormat,
}

fn parse_duration_arg(text: &str) -> Result<chrono::Duration, String> {
    crate::query::window::parse_duration(text)
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Files, directories or `-` (stdin)
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,

    #[command(flatten)]
    pub summary: SummaryArgs,

    /// Roll to a new Parquet file past this size (e.g. 256MiB, 64MB)
    #[arg(long, default_value = "256MiB", value_parser = parse_size)]
    pub target_file_size: u64,

    /// Rows per internal batch (memory vs. overhead)
    #[arg(long, default_value_t = 8 * 1024, hide = true)]
    pub batch_rows: usize,
}

/// `--format` of a job's summary.
#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// Summary format: `text` on stderr, or `json` on stdout
    #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
    pub format: SummaryFormat,
}

impl SummaryArgs {
    /// Prints a job's metrics: JSON on stdout, or (unless quiet) the text on stderr.
    fn print<M: serde::Serialize>(
        &self,
        say: bool,
        metrics: &M,
        text: impl FnOnce(&M) -> Result<String, std::fmt::Error>,
    ) -> Result<()> {
        if self.format == SummaryFormat::Json {
            println!("{}", serde_json::to_string_pretty(metrics)?);
        } else if say {
            eprint!("{}", text(metrics)?);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum SummaryFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ResultFormat {
    Table,
    Csv,
    Json,
    Ndjson,
    Parquet,
}

impl From<ResultFormat> for OutputFormat {
    fn from(f: ResultFormat) -> Self {
        match f {
            ResultFormat::Table => OutputFormat::Table,
            ResultFormat::Csv => OutputFormat::Csv,
            ResultFormat::Json => OutputFormat::Json,
            ResultFormat::Ndjson => OutputFormat::Ndjson,
            ResultFormat::Parquet => OutputFormat::Parquet,
        }
    }
}

#[derive(Debug, Args)]
pub struct WindowArgs {
    /// Only events at or after this: a date (2026-09-01), an RFC 3339 time, or a duration back from now (7d, 12h)
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,

    /// Only events before this; a date includes that whole day
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
}

#[derive(Debug, Args)]
pub struct EngineArgs {
    /// Run on a Ballista cluster: its scheduler, as df://HOST:PORT (builds with `--features cluster`;
    /// `auditlake cluster` starts one in-process to try it)
    #[arg(long, value_name = "df://HOST:PORT")]
    pub cluster: Option<String>,
}

impl EngineArgs {
    fn engine(&self) -> Engine {
        self.cluster.clone().map_or(Engine::Local, Engine::Cluster)
    }
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Result format (`json` is one array of objects; `parquet` needs --out)
    #[arg(long, value_enum, default_value_t = ResultFormat::Table)]
    pub format: ResultFormat,

    /// Write results to this file instead of stdout
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Read the table as of this Delta version (time travel)
    #[arg(long, value_name = "N")]
    pub as_of_version: Option<u64>,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The SQL; the table is `audit_log`
    #[arg(value_name = "SQL", conflicts_with_all = ["name", "list"], required_unless_present_any = ["name", "list"])]
    pub sql: Option<String>,

    /// Run a named query (see --list)
    #[arg(long, short)]
    pub name: Option<String>,

    /// List the named queries and their parameters
    #[arg(long)]
    pub list: bool,

    /// A folder of your own `.sql` named queries (added to the embedded ones)
    #[arg(long, env = "AUDITLAKE_QUERIES", value_name = "DIR")]
    pub queries: Option<PathBuf>,

    /// A named query's parameter, as NAME=VALUE (repeatable)
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,

    #[command(flatten)]
    pub window: WindowArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Exact action, any case (repeatable), e.g. 'User role updated'
    #[arg(long)]
    pub action: Vec<String>,
    /// Actor's email, any case (repeatable)
    #[arg(long)]
    pub email: Vec<String>,
    /// Part of the actor's name (repeatable)
    #[arg(long)]
    pub actor: Vec<String>,
    /// web_app, api_key, or none (the AI analyst) (repeatable)
    #[arg(long)]
    pub actor_type: Vec<String>,
    /// Workflow tag (repeatable)
    #[arg(long)]
    pub tag: Vec<String>,
    /// Case scenario_id, e.g. CASE_CREATED (repeatable)
    #[arg(long)]
    pub scenario: Vec<String>,
    /// Client IP (repeatable)
    #[arg(long)]
    pub ip: Vec<String>,
    /// Event id (repeatable)
    #[arg(long)]
    pub id: Vec<String>,
    /// Resource id, or part of the resource name (repeatable)
    #[arg(long)]
    pub resource: Vec<String>,
    /// Workspace name or account id (repeatable)
    #[arg(long)]
    pub workspace: Vec<String>,
    /// Text anywhere in action, actor, email, resource name or extra_data
    #[arg(long)]
    pub text: Option<String>,
    /// At most this many events (0 for all)
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Oldest first
    #[arg(long)]
    pub oldest_first: bool,
    /// Every column, not just the ones people read first
    #[arg(long)]
    pub all_columns: bool,

    #[command(flatten)]
    pub window: WindowArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Args)]
pub struct FormatArgs {
    /// `table` for people, `json` for tools
    #[arg(long, value_enum, default_value_t = InfoFormat::Table)]
    pub format: InfoFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum InfoFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Number of distinct events
    #[arg(long, default_value_t = 10_000)]
    pub events: u64,
    /// Days the events spread over
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Number of workspaces (accounts)
    #[arg(long, default_value_t = 3)]
    pub workspaces: u32,
    /// First UTC day
    #[arg(long, default_value = "2026-10-01", value_parser = parse_date)]
    pub start: chrono::NaiveDate,
    /// Random seed (the same seed gives the same feed)
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Fraction of events delivered twice, like Torq's re-deliveries (0 to 1)
    #[arg(long, default_value_t = 0.0)]
    pub duplicates: f64,
    /// Feed shape
    #[arg(long, value_enum, default_value_t = GenFormat::Ndjson)]
    pub format: GenFormat,
    /// Write here instead of stdout
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum GenFormat {
    /// One entry a line
    Ndjson,
    /// One JSON array
    Json,
    /// Torq API pages of 500, one a line
    Pages,
}

/// Parses `256MiB`, `64MB`, `1GiB`, `1048576`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("invalid size '{text}': expected e.g. 256MiB, 64MB"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "kib" | "k" => 1 << 10,
        "mb" => 1_000_000,
        "mib" | "m" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" | "g" => 1 << 30,
        _ => return Err(format!("invalid size '{text}': unknown unit '{unit}' (use B, KiB, MiB, GiB, KB, MB, GB)")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("invalid size '{text}': too large"))
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    let (k, v) = text.split_once('=').ok_or_else(|| format!("invalid parameter '{text}': expected NAME=VALUE"))?;
    if k.is_empty() {
        return Err(format!("invalid parameter '{text}': empty name"));
    }
    Ok((k.to_string(), v.to_string()))
}

fn parse_date(text: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("invalid date '{text}': expected YYYY-MM-DD"))
}

fn window(args: &WindowArgs) -> Result<Window> {
    Window::parse(args.since.as_deref(), args.until.as_deref(), chrono::Utc::now()).map_err(anyhow::Error::msg)
}

/// Runs the parsed command; returns the process exit status.
pub async fn run(cli: Cli) -> Result<u8> {
    let lake = Lake::open(&cli.lake)?;
    let say = !cli.quiet;
    match cli.command {
        Command::Ingest(args) => {
            let opts = IngestOptions {
                inputs: args.inputs,
                progress: say && std::io::stderr().is_terminal(),
                batch_rows: args.batch_rows,
                target_file_size: args.target_file_size,
            };
            let metrics = crate::ingest::ingest(&lake, &opts).await.context("ingest failed")?;
            args.summary.print(say, &metrics, |m| Ok(ingest_summary(&lake, m)))?;
            Ok(if metrics.rejected > 0 { EXIT_REJECTED } else { 0 })
        }
        Command::Query(args) => query(&lake, args, say).await,
        Command::Search(args) => {
            let filters = SearchFilters {
                actions: args.action,
                emails: args.email,
                actors: args.actor,
                actor_types: args.actor_type,
                tags: args.tag,
                scenarios: args.scenario,
                ips: args.ip,
                ids: args.id,
                resources: args.resource,
                workspaces: args.workspace,
                text: args.text,
                limit: (args.limit > 0).then_some(args.limit),
                ascending: args.oldest_first,
                all_columns: args.all_columns,
            };
            let session =
                crate::query::open(&lake, &window(&args.window)?, args.output.as_of_version, &args.engine.engine())
                    .await?;
            let df = crate::query::search::search(&session, &filters).await?;
            let rows = crate::query::output::write(df, args.output.format.into(), args.output.out.as_deref()).await?;
            if say {
                eprintln!(
                    "{rows} events{}",
                    if Some(rows as usize) == filters.limit { " (limit reached; --limit 0 for all)" } else { "" }
                );
            }
            Ok(0)
        }
        Command::Schema(args) => {
            let schema = schema::arrow_schema();
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
            let mut out = std::io::stdout().lock();
            if args.format == InfoFormat::Json {
                writeln!(out, "{}", serde_json::to_string_pretty(&cols)?)?;
            } else {
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
            }
            Ok(0)
        }
        Command::Stats(args) => {
            let Some(table) = lake.load(None).await? else {
                bail!("no table at {} yet; run `auditlake ingest` first", lake.display_path(schema::TABLE_NAME));
            };
            let stats = crate::lake::table_stats(&lake, &table).await?;
            let mut out = std::io::stdout().lock();
            if args.format == InfoFormat::Json {
                writeln!(out, "{}", serde_json::to_string_pretty(&stats)?)?;
            } else {
                writeln!(out, "table    {}", stats.table)?;
                writeln!(out, "version  {}", stats.version)?;
                if let Some(c) = &stats.last_commit {
                    writeln!(
                        out,
                        "last     {} {}",
                        c.timestamp.as_deref().unwrap_or("?"),
                        c.operation.as_deref().unwrap_or("?")
                    )?;
                }
                writeln!(
                    out,
                    "rows     {}\nfiles    {}\nbytes    {}",
                    stats.rows,
                    stats.files,
                    human_bytes(stats.bytes)
                )?;
                writeln!(out, "\n{:<12} {:>10} {:>6} {:>10}", "date", "rows", "files", "bytes")?;
                for p in &stats.partitions {
                    writeln!(out, "{:<12} {:>10} {:>6} {:>10}", p.date, p.rows, p.files, human_bytes(p.bytes))?;
                }
            }
            Ok(0)
        }
        Command::Compact(args) => {
            let opts = crate::maintain::CompactOptions {
                target_size: args.target_size,
                window: window(&args.window)?,
                dry_run: args.dry_run,
            };
            let m = crate::maintain::compact(&lake, &opts).await.context("compaction failed")?;
            args.summary.print(say, &m, |m| {
                let mut s = String::new();
                if m.dry_run {
                    let rows: u64 = m.partitions.iter().map(|p| p.rows).sum();
                    writeln!(
                        s,
                        "would compact {} partition(s): {} files ({}, {rows} rows)",
                        m.partitions.len(),
                        m.files_before,
                        human_bytes(m.bytes_before)
                    )?;
                } else {
                    writeln!(
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
                )?;
                }
                for p in &m.partitions {
                    writeln!(s, "  {}  {} files  {}", p.date, p.files.len(), human_bytes(p.bytes))?;
                }
                if let Some(v) = m.table_version {
                    writeln!(s, "  committed version {v}, checkpoint written")?;
                }
                Ok(s)
            })?;
            Ok(0)
        }
        Command::Retention(args) => {
            let opts = crate::maintain::RetentionOptions {
                keep: args.keep,
                dry_run: args.dry_run,
                force: args.force,
                today: crate::maintain::today(),
            };
            let m = crate::maintain::retention(&lake, &opts).await.context("retention failed")?;
            args.summary.print(say, &m, |m| {
                let mut s = String::new();
                let verb = if m.dry_run { "would drop" } else { "dropped" };
                writeln!(
                    s,
                    "{verb} {} partition(s) before {}: {} files, {} rows, {}",
                    m.dropped_partitions.len(),
                    m.cutoff,
                    m.files_removed,
                    m.rows_removed,
                    human_bytes(m.bytes_removed)
                )?;
                for d in &m.dropped_partitions {
                    writeln!(s, "  {d}")?;
                }
                if let Some(v) = m.table_version {
                    writeln!(s, "  committed version {v}; run `auditlake vacuum` to delete the files")?;
                }
                Ok(s)
            })?;
            Ok(0)
        }
        Command::Vacuum(args) => {
            let opts = crate::maintain::VacuumOptions {
                older_than: args.older_than,
                dry_run: args.dry_run,
                force: args.force,
            };
            let m = crate::maintain::vacuum(&lake, &opts).await.context("vacuum failed")?;
            args.summary.print(say, &m, |m| {
                let mut s = String::new();
                let verb = if m.dry_run { "would delete" } else { "deleted" };
                writeln!(s, "{verb} {} unreferenced file(s), {:.2} s", m.files_deleted.len(), m.seconds)?;
                for f in &m.files_deleted {
                    writeln!(s, "  {f}")?;
                }
                Ok(s)
            })?;
            Ok(0)
        }
        Command::History(args) => {
            let entries = crate::maintain::history(&lake, args.limit).await?;
            let mut out = std::io::stdout().lock();
            if args.format == InfoFormat::Json {
                writeln!(out, "{}", serde_json::to_string_pretty(&entries)?)?;
            } else {
                writeln!(out, "{:>7}  {:<24}  {:<14}  metrics", "version", "time", "operation")?;
                for e in &entries {
                    let metrics = e.metrics.as_ref().map(|m| m.to_string()).unwrap_or_default();
                    writeln!(
                        out,
                        "{:>7}  {:<24}  {:<14}  {metrics}",
                        e.version,
                        e.timestamp.as_deref().unwrap_or("?"),
                        e.operation.as_deref().unwrap_or("?")
                    )?;
                }
            }
            Ok(0)
        }
        Command::Report(args) => report(&lake, args, say).await,
        #[cfg(feature = "cluster")]
        Command::Cluster(args) => {
            let vcores = args.vcores.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
            let addr = crate::cluster::start_standalone(vcores).await?;
            println!("df://localhost:{}", addr.port());
            std::io::stdout().flush()?;
            if say {
                eprintln!("Ballista scheduler on {addr} with one executor of {vcores} task slots; Ctrl-C stops them");
            }
            tokio::signal::ctrl_c().await?;
            Ok(0)
        }
        Command::Generate(args) => {
            if !(0.0..=1.0).contains(&args.duplicates) {
                bail!("invalid --duplicates {}: expected a fraction from 0 to 1", args.duplicates);
            }
            let opts = GenerateOptions {
                events: args.events,
                days: args.days,
                workspaces: args.workspaces,
                start: args.start,
                seed: args.seed,
                format: match args.format {
                    GenFormat::Ndjson => FeedFormat::Ndjson,
                    GenFormat::Json => FeedFormat::JsonArray,
                    GenFormat::Pages => FeedFormat::Pages,
                },
                duplicate_rate: args.duplicates,
            };
            let written = match &args.out {
                Some(path) => {
                    let file =
                        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
                    crate::generate::generate(&opts, &mut std::io::BufWriter::with_capacity(1 << 20, file))?
                }
                None => crate::generate::generate(
                    &opts,
                    &mut std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock()),
                )?,
            };
            if say {
                eprintln!("generated {written} entries ({} distinct events over {} days)", args.events, args.days);
            }
            Ok(0)
        }
    }
}

async fn query(lake: &Lake, args: QueryArgs, say: bool) -> Result<u8> {
    if args.list {
        let all = named::catalog(args.queries.as_deref())?;
        let mut out = std::io::stdout().lock();
        for q in all.values() {
            let params = if q.params.is_empty() {
                String::new()
            } else {
                format!("  [--param {}]", q.params.iter().map(|p| format!("{p}=...")).collect::<Vec<_>>().join(" "))
            };
            let origin = if q.origin == "embedded" { String::new() } else { format!("  ({})", q.origin) };
            writeln!(out, "{:<20} {}{params}{origin}", q.name, q.description)?;
        }
        return Ok(0);
    }
    let session =
        crate::query::open(lake, &window(&args.window)?, args.output.as_of_version, &args.engine.engine()).await?;
    if session.version.is_none() && say {
        eprintln!(
            "note: no table at {} yet; the result is empty (run `auditlake ingest` first)",
            lake.display_path(schema::TABLE_NAME)
        );
    }
    let df = match (&args.sql, &args.name) {
        (Some(sql), _) => {
            if !args.params.is_empty() {
                bail!("--param applies to named queries (--name)");
            }
            crate::query::sql(&session, sql).await?
        }
        (None, Some(name)) => {
            let q = named::find(name, args.queries.as_deref())?;
            let given: HashMap<String, String> = args.params.into_iter().collect();
            let params = q.param_values(&given)?;
            let df = crate::query::sql(&session, &q.sql)
                .await
                .with_context(|| format!("named query '{}' ({})", q.name, q.origin))?;
            match params {
                Some(p) => df.with_param_values(p)?,
                None => df,
            }
        }
        (None, None) => bail!("give SQL, --name NAME or --list"),
    };
    let rows = crate::query::output::write(df, args.output.format.into(), args.output.out.as_deref()).await?;
    if let (true, Some(out)) = (say, &args.output.out) {
        eprintln!("wrote {rows} rows to {}", out.display());
    }
    Ok(0)
}

async fn report(lake: &Lake, args: ReportArgs, say: bool) -> Result<u8> {
    use crate::report::render::{self, Format};
    if args.list {
        let mut out = std::io::stdout().lock();
        for s in crate::report::catalog::sections(args.queries.as_deref())? {
            let title = s.info.map_or(s.name.as_str(), |i| i.title);
            writeln!(out, "{:<16} {title}", s.name)?;
            for t in &s.tables {
                let origin = if t.origin == "embedded" { String::new() } else { format!("  ({})", t.origin) };
                writeln!(out, "  {:<36} {}{origin}", t.key, t.title)?;
            }
        }
        return Ok(0);
    }
    let (Some(from), Some(to)) = (args.from, args.to) else { bail!("--from and --to are required") };
    let format = match (args.format, &args.out) {
        (Some(f), _) => f,
        (None, Some(out)) => match out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("html" | "htm") => ReportFormat::Html,
            Some("json") => ReportFormat::Json,
            Some(_) => ReportFormat::Md,
            // A path without an extension is taken as the CSV folder.
            None => ReportFormat::Csv,
        },
        (None, None) => ReportFormat::Md,
    };
    let format = match format {
        ReportFormat::Html => Format::Html,
        ReportFormat::Md => Format::Markdown,
        ReportFormat::Json => Format::Json,
        ReportFormat::Csv => Format::Csv,
    };
    if format == Format::Csv && args.out.is_none() {
        bail!("--format csv writes one file per table: give a folder with --out DIR");
    }
    let opts = crate::report::ReportOptions {
        from,
        to,
        tz: args.tz,
        business_hours: args.business_hours,
        workspaces: args.workspace,
        sections: args.section,
        as_of_version: args.as_of_version,
        burst_failures: args.burst_failures,
        burst_minutes: args.burst_minutes,
        gap_hours: args.gap_hours,
        queries_dir: args.queries,
        generated_at: generation_time()?,
        engine: args.engine.engine(),
    };
    let started = std::time::Instant::now();
    let report = crate::report::build(lake, &opts).await.context("report failed")?;
    let body = match format {
        Format::Html => Some(render::html::render(&report)),
        Format::Markdown => Some(render::markdown::render(&report)),
        Format::Json => Some(render::json(&report)),
        Format::Csv => None,
    };
    let target = match (&body, &args.out) {
        (Some(body), Some(path)) => {
            std::fs::write(path, body).with_context(|| format!("cannot write the report to {}", path.display()))?;
            path.display().to_string()
        }
        (Some(body), None) => {
            std::io::stdout().lock().write_all(body.as_bytes())?;
            "stdout".to_string()
        }
        (None, Some(dir)) => {
            let files = render::csv::write(&report, dir)?;
            format!("{} ({} files)", dir.display(), files.len())
        }
        (None, None) => unreachable!("checked above: csv needs --out"),
    };
    if say {
        let tables: usize = report.sections.iter().map(|s| s.tables.len()).sum();
        eprintln!(
            "report: {} events, {} section{}, {tables} tables from table version {} in {:.2} s, {} to {target}",
            report.header.events,
            report.sections.len(),
            if report.sections.len() == 1 { "" } else { "s" },
            report.header.table_version.map_or("none".to_string(), |v| v.to_string()),
            started.elapsed().as_secs_f64(),
            format.name()
        );
    }
    Ok(0)
}

/// Now, or `SOURCE_DATE_EPOCH` (seconds) when set, so a rerun can reproduce a report exactly.
fn generation_time() -> Result<chrono::DateTime<chrono::Utc>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) => {
            let secs: i64 =
                s.trim().parse().with_context(|| format!("invalid SOURCE_DATE_EPOCH '{s}': expected seconds"))?;
            chrono::DateTime::from_timestamp(secs, 0)
                .with_context(|| format!("SOURCE_DATE_EPOCH '{s}' is out of range"))
        }
        Err(_) => Ok(chrono::Utc::now()),
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[i]) }
}

/// The human summary of an ingest run.
pub fn ingest_summary(lake: &Lake, m: &IngestMetrics) -> String {
    let mut s = String::new();
    let version = match m.table_version {
        Some(v) => format!("committed version {v}"),
        None => "nothing new to commit".to_string(),
    };
    s.push_str(&format!(
        "ingested {} of {} records from {} input{} into {} ({version})\n",
        m.ingested,
        m.read,
        m.inputs,
        if m.inputs == 1 { "" } else { "s" },
        lake.location()
    ));
    s.push_str(&format!("  duplicates skipped  {}\n", m.duplicates));
    s.push_str(&format!("  rejected            {}\n", m.rejected));
    for f in &m.rejected_files {
        s.push_str(&format!("    reasons and records in {f}\n"));
    }
    let parts = match (m.partitions.first(), m.partitions.last()) {
        (Some(a), Some(b)) if a != b => format!("{} ({a} .. {b})", m.partitions.len()),
        (Some(a), _) => format!("1 ({a})"),
        _ => "0".to_string(),
    };
    s.push_str(&format!("  partitions touched  {parts}\n"));
    s.push_str(&format!(
        "  read {}, wrote {} in {} file{}, {:.2} s, {:.0} records/s\n",
        human_bytes(m.bytes_read),
        human_bytes(m.bytes_written),
        m.files_written,
        if m.files_written == 1 { "" } else { "s" },
        m.seconds,
        m.rows_per_sec
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes_parse_and_echo_bad_input() {
        assert_eq!(parse_size("256MiB").unwrap(), 256 << 20);
        assert_eq!(parse_size("64MB").unwrap(), 64_000_000);
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert!(parse_size("12 parsecs").unwrap_err().contains("'12 parsecs'"));
    }

    #[test]
    fn params_need_a_name_and_equals() {
        assert_eq!(parse_param("email=a=b").unwrap(), ("email".into(), "a=b".into()));
        assert!(parse_param("email").is_err());
        assert!(parse_param("=x").is_err());
    }
}
