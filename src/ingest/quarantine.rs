//! Rejected records, kept with their reason under `<lake>/_rejected/`.
//!
//! Each run that rejects anything writes NDJSON files named for the run
//! (`_rejected/ingest-<UTC time>-<run id>-<part>.ndjson`), one line per record:
//! `{"source": FILE, "line": N, "reason": WHY, "raw": TEXT}`. The raw text is kept whole (lossy
//! only where it was not UTF-8), so a fixed record can be re-ingested from it.

use serde::Serialize;

use crate::error::Result;
use crate::lake::Lake;

/// One rejected record.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Rejected {
    pub source: String,
    pub line: u64,
    pub reason: String,
    pub raw: String,
}

/// Buffers rejections and writes them in parts of bounded size.
pub struct Quarantine {
    prefix: String,
    buffer: Vec<u8>,
    parts: Vec<String>,
    count: u64,
}

/// Flush to the lake when the buffer reaches this size, so memory stays bounded.
const PART_BYTES: usize = 8 << 20;

impl Quarantine {
    /// `run` names this run's files (time and id).
    pub fn new(run: &str) -> Self {
        Quarantine { prefix: format!("_rejected/ingest-{run}"), buffer: Vec::new(), parts: Vec::new(), count: 0 }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Files written so far, relative to the lake root.
    pub fn parts(&self) -> &[String] {
        &self.parts
    }

    pub async fn add(&mut self, lake: &Lake, rejected: &Rejected) -> Result<()> {
        serde_json::to_writer(&mut self.buffer, rejected).expect("serialising to memory");
        self.buffer.push(b'\n');
        self.count += 1;
        if self.buffer.len() >= PART_BYTES {
            self.flush(lake).await?;
        }
        Ok(())
    }

    pub async fn flush(&mut self, lake: &Lake) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let name = format!("{}-{:04}.ndjson", self.prefix, self.parts.len());
        lake.put(&name, std::mem::take(&mut self.buffer)).await?;
        self.parts.push(name);
        Ok(())
    }
}
