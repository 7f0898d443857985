//! The command line as clap sees it: commands, flags, their help text and value parsers. Only
//! this module and its parent know clap; [`super`] turns these into the jobs' plain options.

use std::path::PathBuf;

use auditlake::engine::Engine;
use auditlake::query::OutputFormat;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// auditlake keeps Torq audit logs in a Delta Lake table you own and answers SQL over it.
///
/// Start with `auditlake ingest sample-data/`, then `auditlake query --name by_action`.
#[derive(Debug, Parser)]
#[command(name = "auditlake", version, propagate_version = true, max_term_width = 100)]
#[command(after_help = "Exit status: 0 success; 1 failure; 2 usage error; \
3 ingest or pull committed its good records but rejected some or skipped inputs (see _rejected/ in the lake); \
4 verify found tampering; \
130 pull stopped by a signal before the end of its window (what it had read is committed).")]
pub struct Cli {
    /// Where the lake lives: a folder (created on first ingest), file:///path, s3://bucket/prefix
    /// (settings and credentials from the AWS_* environment), or memory://NAME
    #[arg(long, global = true, env = "AUDITLAKE_LAKE", default_value = "./lake", value_name = "URL")]
    pub lake: String,

    /// Also keep every evidence record here (for `verify`): a bucket under S3 Object Lock or
    /// another account, where whoever can write the lake cannot rewrite them
    #[arg(long, global = true, env = "AUDITLAKE_EVIDENCE_URL", value_name = "URL")]
    pub evidence_url: Option<String>,

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
    /// Bad records (not JSON objects, no id, no parseable timestamp, wrong types, over
    /// --max-entry-size) are written with their reason to <lake>/_rejected/ and the good ones are
    /// still ingested. An input that cannot be read (or only in part), and anything in a folder
    /// that is not a regular file, is skipped and reported the same way. The exit status is then
    /// 3, so a scheduler notices.
    #[command(after_help = "Examples:\n  auditlake ingest sample-data/\n  \
zcat torq-*.json.gz | auditlake ingest -\n  auditlake --lake /srv/lake ingest batch.json --format json")]
    Ingest(IngestArgs),

    /// Collect audit logs straight from Torq's API, from where the last pull stopped
    ///
    /// Reads pages of `GET /public/v1alpha/audit_logs`, oldest first, from the workspace's
    /// cursor minus --overlap (first run: --since, or 24 hours back) to now minus --settle, and
    /// loads them like `ingest`: normalised, deduplicated by id, bad entries quarantined. The
    /// cursor is committed with the rows it covers, so a killed pull resumes from its last commit
    /// and nothing is lost or counted twice. With --follow, pulls every --every until SIGTERM or
    /// Ctrl-C, finishing the commit in hand.
    ///
    /// Credentials: TORQ_CLIENT_ID and TORQ_CLIENT_SECRET (or --client-secret-file), an API key
    /// of the workspace; never printed or stored. One workspace a run: give each its own
    /// --workspace name to keep their cursors apart in one lake.
    #[command(after_help = "Examples:
  TORQ_CLIENT_ID=... TORQ_CLIENT_SECRET=... auditlake pull --since 90d
  auditlake pull --region eu --workspace emea --client-secret-file /run/secrets/torq
  auditlake pull --follow --every 5m --format json")]
    Pull(PullArgs),

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

    /// Check that the audit log was not changed after the fact (tamper evidence)
    ///
    /// Replays the table's log against the evidence every auditlake commit leaves: a SHA-256 of
    /// each data file in its add action and a hash chain over the commits in <lake>/_evidence/.
    /// Reports, by version and file: commits altered, removed, injected or written by another
    /// tool; live files altered, replaced or removed; files no commit added; data removed other
    /// than by auditlake's compaction or retention (those are listed as maintenance); checkpoints
    /// that disagree with the commits. Exit status 0 intact, 4 tampering found, 1 could not check.
    #[command(after_help = "Examples:\n  auditlake verify\n  auditlake verify --quick --format json\n  \
auditlake verify --init      # start the chain on a lake made before evidence existed")]
    Verify(VerifyArgs),

    /// Send the table's events elsewhere, incrementally: OCSF for Security Lake and SIEMs
    #[command(subcommand)]
    Export(ExportCommand),

