//! What the table holds, from its log alone (no data file is read): rows, files and bytes per
//! date partition, the version and the last commit. Backs `auditlake stats`.

use std::collections::HashMap;

use deltalake::DeltaTable;
use futures::TryStreamExt;
use serde::Serialize;

use super::{Lake, keys::file_date};
use crate::error::Result;
use crate::schema::TABLE_NAME;

/// One date partition's share of the table.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PartitionStats {
    pub date: String,
    pub rows: u64,
    pub files: u64,
    pub bytes: u64,
}

/// What `auditlake stats` shows.
#[derive(Debug, Clone, Serialize)]
pub struct TableStats {
    pub table: String,
    pub version: u64,
    pub rows: u64,
    pub files: u64,
    pub bytes: u64,
    pub partitions: Vec<PartitionStats>,
    pub last_commit: Option<CommitSummary>,
}

/// One commit of the table's log.
#[derive(Debug, Clone, Serialize)]
pub struct CommitSummary {
    pub version: Option<u64>,
    pub timestamp: Option<String>,
    pub operation: Option<String>,
}

/// Rows, files and bytes per partition from the table's log (no data files are read).
pub async fn table_stats(lake: &Lake, table: &DeltaTable) -> Result<TableStats> {
    let snapshot = table.snapshot().map_err(|e| lake.delta_err("reading", e))?;
    let mut parts: HashMap<String, PartitionStats> = HashMap::new();
    for file in snapshot.log_data().iter() {
        let date = file_date(&file).unwrap_or_else(|| "(null)".into());
        let entry = parts.entry(date.clone()).or_insert(PartitionStats { date, rows: 0, files: 0, bytes: 0 });
        entry.rows += file.num_records().unwrap_or(0) as u64;
        entry.files += 1;
        entry.bytes += file.size().max(0) as u64;
    }
    let mut partitions: Vec<_> = parts.into_values().collect();
    partitions.sort_by(|a, b| a.date.cmp(&b.date));
    let last = table.history(Some(1)).try_next().await.map_err(|e| lake.delta_err("reading history", e))?;
    let version = snapshot.version();
    Ok(TableStats {
        table: lake.display_path(TABLE_NAME),
        version,
        rows: partitions.iter().map(|p| p.rows).sum(),
        files: partitions.iter().map(|p| p.files).sum(),
        bytes: partitions.iter().map(|p| p.bytes).sum(),
        partitions,
        last_commit: last.map(|ci| CommitSummary {
            version: Some(version),
            timestamp: ci
                .timestamp
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            operation: ci.operation,
        }),
    })
}
