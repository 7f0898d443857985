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
use datafusion::prelude::{SessionContext, col, lit};
use datafusion::scalar::ScalarValue;
use deltalake::DeltaTable;
use deltalake::arrow::array::{AsArray, BooleanArray};
use deltalake::arrow::compute::filter_record_batch;
use deltalake::kernel::Action;
use deltalake::kernel::transaction::CommitBuilder;
use deltalake::operations::vacuum::VacuumMode;
use deltalake::protocol::DeltaOperation;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use futures::TryStreamExt;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::ingest::run::writer_properties;
use crate::lake::{self, Lake};
use crate::query::Window;
use crate::schema::{self, PARTITION_COLUMN, col as c};
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

async fn existing_table(lake: &Lake) -> Result<DeltaTable> {
    lake.load(None).await?.ok_or_else(|| {
        Error::InvalidArgument(format!(
            "no table at {} yet; run `auditlake ingest` first",
            lake.display_path(crate::schema::TABLE_NAME)
        ))
    })
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

/// Rewrites each planned partition into files near the target size, sorted by time, with
/// duplicate ids removed (the earliest ingested copy is kept). One commit for all partitions.
pub async fn compact(lake: &Lake, opts: &CompactOptions) -> Result<CompactMetrics> {
    let started = Instant::now();
    let mut table = existing_table(lake).await?;
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

    let ctx = SessionContext::new();
    lake::session_for(&table, &ctx)?;
    let provider = table.table_provider().await?;
    let mut writer = RecordBatchWriter::for_table(&table)
        .map_err(|e| lake.delta_err("compacting", e))?
        .with_writer_properties(writer_properties())
        .with_target_file_size(opts.target_size);
    let planned: HashSet<&str> = plan.iter().flat_map(|p| p.files.iter().map(String::as_str)).collect();
    let mut removes: Vec<Action> = Vec::new();
    let mut changed_dates: HashSet<String> = HashSet::new();

    for part in &plan {
        let date: NaiveDate =
            part.date.parse().map_err(|_| Error::InvalidArgument(format!("bad partition date {}", part.date)))?;
        let days = (date - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32;
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
        let mut seen = crate::lake::KeySet::default();
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
    let snapshot = table.snapshot().map_err(|e| lake.delta_err("reading", e))?.clone();
    for f in snapshot.log_data().iter() {
        if planned.contains(f.path().as_ref()) {
            let date = lake::file_date(&f).unwrap_or_default();
            // dataChange=false tells readers and concurrent writers that no row changed, which
            // holds unless duplicates were dropped from the partition.
            removes.push(Action::Remove(f.remove_action(changed_dates.contains(&date))));
        }
    }
    let adds = writer.flush().await.map_err(|e| lake.delta_err("compacting", e))?;
    m.files_after = adds.len() as u64;
    m.bytes_after = adds.iter().map(|a| a.size.max(0) as u64).sum();
    let mut actions = removes;
    for mut add in adds {
        let date = add.partition_values.get(PARTITION_COLUMN).cloned().flatten().unwrap_or_default();
        add.data_change = changed_dates.contains(&date);
        actions.push(Action::Add(add));
    }
    let committed = CommitBuilder::default()
        .with_actions(actions)
        .with_app_metadata(HashMap::from([("auditlake.duplicates_removed".to_string(), m.duplicates_removed.into())]))
        .build(
            Some(&snapshot),
            table.log_store(),
            DeltaOperation::Optimize { predicate: None, target_size: opts.target_size as i64 },
        )
        .await
        .map_err(|e| lake.delta_err("committing compaction", e))?;
    m.table_version = Some(committed.version);
    table.update_state().await.map_err(|e| lake.delta_err("reloading", e))?;
    // A checkpoint keeps the log cheap to read after many small ingests.
    deltalake::checkpoints::create_checkpoint(&table, None).await.map_err(|e| lake.delta_err("checkpointing", e))?;
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
        return Err(Error::InvalidArgument(format!(
            "refusing to keep only {} days: the minimum is {} days (PCI DSS 10.5.1 asks for 12 months); add --force if you mean it",
            opts.keep.num_days(),
            plan::MIN_RETENTION_DAYS
        )));
    }
    let mut table = existing_table(lake).await?;
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
        let snapshot = table.snapshot().map_err(|e| lake.delta_err("reading", e))?.clone();
        let removes: Vec<Action> = snapshot
            .log_data()
            .iter()
            .filter(|f| lake::file_date(&f).is_some_and(|d| dropping.contains(&d)))
            .map(|f| Action::Remove(f.remove_action(true)))
            .collect();
        let committed = CommitBuilder::default()
            .with_actions(removes)
            .build(
                Some(&snapshot),
                table.log_store(),
                DeltaOperation::Delete { predicate: Some(format!("{PARTITION_COLUMN} < '{cutoff}'")) },
            )
            .await
            .map_err(|e| lake.delta_err("committing retention", e))?;
        m.table_version = Some(committed.version);
        table.update_state().await.map_err(|e| lake.delta_err("reloading", e))?;
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
        return Err(Error::InvalidArgument(format!(
            "refusing to vacuum files younger than {} hour(s): running queries may still read them; add --force if no query or ingest is running",
            MIN_VACUUM_HOURS
        )));
    }
    let table = existing_table(lake).await?;
    let (_table, metrics) = table
        .vacuum()
        .with_retention_period(opts.older_than)
        .with_enforce_retention_duration(false)
        .with_mode(VacuumMode::Full)
        .with_dry_run(opts.dry_run)
        .await
        .map_err(|e| lake.delta_err("vacuuming", e))?;
    Ok(VacuumMetrics {
        dry_run: opts.dry_run,
        files_deleted: metrics.files_deleted,
        seconds: started.elapsed().as_secs_f64(),
    })
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
    let table = existing_table(lake).await?;
    let latest = table.version().unwrap_or(0);
    let commits: Vec<_> = table.history(limit).try_collect().await.map_err(|e| lake.delta_err("reading history", e))?;
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