    /// Answer SQL over the PostgreSQL protocol, read-only, for psql, BI tools and drivers
    ///
    /// Serves `audit_log` (read at its newest version by every query, so ingests, compactions
    /// and vacuums never interrupt one), each named query without parameters as a view, and
    /// the pg_catalog tables BI tools probe. Only reads run: DDL, DML, COPY and SET of engine
    /// settings are refused. Users log in with SCRAM-SHA-256 against --users (name:password
    /// lines, or hashes from --hash-password). Off loopback, TLS (--tls-cert, --tls-key) is
    /// required unless --insecure. Each query has its own memory pool and deadline; SIGTERM or
    /// Ctrl-C lets running queries finish (up to --shutdown-grace) and closes the rest.
    #[command(after_help = "Examples:
  printf 'analyst:%s\\n' \"$(openssl rand -hex 16)\" > users && chmod 600 users
  auditlake serve --users users                       # 127.0.0.1:5432
  psql 'host=127.0.0.1 user=analyst dbname=auditlake' -c 'SELECT * FROM by_action'
  auditlake serve --listen 0.0.0.0:5432 --users users --tls-cert server.crt --tls-key server.key
  auditlake serve --hash-password < password.txt      # a users-file entry without the password")]
    Serve(ServeArgs),

    /// An interactive SQL prompt over the lake, with history and psql-style commands
    ///
    /// Statements end with `;` and may span lines. `\d` lists tables and views, `\d NAME`
    /// shows columns, `\n NAME key=value` runs a named query, `\format`, `\timing`, `\i FILE`,
    /// `\?` for all, `\q` to quit. Ctrl-C cancels the running query and keeps the shell. Read-only
    /// like `query`. With stdin not a terminal, runs the statements it reads.
    #[command(after_help = "Examples:\n  auditlake shell\n  echo 'SELECT count(*) FROM audit_log;' | auditlake shell")]
    Shell(ShellArgs),

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
pub struct ServeArgs {
    /// Address and port to listen on; a non-loopback address needs TLS or --insecure
    #[arg(long, default_value = "127.0.0.1:5432", value_name = "ADDR:PORT")]
    pub listen: std::net::SocketAddr,

    /// Who may connect: `name:password` lines (or `name:` + a --hash-password line)
    #[arg(long, env = "AUDITLAKE_SERVE_USERS", value_name = "FILE", required_unless_present = "hash_password")]
    pub users: Option<PathBuf>,

    /// TLS certificate chain (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM: PKCS#8, PKCS#1 or SEC1)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Listen off loopback without TLS (passwords stay safe under SCRAM, query results do not)
    #[arg(long)]
    pub insecure: bool,

    /// Connections at once; the next is refused with "too many clients"
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_connections: usize,

    /// Cancel a statement running longer than this, rows sent included (a client may set a
    /// lower statement_timeout)
    #[arg(long, default_value = "5m", value_parser = parse_duration_arg, value_name = "DURATION")]
    pub statement_timeout: chrono::Duration,

    /// Memory one query may hold before it spills or fails (all queries together: at most
    /// AUDITLAKE_MEMORY_LIMIT, by default half of this machine's memory)
    #[arg(long, default_value = "1GiB", value_parser = parse_size, value_name = "SIZE")]
    pub query_memory: u64,

    /// On SIGTERM or Ctrl-C, how long running queries may take to finish
    #[arg(long, default_value = "10s", value_parser = parse_duration_arg, value_name = "DURATION")]
    pub shutdown_grace: chrono::Duration,

    /// A folder of your own named queries (*.sql), served as views too
    #[arg(long, env = "AUDITLAKE_QUERIES", value_name = "DIR")]
    pub queries: Option<PathBuf>,

    /// Print a users-file hash of the password read from stdin, and exit
    #[arg(long, conflicts_with_all = ["users", "tls_cert", "insecure"])]
    pub hash_password: bool,
}

#[derive(Debug, Args)]
pub struct ShellArgs {
    /// A folder of your own named queries (*.sql)
    #[arg(long, env = "AUDITLAKE_QUERIES", value_name = "DIR")]
    pub queries: Option<PathBuf>,

