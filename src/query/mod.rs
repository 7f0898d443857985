//! Ask: the `query` and `search` jobs over the engine's session ([`crate::engine`]): named
//! queries, search filters, and results written as a table, CSV, JSON, NDJSON or Parquet.

pub mod named;
pub mod output;
pub mod search;

pub use output::OutputFormat;
