//! auditlake keeps Torq audit logs in a Delta Lake table that a security team owns, and answers
//! SQL over it with Apache DataFusion.
//!
//! ```text
//! JSON array | API page | NDJSON | .gz | stdin
//!    -> decode (streaming, bounded memory)           ingest::decode
//!    -> validate + normalise (bad -> _rejected/)     ingest::normalise, ingest::quarantine
//!    -> dedupe by id (batch and table)               ingest::known, ingest::run, lake::keys
//!    -> one atomic Delta commit per run              lake::write (every commit goes here)
//!    -> Delta table `audit_log`, partitioned by UTC date, Parquet + zstd
//!    -> a DataFusion session (read-only)             engine
//!         -> query / search                          query
//!         -> PostgreSQL protocol, interactive shell  query::serve, query::shell
//!         -> compliance report                       report
//!         -> or the same SQL on a Ballista cluster   engine::cluster (feature `cluster`)
//!    -> OCSF events for Security Lake or a SIEM      export (incremental, exactly once)
//!    -> tamper evidence replayed                     verify
//! ```
//!
//! Dependencies point one way: the jobs (`ingest`, `query`, `maintain`, `report`, `generate`,
//! `verify`, `export`) use `engine` and `lake`, which use `schema`, `time` and `error`; no job
//! imports another. The command line lives in the binary (`src/main.rs`, `src/cli/`), so this
//! library never sees clap.
//!
//! A complete round trip on an in-memory lake:
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use auditlake::{Lake, engine, ingest::{ingest, IngestOptions}, time::Window};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let input = dir.path().join("batch.ndjson");
//! std::fs::write(&input, concat!(
//!     r#"{"id":"e1","timestamp":"2026-09-01T08:00:00Z","action":"Secret created"}"#, "\n",
//!     r#"{"id":"e1","timestamp":"2026-09-01T08:00:00Z","action":"Secret created"}"#, "\n",
//! )).unwrap();
//!
//! let lake = Lake::open("memory://doc").unwrap();
//! let opts = IngestOptions { inputs: vec![input.display().to_string()], ..Default::default() };
//! let metrics = ingest(&lake, &opts).await.unwrap();
//! assert_eq!((metrics.ingested, metrics.duplicates), (1, 1));
//!
//! let session = engine::open(&lake, &Window::default(), None, &engine::Engine::Local).await.unwrap();
//! let df = engine::sql(&session, "SELECT action_family(action) AS f, count(*) AS n FROM audit_log GROUP BY 1")
//!     .await
//!     .unwrap();
//! let batches = df.collect().await.unwrap();
//! assert_eq!(batches[0].num_rows(), 1);
//! # });
//! ```

pub mod engine;
pub mod error;
pub mod export;
pub mod generate;
pub mod ingest;
pub mod lake;
pub mod maintain;
pub mod query;
pub mod report;
pub mod schema;
pub mod text;
pub mod time;
pub mod units;
pub mod verify;

pub use error::{Error, Result};
pub use lake::Lake;