    /// Where line history is kept (default: ~/.auditlake_history)
    #[arg(long, env = "AUDITLAKE_HISTORY", value_name = "FILE")]
    pub history: Option<PathBuf>,
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
    auditlake::report::parse_business_hours(text)
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
pub struct VerifyArgs {
    /// Check the log and file sizes only; skip hashing every live file
    #[arg(long)]
    pub quick: bool,
    /// Check the table up to this version instead of the newest
    #[arg(long, value_name = "N")]
    pub as_of_version: Option<u64>,
    /// Start the evidence chain at the newest version of a lake made before evidence existed
    /// (the first commit of a new auditlake does the same); then verify
    #[arg(long)]
    pub init: bool,
    /// Require every evidence record to be signed by this Ed25519 key: 64 hex digits, or a file
    /// (hex, or PEM from `openssl pkey -pubout`). Writers sign with AUDITLAKE_SIGNING_KEY
    #[arg(long, env = "AUDITLAKE_VERIFY_KEY", value_name = "KEY")]
    pub public_key: Option<String>,
    /// Write a new signing key (PKCS#8 PEM, mode 0600) to FILE, print its public key, and exit
    #[arg(long, value_name = "FILE", exclusive = true)]
    pub new_key: Option<PathBuf>,
    /// `table` for people (stdout), `json` for tools
    #[arg(long, value_enum, default_value_t = InfoFormat::Table)]
    pub format: InfoFormat,
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Write what was committed since the last export to OUT as OCSF 1.1 events
    ///
    /// Every Torq action maps to an OCSF class: Authentication (3002), Account Change (3001),
    /// User Access Management (3005) or API Activity (6003); an action auditlake does not know is
    /// API Activity with activity 99 (Other), never dropped. One folder per class and UTC day,
    /// rows sorted by time. With --region and --account-id, the folders follow Amazon Security
    /// Lake's custom-source layout: ext/<source>/region=<R>/accountId=<A>/eventDay=YYYYMMDD/.
    ///
    /// Each output (OUT and format) remembers in the lake how far it got, so a scheduled export
    /// sends each event once. A killed export is finished by the next run, which rewrites the
    /// same files with the same events before going on.
    #[command(after_help = "Examples:
  auditlake export ocsf --out s3://aws-security-data-lake-eu-west-1-abc/ --region eu-west-1 --account-id 123456789012
  auditlake export ocsf --out /var/spool/siem --format ndjson
  auditlake export ocsf --out ./ocsf --since 2026-01-01 --summary json")]
    Ocsf(OcsfArgs),
}

#[derive(Debug, Args)]
pub struct OcsfArgs {
    /// Where the files go: a folder, or s3://bucket/prefix (and gs://, az:// in builds with them)
    #[arg(long, value_name = "URL")]
    pub out: String,

    /// `parquet` (zstd; what Security Lake takes) or `ndjson` (one event a line, for a SIEM)
    #[arg(long, value_enum, default_value_t = OcsfFormat::Parquet)]
    pub format: OcsfFormat,

    /// Leave out events before this time, in every run: a duration back from now (400d), a date
    /// or an RFC 3339 time
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,

    /// The Security Lake's AWS region (with --account-id: Security Lake's layout)
    #[arg(long, value_name = "REGION", requires = "account_id")]
    pub region: Option<String>,

    /// The AWS account id of the Security Lake (with --region)
    #[arg(long, value_name = "ID", requires = "region")]
    pub account_id: Option<String>,

    /// Name each class's source <PREFIX>-<class>, e.g. torq-authentication
    #[arg(long, default_value = "torq", value_name = "PREFIX")]
    pub source_prefix: String,

    /// At most this many events a file; a day's events are written whenever this many wait, which
    /// bounds memory (about 470 MiB at the default, measured on 10M events)
    #[arg(long, default_value_t = 50_000, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub rows_per_file: u64,

