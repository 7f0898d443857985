//! Maintain: compaction, retention and vacuum, safe to run while others read and ingest.
//!
//! Each job is one Delta commit (or none), so readers see the table before or after it, never
//! between: a compaction's new files replace the old ones atomically, a retention drop removes
//! whole partitions atomically, and vacuum deletes only files that no version inside the safety
//! window still references.

pub mod plan;

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use chrono::{Duration, NaiveDate, Utc};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext, col, lit};
use datafusion::scalar::ScalarValue;
use deltalake::DeltaTable;
use deltalake::arrow::array::{AsArray, BooleanArray};
use deltalake::arrow::compute::filter_record_batch;
use deltalake::writer::DeltaWriter;
use futures::TryStreamExt;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::lake::{self, Lake, write};
use crate::schema::{self, col as c};
use crate::time::{self, Window};
use plan::{FileInfo, PartitionPlan};

fn live_files(lake: &Lake, table: &DeltaTable) -> Result<Vec<FileInfo>> {
    let snapshot = table.snapshot().map_err(|e| lake.delta_err("reading", e))?;
    Ok(snapshot
        .log_data()
        .iter()
        .map(|f| FileInfo {
            path: f.path().to_string(),
            date: lake::file_date(&f).unwrap_or_default(),
            size: f.size().max(0) as u64,
            rows: f.num_records().unwrap_or(0) as u64,
        })
        .collect())
}

/// Options of `auditlake compact`.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    pub target_size: u64,
    pub window: Window,
    pub dry_run: bool,
}

/// What a compaction did (or, with `--dry-run`, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CompactMetrics {
    pub dry_run: bool,
    pub partitions: Vec<PartitionPlan>,
    pub files_before: u64,
    pub files_after: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub rows: u64,
    /// Rows dropped because their id was already in the partition.
    pub duplicates_removed: u64,
    pub table_version: Option<u64>,
    pub checkpoint: bool,
    pub seconds: f64,
}

/// Memory the sort of one compaction may hold before it spills to disk. The sort's output, the
/// scan's and the writer's buffers come on top (about as much again), so the whole job stays near
/// ingest's bound.
const COMPACT_MEMORY_BYTES: usize = 160 << 20;

/// Rewrites each planned partition into files near the target size, sorted by time, with
/// duplicate ids removed (the earliest ingested copy is kept). One commit for all partitions.
pub async fn compact(lake: &Lake, opts: &CompactOptions) -> Result<CompactMetrics> {
    let started = Instant::now();
    let mut table = lake.existing().await?;
    let (first, last) = opts.window.dates();
    let plan = plan::plan_compaction(&live_files(lake, &table)?, opts.target_size, first, last);
    let mut m = CompactMetrics {
        dry_run: opts.dry_run,
        files_before: plan.iter().map(|p| p.files.len() as u64).sum(),
        bytes_before: plan.iter().map(|p| p.bytes).sum(),
        ..Default::default()
    };
    if opts.dry_run || plan.is_empty() {
        m.partitions = plan;
        m.seconds = started.elapsed().as_secs_f64();
        return Ok(m);
    }

    // A day is sorted within a memory budget, spilling to temporary files past it, so that a
    // large day costs disk rather than an unbounded amount of memory.
    let runtime =
        RuntimeEnvBuilder::new().with_memory_limit(COMPACT_MEMORY_BYTES, 1.0).build_arc().map_err(Error::from)?;
    // One partition: one sort that spills, instead of one per core merged by an operator that
    // cannot spill (with two and a 128 MiB budget, compacting a 10M-event lake failed: measured).
    let ctx = SessionContext::new_with_config_rt(SessionConfig::new().with_target_partitions(1), runtime);
    lake.register_store(&table, &ctx)?;
    let provider = table.table_provider().await?;
    let lease = write::WriterLease::take(lake, "compact").await?;
    let rewritten: Result<(u64, CompactMetrics)> = async {
        let mut writer = write::writer(lake, &table, opts.target_size)?;
        let planned: HashSet<String> = plan.iter().flat_map(|p| p.files.iter().cloned()).collect();
        let mut changed_dates: HashSet<String> = HashSet::new();

        for part in &plan {
            let date = time::parse_date(&part.date).ok_or_else(|| Error::TableFile {
                path: format!("date={}/", part.date),
                reason: "the partition value is not a date".into(),
            })?;
            let days = time::days_since_epoch(date);
            // Earliest ingested copy first, so it is the one kept; then time order for the file.
            let df = ctx
                .read_table(provider.clone())?
                .filter(col(c::DATE).eq(lit(ScalarValue::Date32(Some(days)))))?
                .sort(vec![
                col(c::TIMESTAMP).sort(true, false),
                col(c::ID).sort(true, false),
                col(c::INGESTED_AT).sort(true, false),
            ])?;
            let mut stream = df.execute_stream().await?;
            let mut seen = lake::KeySet::default();
            let mut dups = 0u64;
            while let Some(batch) = stream.try_next().await? {
                let ids = deltalake::arrow::compute::cast(
                    batch.column_by_name(c::ID).expect("id"),
                    &deltalake::arrow::datatypes::DataType::Utf8,
                )?;
                let keep: BooleanArray = ids
                    .as_string::<i32>()
                    .iter()
                    .map(|id| Some(seen.insert(lake::id_key(id.unwrap_or_default()))))
                    .collect();
                let kept = schema::conform(&filter_record_batch(&batch, &keep)?)?;
                dups += (batch.num_rows() - kept.num_rows()) as u64;
                m.rows += kept.num_rows() as u64;
                if kept.num_rows() > 0 {
                    writer.write(kept).await.map_err(|e| lake.delta_err("compacting", e))?;
                }
            }
            if dups > 0 {
                changed_dates.insert(part.date.clone());
            }
            m.duplicates_removed += dups;
        }
        let adds = writer.flush().await.map_err(|e| lake.delta_err("compacting", e))?;
        m.files_after = adds.len() as u64;
        m.bytes_after = adds.iter().map(|a| a.size.max(0) as u64).sum();
        let metadata = HashMap::from([("auditlake.duplicates_removed".to_string(), m.duplicates_removed.into())]);
        let version =
            write::rewrite(lake, &lease, &mut table, &planned, adds, &changed_dates, metadata, opts.target_size)
                .await?;
        Ok((version, m))
    }
    .await;
    // Released on failure too: the run's uncommitted files are garbage for vacuum now.
    lease.release().await;
    let (version, mut m) = rewritten?;
    m.table_version = Some(version);
    m.checkpoint = true;
    m.partitions = plan;
    m.seconds = started.elapsed().as_secs_f64();
    Ok(m)
}

