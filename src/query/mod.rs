//! Ask: the `query` and `search` jobs over the engine's session ([`crate::engine`]): named
//! queries, search filters, and results written as a table, CSV, JSON, NDJSON or Parquet; and
//! the long-lived askers over a [`live`] session: a PostgreSQL endpoint ([`serve`]) and an
//! interactive prompt ([`shell`]).

pub mod live;
pub mod named;
pub mod output;
pub mod search;
pub mod serve;
pub mod shell;

pub use output::OutputFormat;