    /// Summary format: `text` on stderr, or `json` on stdout
    #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
    pub summary: SummaryFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OcsfFormat {
    Parquet,
    Ndjson,
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
    auditlake::time::parse_duration(text)
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

    /// Quarantine entries larger than this (their first KiB and size are kept), so no single
    /// entry can take the memory of the run
    #[arg(long, default_value = "8MiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_entry_size: u64,

    /// Follow symbolic links inside input folders (links named as INPUT are always followed)
    #[arg(long)]
    pub follow: bool,

    /// Rows per internal batch (memory vs. overhead)
    #[arg(long, default_value_t = 8 * 1024, hide = true)]
    pub batch_rows: usize,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Where the first pull of this workspace starts (later pulls start at its cursor): a
    /// duration back from now (90d), a date (2026-11-01) or an RFC 3339 time [default: 24h]
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,

    /// End here instead of at now minus --settle (same forms as --since)
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,

    /// Re-read this much before the cursor, to pick up entries that arrived late (at least 1s)
    #[arg(long, default_value = "10m", value_parser = parse_duration_arg, value_name = "DURATION")]
    pub overlap: chrono::Duration,

    /// Leave out the newest entries, which Torq may still be adding (up to about 5 minutes late)
    #[arg(long, default_value = "5m", value_parser = parse_duration_arg, value_name = "DURATION")]
    pub settle: chrono::Duration,

    /// Names this workspace's cursor in the lake (one lake can hold several workspaces)
    #[arg(long, env = "TORQ_WORKSPACE", default_value = "default", value_name = "NAME")]
    pub workspace: String,

    /// Torq's hosts: us (auth.torq.io, api.torq.io) or eu (auth.eu.torq.io, api.eu.torq.io)
    #[arg(long, value_enum, default_value_t = Region::Us)]
    pub region: Region,

    /// The token service's URL instead of the region's (plain http only on loopback)
    #[arg(long, env = "TORQ_AUTH_URL", value_name = "URL")]
    pub auth_url: Option<String>,

    /// The API's URL instead of the region's (plain http only on loopback)
    #[arg(long, env = "TORQ_API_URL", value_name = "URL")]
    pub api_url: Option<String>,

    /// The API key's client id
    #[arg(long, env = "TORQ_CLIENT_ID", hide_env_values = true, value_name = "ID")]
    pub client_id: Option<String>,

    /// Read the client secret from this file (e.g. a Kubernetes secret mount) instead of
    /// TORQ_CLIENT_SECRET
    #[arg(long, env = "TORQ_CLIENT_SECRET_FILE", value_name = "PATH")]
    pub client_secret_file: Option<PathBuf>,

    /// Keep pulling every --every until SIGTERM or Ctrl-C (for a service)
    #[arg(long)]
    pub follow: bool,

    /// The interval of --follow
    #[arg(long, default_value = "5m", value_parser = parse_duration_arg, value_name = "DURATION", requires = "follow")]
    pub every: chrono::Duration,

    /// Commit after this many pages (a killed backfill resumes from its last commit)
    #[arg(long, default_value_t = 50, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub commit_pages: u32,

    /// ... or after this long since the last commit, whichever comes first
    #[arg(long, default_value = "5m", value_parser = parse_duration_arg, value_name = "DURATION")]
    pub commit_interval: chrono::Duration,

    /// Entries a page (the API allows 1 to 500)
    #[arg(long, default_value_t = 500, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=500))]
    pub page_size: u32,

    /// Requests a second at most (the API allows 50)
    #[arg(long, default_value_t = 40, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=50))]
    pub max_rate: u32,

    /// Give up on a request after this many failed attempts in a row (5xx, timeouts, 429)
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub max_retries: u32,

    /// One request's time limit
    #[arg(long, default_value = "60s", value_parser = parse_duration_arg, value_name = "DURATION")]
    pub request_timeout: chrono::Duration,

    #[command(flatten)]
    pub summary: SummaryArgs,

    /// Roll to a new Parquet file past this size
    #[arg(long, default_value = "256MiB", value_parser = parse_size)]
    pub target_file_size: u64,

    /// Quarantine entries larger than this (their first KiB and size are kept)
    #[arg(long, default_value = "8MiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_entry_size: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Region {
    Us,
    Eu,
}

/// `--format` of a job's summary.
#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// Summary format: `text` on stderr, or `json` on stdout
    #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
    pub format: SummaryFormat,
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

    /// Give up after this long (e.g. 30s, 5m); a query's memory is limited by
    /// AUDITLAKE_MEMORY_LIMIT (default: half of this machine's memory)
    #[arg(long, value_parser = parse_duration_arg, value_name = "DURATION")]
    pub timeout: Option<chrono::Duration>,
}

impl EngineArgs {
    pub fn engine(&self) -> Engine {
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

fn parse_size(text: &str) -> Result<u64, String> {
    auditlake::units::parse_size(text)
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn params_need_a_name_and_equals() {
        assert_eq!(parse_param("email=a=b").unwrap(), ("email".into(), "a=b".into()));
        assert!(parse_param("email").is_err());
        assert!(parse_param("=x").is_err());
    }
}
