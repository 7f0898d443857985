//! Rejected records, kept with their reason under `<lake>/_rejected/`.
//!
//! A run that rejects anything writes NDJSON files, one line per record:
//! `{"source": FILE, "line": N, "reason": WHY, "raw": TEXT}`. The raw text is kept whole (lossy
//! only where it was not UTF-8; an entry over `--max-entry-size` keeps its first KiB), so a fixed
//! record can be re-ingested from it. An input that could not be read (or only partly) is
//! recorded the same way, with line 0 and an empty `raw`.
//!
//! Files hold one input's rejections and are named for their content
//! (`_rejected/ingest-<hash>.ndjson`): a schedule that reads the same input again writes the same
//! file again instead of a new one, so the quarantine does not grow with every rerun.

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

/// Buffers rejections and writes them in parts of bounded size, one input at a time.
#[derive(Default)]
pub struct Quarantine {
    buffer: Vec<u8>,
    /// The input whose rejections `buffer` holds.
    source: String,
    parts: Vec<String>,
    count: u64,
}

/// Flush to the lake when the buffer reaches this size, so memory stays bounded.
const PART_BYTES: usize = 8 << 20;

impl Quarantine {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rejected records so far (skipped inputs are not counted).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Files written so far, relative to the lake root.
    pub fn parts(&self) -> &[String] {
        &self.parts
    }

    pub async fn add(&mut self, lake: &Lake, rejected: &Rejected) -> Result<()> {
        self.count += 1;
        self.write(lake, rejected).await
    }

    /// Records an input that was skipped or cut short, with the reason.
    pub async fn add_skipped(&mut self, lake: &Lake, input: &str, reason: &str) -> Result<()> {
        let record = Rejected {
            source: input.to_string(),
            line: 0,
            reason: format!("input skipped: {reason}"),
            raw: String::new(),
        };
        self.write(lake, &record).await
    }

    async fn write(&mut self, lake: &Lake, rejected: &Rejected) -> Result<()> {
        if rejected.source != self.source {
            self.flush(lake).await?;
            self.source.clone_from(&rejected.source);
        }
        serde_json::to_writer(&mut self.buffer, rejected).expect("serialising to memory");
        self.buffer.push(b'\n');
        if self.buffer.len() >= PART_BYTES {
            self.flush(lake).await?;
        }
        Ok(())
    }

    pub async fn flush(&mut self, lake: &Lake) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let name = format!("_rejected/ingest-{:032x}.ndjson", xxhash_rust::xxh3::xxh3_128(&self.buffer));
        lake.put(&name, std::mem::take(&mut self.buffer)).await?;
        if !self.parts.contains(&name) {
            self.parts.push(name);
        }
        Ok(())
    }
}
