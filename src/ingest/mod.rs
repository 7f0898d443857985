//! Collect: JSON batches in, one atomic Delta commit out.
//!
//! ```text
//! Torq's API, page by page (`pull`)               torq_api.rs, pull.rs
//! inputs (files, dirs, stdin; gzip by content)   source.rs
//!   -> one raw text per entry, streaming          decode.rs
//!   -> id and date, or rejection with a reason    normalise.rs
//!   -> already in the table? only counted         known.rs
//!   -> row or rejection with a reason             normalise.rs
//!   -> Arrow batches                              batch.rs
//!   -> dedupe by id within the run                run.rs
//!   -> Parquet files and one commit               crate::lake::write
//!   -> rejects and skipped inputs to _rejected/   quarantine.rs
//! ```
//!
//! Guarantees: the table moves from its previous version to the next in one commit, or not at
//! all; an id already in the table (in the same UTC date partition) or earlier in the run is
//! skipped, so re-ingesting any input changes no query result; a bad record is quarantined with
//! its reason and never stops the good ones; an input that cannot be read (or only in part) is
//! reported and skipped, never stopping the others; memory is bounded by `--max-entry-size`
//! whatever the input's layout. `pull` runs the same pipeline once per group of pages and
//! commits its cursor with each group's rows.

pub mod batch;
pub mod decode;
pub mod known;
pub mod normalise;
pub mod pull;
pub mod quarantine;
pub mod run;
pub mod source;
pub mod torq_api;

pub use pull::{PullMetrics, PullOptions, pull};
pub use run::{IngestMetrics, IngestOptions, ingest};
