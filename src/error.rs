//! The library's one public error type. Variants name what failed and carry what a user needs
//! to act on it (a path, a query name, a statement).

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

    /// A Delta Lake operation on the table failed.
    #[error("{action} failed on the table at {table}: {source}")]
    Delta { action: &'static str, table: String, source: Box<DeltaTableError> },

    /// The lake's own files (quarantine) could not be written.
    #[error("cannot write '{path}' in the lake: {source}")]
    Store { path: String, source: Box<deltalake::ObjectStoreError> },

    /// A SQL statement failed to plan or run.
    #[error("{0}")]
    Query(#[from] Box<DataFusionError>),

    /// The SQL would change data or files; the query surface is read-only.
    #[error(
        "refused: {statement} is not allowed; auditlake queries are read-only (SELECT, WITH, EXPLAIN, SHOW, DESCRIBE)"
    )]
    ReadOnly { statement: String },

    /// `--name` names no embedded or user query.
    #[error("no named query '{name}'; `auditlake query --list` shows them: {available}")]
    UnknownQuery { name: String, available: String },

    /// A named query needs a `--param` that was not given.
    #[error("query '{query}' needs --param {param}=VALUE")]
    MissingParam { query: String, param: String },

    /// A user's queries folder could not be read.
    #[error("cannot read queries from '{path}': {source}")]
    QueriesDir { path: String, source: std::io::Error },

    /// Results could not be written.
    #[error("cannot write results to '{path}': {source}")]
    Output { path: String, source: std::io::Error },

    /// Arrow failed while building or encoding results.
    #[error("{0}")]
    Arrow(#[from] deltalake::arrow::error::ArrowError),

    /// The ingest was cancelled (Ctrl-C) before it committed; the table is unchanged.
    #[error("cancelled before commit; the table is unchanged")]
    Cancelled,

    /// Another writer committed some of the same events while this ingest ran; nothing was
    /// committed, and rerunning the command finishes the job without doubling anything.
    #[error("another ingest committed some of the same events first; nothing was committed, rerun to finish")]
    ConcurrentOverlap,

    /// `--cluster` failed: this build has no Ballista client, the URL is not one, or the
    /// scheduler cannot be reached or started.
    #[error("{0}")]
    Cluster(String),

    /// An option's value makes no sense (the CLI checks most of these first).
    #[error("{0}")]
    InvalidArgument(String),
}

impl From<DataFusionError> for Error {
    fn from(e: DataFusionError) -> Self {
        Error::Query(Box::new(e))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