/// Options of `auditlake retention`.
#[derive(Debug, Clone)]
pub struct RetentionOptions {
    pub keep: Duration,
    pub dry_run: bool,
    pub force: bool,
    /// "Today" in UTC; injected for tests.
    pub today: NaiveDate,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RetentionMetrics {
    pub dry_run: bool,
    pub cutoff: String,
    pub dropped_partitions: Vec<String>,
    pub files_removed: u64,
    pub rows_removed: u64,
    pub bytes_removed: u64,
    pub table_version: Option<u64>,
    pub seconds: f64,
}

/// Drops whole date partitions older than `keep` in one commit (the files stay until vacuum).
pub async fn retention(lake: &Lake, opts: &RetentionOptions) -> Result<RetentionMetrics> {
    let started = Instant::now();
    if opts.keep.num_days() < plan::MIN_RETENTION_DAYS && !opts.force {
        return Err(Error::RetentionTooShort { days: opts.keep.num_days(), minimum: plan::MIN_RETENTION_DAYS });
    }
    let mut table = lake.existing().await?;
    let cutoff = plan::retention_cutoff(opts.today, opts.keep);
    let files = live_files(lake, &table)?;
    let dates: Vec<String> = files.iter().map(|f| f.date.clone()).collect();
    let to_drop = plan::dates_to_drop(&dates, cutoff);
    let dropping: HashSet<String> = to_drop.iter().cloned().collect();
    let mut m = RetentionMetrics { dry_run: opts.dry_run, cutoff: cutoff.to_string(), ..Default::default() };
    for f in files.iter().filter(|f| dropping.contains(&f.date)) {
        m.files_removed += 1;
        m.rows_removed += f.rows;
        m.bytes_removed += f.size;
    }
    m.dropped_partitions = to_drop;
    if !opts.dry_run && m.files_removed > 0 {
        m.table_version = write::drop_partitions(lake, &mut table, &dropping, cutoff).await?;
    }
    m.seconds = started.elapsed().as_secs_f64();
    Ok(m)
}

/// The least vacuum window accepted without `--force`: a query that started before a
/// compaction still reads the replaced files, so they must outlive any query.
pub const MIN_VACUUM_HOURS: i64 = 1;

#[derive(Debug, Clone)]
pub struct VacuumOptions {
    pub older_than: Duration,
    pub dry_run: bool,
    pub force: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct VacuumMetrics {
    pub dry_run: bool,
    pub files_deleted: Vec<String>,
    pub seconds: f64,
}

/// Deletes data files that no current version references and that are older than the window:
/// files replaced by compaction or dropped by retention, and files of ingests that were killed
/// before they committed.
pub async fn vacuum(lake: &Lake, opts: &VacuumOptions) -> Result<VacuumMetrics> {
    let started = Instant::now();
    if opts.older_than.num_hours() < MIN_VACUUM_HOURS && !opts.force {
        return Err(Error::VacuumTooSoon { minimum_hours: MIN_VACUUM_HOURS });
    }
    let table = lake.existing().await?;
    let files_deleted = write::vacuum(lake, table, opts.older_than, opts.dry_run).await?;
    Ok(VacuumMetrics { dry_run: opts.dry_run, files_deleted, seconds: started.elapsed().as_secs_f64() })
}

/// One entry of `auditlake history`.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    pub version: u64,
    pub timestamp: Option<String>,
    pub operation: Option<String>,
    pub parameters: Option<serde_json::Value>,
    pub metrics: Option<serde_json::Value>,
}

/// The table's commits, newest first.
pub async fn history(lake: &Lake, limit: Option<usize>) -> Result<Vec<HistoryEntry>> {
    let table = lake.existing().await?;
    let latest = table.version().unwrap_or(0);
    let commits: Vec<_> =
        table.history(limit).try_collect().await.map_err(|e| lake.delta_err("reading the history of", e))?;
    Ok(commits
        .into_iter()
        .enumerate()
        .map(|(i, ci)| HistoryEntry {
            version: latest.saturating_sub(i as u64),
            timestamp: ci
                .timestamp
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            operation: ci.operation,
            parameters: ci.operation_parameters.map(|p| serde_json::to_value(p).unwrap_or_default()),
            // delta-rs' own operations record operationMetrics; auditlake's commits record
            // their counts as `auditlake.*` app metadata.
            metrics: ci.info.get("operationMetrics").cloned().or_else(|| {
                let ours: serde_json::Map<String, serde_json::Value> = ci
                    .info
                    .iter()
                    .filter(|(k, _)| k.starts_with("auditlake."))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                (!ours.is_empty()).then_some(serde_json::Value::Object(ours))
            }),
        })
        .collect())
}

/// Today's UTC date, for the CLI.
pub fn today() -> NaiveDate {
    Utc::now().date_naive()
}
