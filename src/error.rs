//! The library's one public error type. Variants name what failed and carry what a user needs
//! to act on it (a path, a table, a version, a query name). [`Error::is_usage`] tells the
//! binary which ones are the caller's mistake (exit status 2) rather than a failure (1).

use deltalake::DeltaTableError;
use deltalake::datafusion::error::DataFusionError;

/// Everything that can fail in auditlake's jobs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input file or directory could not be opened or read.
    #[error("cannot read input '{path}': {source}")]
    Input { path: String, source: std::io::Error },

    /// The `--lake` location is not one auditlake can use.
    #[error("invalid lake location '{location}': {reason}")]
    LakeLocation { location: String, reason: String },

    /// A job that needs the table found none (nothing was ingested yet, or a wrong `--lake`).
    #[error("no table at {table} yet; run `auditlake ingest` first (or check --lake)")]
    NoTable { table: String },

    /// `--as-of-version` names a version the table does not have.
    #[error("the table at {table} has no version {version}; its newest is {newest}")]
    NoSuchVersion { table: String, version: u64, newest: u64 },

    /// A Delta Lake operation on the table failed.
    #[error("{action} the table at {table} failed: {source}")]
    Delta { action: &'static str, table: String, source: Box<DeltaTableError> },

    /// A file the table's log names is not what auditlake wrote (no date partition, bad path).
    #[error("table file '{path}': {reason}")]
    TableFile { path: String, reason: String },

    /// The lake's own files (quarantine, data files read directly) could not be read or written.
    #[error("cannot access '{path}' in the lake: {source}")]
    Store { path: String, source: Box<deltalake::ObjectStoreError> },

    /// A SQL statement failed to plan or run (the message is DataFusion's).
    #[error("{0}")]
    Query(#[source] Box<DataFusionError>),

    /// A report section's SQL failed; the file names the query to fix.
    #[error("report query {key} ({origin}) failed")]
    ReportQuery { key: String, origin: String, source: Box<Error> },

    /// The SQL would change data or files; the query surface is read-only.
    #[error(
        "refused: {statement} is not allowed; auditlake queries are read-only (SELECT, WITH, EXPLAIN, SHOW, DESCRIBE)"
    )]
    ReadOnly { statement: String },

    /// The SQL nests expressions deeper than auditlake plans.
    #[error("the SQL nests expressions more than {limit} deep; write long chains as IN (...) or split the query")]
    TooDeep { limit: usize },

    /// More or fewer than one SQL statement was given.
    #[error("expected exactly one SQL statement, found {found}")]
    StatementCount { found: usize },

    /// `--name` names no embedded or user query.
    #[error("no named query '{name}'; `auditlake query --list` shows them: {available}")]
    UnknownQuery { name: String, available: String },

    /// A named query needs a `--param` that was not given.
    #[error("query '{query}' needs --param {param}=VALUE")]
    MissingParam { query: String, param: String },

    /// A `--param` that the named query does not use.
    #[error("query '{query}' has no parameter '{param}' (its parameters: {known})")]
    UnknownParam { query: String, param: String, known: String },

    /// A user's queries folder could not be read.
    #[error("cannot read queries from '{path}': {source}")]
    QueriesDir { path: String, source: std::io::Error },

    /// A user's report query file is not usable (bad name, writes, unknown section).
    #[error("report query '{path}': {reason}")]
    ReportQueryFile { path: String, reason: String },

    /// `--section` names no report section.
    #[error("no report section '{name}'; `auditlake report --list` shows them: {available}")]
    UnknownSection { name: String, available: String },

    /// The report's period is empty or reversed.
    #[error("--from {from} is after --to {to}")]
    Period { from: chrono::NaiveDate, to: chrono::NaiveDate },

    /// The report's period is longer than a report can lay out day by day.
    #[error("the period {from} to {to} is {days} days; a report covers at most {max} days")]
    PeriodTooLong { from: chrono::NaiveDate, to: chrono::NaiveDate, days: i64, max: i64 },

    /// A time zone that is neither an IANA name, UTC, nor an offset.
    #[error("{0}")]
    TimeZone(String),

    /// A setting from the environment (`DATAFUSION_*`) that the engine refuses.
    #[error("environment variable {name}={value}: {reason}")]
    Setting { name: String, value: String, reason: String },

    /// `serve --users FILE` cannot be used (line 0: the file as a whole).
    #[error("users file {path}:{line}: {reason}")]
    UsersFile { path: String, line: usize, reason: String },

    /// `serve` cannot start as asked: TLS certificate or key, listen address, settings.
    #[error("serve: {reason}")]
    Serve { reason: String },

    /// Results could not be written.
    #[error("cannot write results to '{path}': {source}")]
    Output { path: String, source: std::io::Error },

    /// Parquet results need a file: the format is binary.
    #[error("--format parquet needs --out FILE (Parquet is binary)")]
    ParquetNeedsFile,

    /// Results could not be encoded as Parquet.
    #[error("cannot write Parquet results to '{path}': {source}")]
    ParquetOutput { path: String, source: deltalake::parquet::errors::ParquetError },

    /// Arrow failed while building or encoding record batches.
    #[error("Arrow: {0}")]
    Arrow(#[from] deltalake::arrow::error::ArrowError),

    /// A data file written by this job vanished before its commit (a vacuum that did not see the
    /// writer, or a hand deletion); nothing was committed.
    #[error(
        "data file '{path}' written for the table at {table} was deleted before it was committed; nothing was committed, rerun to finish"
    )]
    WrittenFileMissing { table: String, path: String },

    /// The ingest was cancelled (Ctrl-C) before it committed; the table is unchanged.
    #[error("cancelled before commit; the table is unchanged")]
    Cancelled,

    /// Another writer committed some of the same events while this ingest ran; nothing was
    /// committed, and rerunning the command finishes the job without doubling anything.
    #[error("another ingest committed some of the same events first; nothing was committed, rerun to finish")]
    ConcurrentOverlap,

    /// Torq's API failed, or answered what auditlake cannot use, after the retries allowed.
    #[error("Torq API {url}: {reason}")]
    Api { url: String, reason: String },

    /// Torq's API refused the credentials or the token.
    #[error("Torq API {url}: {reason}")]
    ApiAuth { url: String, reason: String },

    /// `pull` has no credentials to use.
    #[error("{0}")]
    Credentials(String),

    /// Tamper evidence could not be written or read.
    #[error("evidence '{path}': {reason}")]
    Evidence { path: String, reason: String },

    /// `export` cannot write its output, or cannot encode an event.
    #[error("export to '{out}': {reason}")]
    Export { out: String, reason: String },

    /// An export's flags do not fit together (e.g. `--region` without `--account-id`).
    #[error("{0}")]
    ExportOptions(String),

    /// A data file an export still has to read is gone: vacuum deleted it after a compaction.
    #[error(
        "export needs '{path}' (added at version {version}), which is no longer in the table at {table}: vacuum deleted it after a compaction; run export more often than vacuum's --older-than, or start a new export (a new --out) to export the table as it is"
    )]
    ExportSourceGone { table: String, path: String, version: u64 },

    /// `retention --keep` below the minimum without `--force`.
    #[error(
        "refusing to keep only {days} days: the minimum is {minimum} days (PCI DSS 10.5.1 asks for 12 months); add --force if you mean it"
    )]
    RetentionTooShort { days: i64, minimum: i64 },

    /// `vacuum --older-than` below the minimum without `--force`.
    #[error(
        "refusing to vacuum files younger than {minimum_hours} hour(s): running queries may still read them; add --force if no query or ingest is running"
    )]
    VacuumTooSoon { minimum_hours: i64 },

    /// `--cluster` is not a Ballista URL.
    #[error("--cluster '{url}': {reason}; expected df://HOST:PORT")]
    ClusterUrl { url: String, reason: String },

    /// This build has no Ballista client.
    #[error("--cluster needs a build with the Ballista client: cargo build --release --features cluster")]
    ClusterNotBuilt,

    /// The Ballista scheduler did not answer.
    #[error("cannot reach the Ballista scheduler at {url}: {reason}")]
    ClusterUnreachable { url: String, reason: String },

    /// The in-process scheduler or executor could not start.
    #[error("starting the Ballista {part} failed: {reason}")]
    ClusterStart { part: &'static str, reason: String },
}

impl Error {
    /// Whether the error is a mistake in the command's flags (a value, a name, a parameter),
    /// which the CLI reports with exit status 2 like a parse error. What the SQL or a file says
    /// (a refused statement, a bad report query) is a failure of the job: status 1.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::LakeLocation { .. }
                | Error::NoSuchVersion { .. }
                | Error::UnknownQuery { .. }
                | Error::MissingParam { .. }
                | Error::UnknownParam { .. }
                | Error::UnknownSection { .. }
                | Error::Period { .. }
                | Error::PeriodTooLong { .. }
                | Error::TimeZone(_)
                | Error::ParquetNeedsFile
                | Error::RetentionTooShort { .. }
                | Error::VacuumTooSoon { .. }
                | Error::ClusterUrl { .. }
                | Error::ClusterNotBuilt
                | Error::Credentials(_)
                | Error::ExportOptions(_)
                | Error::UsersFile { .. }
                | Error::Serve { .. }
        )
    }
}

impl From<DataFusionError> for Error {
    fn from(e: DataFusionError) -> Self {
        Error::Query(Box::new(e))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
