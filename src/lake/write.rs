//! Every change to the table: the Parquet writer's settings, and the only functions that commit.
//!
//! - [`append`]: an ingest's new files, refused when a concurrent writer added the same ids;
//! - [`rewrite`]: a compaction's files replacing others, rows preserved;
//! - [`drop_partitions`]: retention's removal of whole date partitions;
//! - [`vacuum`]: deleting files no version inside the window references;
//! - [`Lake::load_or_create`]: the table's first commit.
//!
//! Each takes what the job decided (files, metadata) and returns the version it committed. Jobs
//! never build a `CommitBuilder`: `tests/architecture.rs` holds that, so what every commit
//! records has one owner: the `auditlake.*` app metadata, a collector's cursor ([`Cursor`]),
//! each added file's SHA-256 and the commit's evidence record ([`super::evidence`]).
//!
//! A job that writes data files first takes a [`WriterLease`]: a small file under
//! `<lake>/_state/writers/`, refreshed while the job runs. [`vacuum`] never deletes a file newer
//! than the oldest live lease, so files written but not yet committed survive any `--older-than`;
//! and a commit first checks that its files still exist, so even a writer whose lease went stale
//! fails cleanly instead of committing files that are gone.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;

use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake::kernel::{Action, Add, StructField, Transaction};
use deltalake::operations::vacuum::VacuumMode;
use deltalake::parquet::basic::{Compression, Encoding, ZstdLevel};
use deltalake::parquet::file::properties::{EnabledStatistics, WriterProperties};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::RecordBatchWriter;
use deltalake::{DeltaTable, DeltaTableError, TableProperty};

use super::Lake;
use super::evidence;
use super::keys::{self, KeySet};
use crate::error::{Error, Result};
use crate::schema::{self, PARTITION_COLUMN, TABLE_NAME, col};

/// What a commit records beside its files: `auditlake.*` counts, shown by `auditlake history`.
pub type CommitMetadata = HashMap<String, serde_json::Value>;

/// The commitInfo key of a commit's nonce: see [`own_commits`].
const NONCE_KEY: &str = "auditlake.commit";

/// `metadata` with [`evidence::EVIDENCE_MARK`] and a fresh nonce: every commit made here carries
/// both. Returns the nonce too.
fn marked(mut metadata: CommitMetadata) -> (CommitMetadata, String) {
    let (key, value) = evidence::EVIDENCE_MARK;
    metadata.insert(key.to_string(), value.into());
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    metadata.insert(NONCE_KEY.to_string(), nonce.clone().into());
    (metadata, nonce)
}

/// The versions after `read_version` that carry `nonce`: this writer's own commits.
///
/// A commit whose answer was lost (the store wrote the commit file, then the connection failed
/// and the retried conditional PUT found the file there) looks to delta-rs like a conflict with
/// itself: an error, or, for the table's creation, a second copy at the next version. Each
/// failed commit first looks for itself, so the job reports what really happened and every copy
/// gets its evidence record (found by the fault-injection test in tests/faults.rs).
async fn own_commits(lake: &Lake, read_version: Option<u64>, nonce: &str) -> Result<Vec<u64>> {
    let mut found = Vec::new();
    let mut version = read_version.map_or(0, |v| v + 1);
    while let Some(bytes) = evidence::commit_bytes(lake, version).await? {
        let ours = evidence::actions(&bytes).any(|a| {
            a.get("commitInfo").and_then(|c| c.get(NONCE_KEY)).and_then(serde_json::Value::as_str) == Some(nonce)
        });
        if ours {
            found.push(version);
        }
        version += 1;
    }
    Ok(found)
}

/// After a commit that delta-rs reports made at `version`: it may have retried one whose answer
/// was lost, leaving a copy below; every copy is sealed. Returns `version`.
async fn seal_copies(lake: &Lake, read_version: Option<u64>, nonce: &str, version: u64) -> Result<u64> {
    let mut ours = own_commits(lake, read_version, nonce).await?;
    if !ours.contains(&version) {
        ours.push(version);
    }
    evidence::seal(lake, ours).await?;
    Ok(version)
}

/// Seals every commit after `read_version` that carries `nonce`; returns the newest, or `None`
/// when this writer made none there (after a failed commit: it really failed).
async fn seal_own(lake: &Lake, read_version: Option<u64>, nonce: &str) -> Result<Option<u64>> {
    let ours = own_commits(lake, read_version, nonce).await?;
    let newest = ours.last().copied();
    evidence::seal(lake, ours).await?;
    Ok(newest)
}

/// The `txn` action that sets `app_id`'s position to `value`, or keeps the table's when that is
/// later: a position never moves back.
async fn position_action(lake: &Lake, table: &DeltaTable, app_id: &str, value: i64) -> Result<Action> {
    let stored = lake.cursor(table, app_id).await?;
    let value = stored.map_or(value, |s| s.max(value));
    let now_ms = Utc::now().timestamp_millis();
    Ok(Action::Txn(Transaction::new_with_last_update(app_id, value, Some(now_ms))))
}

/// A collector's position in its source, committed atomically with the rows it covers: every
/// event of `source` with a timestamp before `until_us` (µs since the epoch) is in the table.
///
/// It is a Delta application transaction (`txn`: the app id and a number), the protocol's own
/// record of "how far has this writer got", which every Delta reader keeps across checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The app id: `auditlake.pull:<workspace>`.
    pub source: String,
    pub until_us: i64,
}

/// Parquet settings: zstd, row groups small enough to bound writer memory and to prune well,
/// a bloom filter on `id` for point lookups.
///
/// Two columns that aggregations read whole are stored for reading speed: `timestamp`
/// (`min/max(timestamp)`) as bit-packed deltas, uncompressed, and `resource_id`
/// (`count(DISTINCT resource_id)`) with a dictionary large enough for a whole row group, where the
/// default page limit had it fall back to plain strings after the first few thousand. zstd's
/// decompression of those plain values had been a fifth of the CPU of by_actor and by_scenario on
/// a 5M-event lake (perf, issue 21). There, by_actor went from 105 ms (zstd timestamps; 102 with
/// LZ4) to 82 ms, by_scenario from 143 to 129 ms, and the table from 286 to 280 MB.
pub fn writer_properties() -> WriterProperties {
    const ZSTD_LEVEL: i32 = 1;
    const PAGE_BYTES: usize = 128 * 1024;
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL).expect("valid zstd level")))
        .set_max_row_group_row_count(Some(128 * 1024))
        .set_data_page_size_limit(PAGE_BYTES)
        .set_dictionary_page_size_limit(PAGE_BYTES)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_column_bloom_filter_enabled(col::ID.into(), true)
        .set_column_bloom_filter_fpp(col::ID.into(), 0.01);
    // Unique or nearly so per row: a dictionary of them only grows until Parquet gives up on it,
    // after hashing every value (the interner was the writer's largest cost after zstd).
    for unique in [col::ID, col::TIMESTAMP, col::SOURCE, col::EXTRA_DATA, col::EXTRA] {
        b = b.set_column_dictionary_enabled(unique.into(), false);
    }
    // Long or random text whose min/max prunes nothing (ids are found by their bloom filter):
    // no statistics, which the writer otherwise computes by comparing every value.
    for unprunable in [col::ID, col::SOURCE, col::EXTRA_DATA, col::EXTRA] {
        b = b.set_column_statistics_enabled(unprunable.into(), EnabledStatistics::None);
    }
    // Timestamps as deltas, bit-packed: a third of their plain size, and quicker to unpack than
    // zstd is to decompress; zstd finds nothing more to squeeze out of them.
    b = b
        .set_column_encoding(col::TIMESTAMP.into(), Encoding::DELTA_BINARY_PACKED)
        .set_column_compression(col::TIMESTAMP.into(), Compression::UNCOMPRESSED);
    // A row group's resource ids (tens of thousands, many repeated) fit one dictionary page.
    b = b.set_column_dictionary_page_size_limit(col::RESOURCE_ID.into(), 4 << 20);
    b.build()
}

/// A writer of new data files for `table`, with auditlake's settings, rolling to a new file
/// past `target_file_size`. Its files become part of the table only through a commit here.
pub fn writer(lake: &Lake, table: &DeltaTable, target_file_size: u64) -> Result<RecordBatchWriter> {
    Ok(RecordBatchWriter::for_table(table)
        .map_err(|e| lake.delta_err("writing to", e))?
        .with_writer_properties(writer_properties())
        .with_target_file_size(target_file_size))
}

/// Commits an ingest's files as one append; returns the new version.
///
/// Delta lets two appends commit one after the other without conflict, but two ingests of
/// overlapping input could then both add the same id. So the commit is attempted only on the
/// version the run deduplicated against (`table`); when another writer got there first, the
/// files it added to the run's partitions (`dates`) are checked for the run's ids (`ours`); a
/// compaction's rewritten files hold only ids that were there before, so it never counts as
/// overlap. No overlap: commit on the new version. Overlap: fail without committing, so that
/// rerunning (which dedupes against the new version) finishes the job with nothing doubled.
///
/// A `cursor` is committed with the files (or alone, when `adds` is empty). It never moves
/// back: when the table already holds a later position for the same source, that one stays.
#[allow(clippy::too_many_arguments)]
pub async fn append(
    lake: &Lake,
    _lease: &WriterLease,
    table: &mut DeltaTable,
    adds: Vec<Add>,
    metadata: CommitMetadata,
    dates: &BTreeSet<String>,
    ours: &KeySet,
    cursor: Option<&Cursor>,
) -> Result<u64> {
    let mut adds = adds;
    seal_files(lake, table, &mut adds).await?;
    let (metadata, nonce) = marked(metadata);
    let files: Vec<Action> = adds.into_iter().map(Action::Add).collect();
    let mut known_files = keys::files_in_partitions(lake, table, dates)?;
    for _attempt in 0..100 {
        let snapshot = table.snapshot().map_err(|e| lake.delta_err("committing to", e))?.clone();
        let mut actions = files.clone();
        if let Some(cursor) = cursor {
            actions.push(position_action(lake, table, &cursor.source, cursor.until_us).await?);
        }
        let result = CommitBuilder::default()
            .with_actions(actions)
            .with_app_metadata(metadata.clone())
            .with_max_retries(0)
            .build(
                Some(&snapshot),
                table.log_store(),
                DeltaOperation::Write {
                    mode: SaveMode::Append,
                    partition_by: Some(vec![PARTITION_COLUMN.to_string()]),
                    predicate: None,
                },
            )
            .await;
        match result {
            Ok(done) => {
                evidence::seal(lake, [done.version]).await?;
                return Ok(done.version);
            }
            Err(DeltaTableError::Transaction { source: TransactionError::MaxCommitAttempts(_) })
            | Err(DeltaTableError::VersionAlreadyExists(_)) => {
                let read = snapshot.version();
                if let Ok(Some(version)) = seal_own(lake, Some(read), &nonce).await {
                    table.update_state().await.map_err(|e| lake.delta_err("reloading", e))?;
                    return Ok(version);
                }
                table.update_state().await.map_err(|e| lake.delta_err("reloading", e))?;
                let now_files = keys::files_in_partitions(lake, table, dates)?;
                let added: Vec<String> = now_files.difference(&known_files).cloned().collect();
                let theirs = keys::ids_in_files(lake, table, &added).await?;
                if theirs.iter().any(|k| ours.contains(k)) {
                    return Err(Error::ConcurrentOverlap);
                }
                known_files = now_files;
            }
            Err(e) => return Err(lake.delta_err("committing to", e)),
        }
    }
    Err(Error::ConcurrentOverlap)
}

/// Commits application positions alone, no files: `export`'s planned and finished versions per
/// output, `(app id, value)`. Like a [`Cursor`], a position never moves back. Returns the version.
pub async fn record_positions(
    lake: &Lake,
    table: &mut DeltaTable,
    positions: &[(String, i64)],
    metadata: CommitMetadata,
) -> Result<u64> {
    let (metadata, nonce) = marked(metadata);
    for _attempt in 0..100 {
        let snapshot = table.snapshot().map_err(|e| lake.delta_err("committing to", e))?.clone();
        let mut actions = Vec::new();
        for (app_id, value) in positions {
            actions.push(position_action(lake, table, app_id, *value).await?);
        }
        let result = CommitBuilder::default()
            .with_actions(actions)
            .with_app_metadata(metadata.clone())
            .with_max_retries(0)
            .build(
                Some(&snapshot),
                table.log_store(),
                DeltaOperation::Write { mode: SaveMode::Append, partition_by: None, predicate: None },
            )
            .await;
        match result {
            Ok(done) => {
                evidence::seal(lake, [done.version]).await?;
                table.update_state().await.map_err(|e| lake.delta_err("reloading", e))?;
                return Ok(done.version);
            }
            Err(DeltaTableError::Transaction { source: TransactionError::MaxCommitAttempts(_) })
            | Err(DeltaTableError::VersionAlreadyExists(_)) => {
                let read = Some(snapshot.version());
                let found = seal_own(lake, read, &nonce).await.ok().flatten();
                table.update_state().await.map_err(|e| lake.delta_err("reloading", e))?;
                if let Some(version) = found {
                    return Ok(version);
                }
            }
            Err(e) => return Err(lake.delta_err("committing to", e)),
        }
    }
    Err(lake.delta_err("committing to", DeltaTableError::Generic("100 concurrent commits in a row won".into())))
}

/// Commits a compaction: `replaced` (paths relative to the table) leave, `adds` arrive, in one
/// commit, then a checkpoint so the log stays cheap to read. Partitions in `changed_dates` lost
/// duplicate rows and are marked as data changes; elsewhere `dataChange=false` tells readers
/// and concurrent writers that no row changed. Returns the new version.
#[allow(clippy::too_many_arguments)]
pub async fn rewrite(
    lake: &Lake,
    _lease: &WriterLease,
    table: &mut DeltaTable,
    replaced: &HashSet<String>,
    adds: Vec<Add>,
    changed_dates: &HashSet<String>,
    metadata: CommitMetadata,
    target_size: u64,
) -> Result<u64> {
    let mut adds = adds;
    seal_files(lake, table, &mut adds).await?;
    let snapshot = table.snapshot().map_err(|e| lake.delta_err("reading", e))?.clone();
    let mut actions: Vec<Action> = snapshot
        .log_data()
        .iter()
        .filter(|f| replaced.contains(f.path().as_ref()))
        .map(|f| {
            let changed = keys::file_date(&f).is_some_and(|d| changed_dates.contains(&d));
            Action::Remove(f.remove_action(changed))
        })
        .collect();
    for mut add in adds {
        let date = add.partition_values.get(PARTITION_COLUMN).cloned().flatten().unwrap_or_default();
        add.data_change = changed_dates.contains(&date);
        actions.push(Action::Add(add));
    }
    let (metadata, nonce) = marked(metadata);
    let committed = CommitBuilder::default()
        .with_actions(actions)
        .with_app_metadata(metadata)
        .build(
            Some(&snapshot),
            table.log_store(),
            DeltaOperation::Optimize { predicate: None, target_size: target_size as i64 },
        )
        .await;
    let version = match committed {
        Ok(done) => seal_copies(lake, Some(snapshot.version()), &nonce, done.version).await?,
        Err(e) => {
            let error = lake.delta_err("committing a compaction to", e);
            seal_own(lake, Some(snapshot.version()), &nonce).await?.ok_or(error)?
        }
    };
    table.update_state().await.map_err(|e| lake.delta_err("reloading", e))?;
    deltalake::checkpoints::create_checkpoint(table, None).await.map_err(|e| lake.delta_err("checkpointing", e))?;
    Ok(version)
}

/// Commits the removal of every live file of the given date partitions (`YYYY-MM-DD`), as a
/// delete whose predicate names the cutoff; returns the new version, or `None` when those
/// partitions hold no file. The files stay on storage until [`vacuum`].
pub async fn drop_partitions(
    lake: &Lake,
    table: &mut DeltaTable,
    dates: &HashSet<String>,
    cutoff: chrono::NaiveDate,
) -> Result<Option<u64>> {
    evidence::signing_key()?;
    let snapshot = table.snapshot().map_err(|e| lake.delta_err("reading", e))?.clone();
    let removes: Vec<Action> = snapshot
        .log_data()
        .iter()
        .filter(|f| keys::file_date(f).is_some_and(|d| dates.contains(&d)))
        .map(|f| Action::Remove(f.remove_action(true)))
        .collect();
    if removes.is_empty() {
        return Ok(None);
    }
    let (metadata, nonce) = marked(CommitMetadata::new());
    let committed = CommitBuilder::default()
        .with_actions(removes)
        .with_app_metadata(metadata)
        .build(
            Some(&snapshot),
            table.log_store(),
            DeltaOperation::Delete { predicate: Some(format!("{PARTITION_COLUMN} < '{cutoff}'")) },
        )
        .await;
    let version = match committed {
        Ok(done) => seal_copies(lake, Some(snapshot.version()), &nonce, done.version).await?,
        Err(e) => {
            let error = lake.delta_err("committing retention to", e);
            seal_own(lake, Some(snapshot.version()), &nonce).await?.ok_or(error)?
        }
    };
    table.update_state().await.map_err(|e| lake.delta_err("reloading", e))?;
    Ok(Some(version))
}

/// Deletes the table's data files that no version newer than `older_than` references, and
/// files no commit ever referenced that are older than that; returns their paths. With
/// `dry_run`, only lists them. The window widens to the start of the oldest running writer
/// (a live [`WriterLease`]), whose files are not committed yet.
pub async fn vacuum(
    lake: &Lake,
    table: DeltaTable,
    older_than: chrono::Duration,
    dry_run: bool,
) -> Result<Vec<String>> {
    let now = Utc::now();
    let window = match oldest_running_writer(lake, now).await? {
        // A minute of margin for clocks and for files the writer created as it started.
        Some(started) => older_than.max(now - started + chrono::Duration::minutes(1)),
        None => older_than,
    };
    evidence::signing_key()?;
    // The snapshot must be read after the leases: a writer releases its lease only after its
    // commit, so a lease gone means its files are in the table read now. (With the snapshot
    // read first, a writer committing and leaving in between lost its new files: seen in
    // tests/maintain.rs once commits took longer to seal.)
    let mut table = table;
    table.update_state().await.map_err(|e| lake.delta_err("reloading", e))?;
    let before = table.version();
    let (metadata, nonce) = marked(CommitMetadata::new());
    let vacuumed = table
        .vacuum()
        .with_retention_period(window)
        .with_enforce_retention_duration(false)
        .with_mode(VacuumMode::Full)
        .with_dry_run(dry_run)
        // Marked like every auditlake commit; and its checkpoint never deletes old commit files,
        // whatever the table's settings (tables made before they forbade it).
        .with_commit_properties(
            CommitProperties::default().with_metadata(metadata).with_cleanup_expired_logs(Some(false)),
        )
        .await;
    // delta-rs records a vacuum as two commits (start, end), and retries one whose answer was
    // lost as a copy: every one of them, found by the nonce, gets its record, also when the
    // vacuum failed after committing some.
    seal_own(lake, before, &nonce).await?;
    let (_, metrics) = vacuumed.map_err(|e| lake.delta_err("vacuuming", e))?;
    Ok(metrics.files_deleted)
}

/// Hashes each file about to be committed into its add action's tags (the evidence `verify`
/// checks), and fails when one is no longer on storage (removed by hand, or by a vacuum that did
/// not see this writer): committing it would make the table unreadable.
async fn seal_files(lake: &Lake, table: &DeltaTable, adds: &mut [Add]) -> Result<()> {
    // A bad signing key fails the job before its commit, not after.
    evidence::signing_key()?;
    let store = table.object_store();
    let tasks: Vec<_> = adds
        .iter()
        .map(|add| {
            let (store, path) = (store.clone(), add.path.clone());
            async move {
                let location = Path::from_url_path(&path)
                    .map_err(|e| Error::TableFile { path: path.clone(), reason: e.to_string() })?;
                evidence::hash_object(store.as_ref(), &location).await
            }
        })
        .collect();
    let hashes = evidence::on_every_core(tasks).await;
    for (add, hashed) in adds.iter_mut().zip(hashes) {
        let Some((sha256, _size)) = hashed? else {
            return Err(Error::WrittenFileMissing { table: lake.display_path(TABLE_NAME), path: add.path.clone() });
        };
        add.tags.get_or_insert_with(HashMap::new).insert(evidence::FILE_HASH_TAG.to_string(), Some(sha256));
    }
    Ok(())
}

/// Where running writers announce themselves, under the lake root.
const LEASE_DIR: &str = "_state/writers/";
/// How often a running writer refreshes its lease.
const LEASE_REFRESH: Duration = Duration::from_secs(60);
/// A lease not refreshed for this long belongs to a writer that died (killed, or its host lost):
/// vacuum ignores it and removes it.
const LEASE_STALE: chrono::Duration = chrono::Duration::minutes(15);

/// A running writer's claim on the lake; see the module docs. Dropping it stops the refresh;
/// [`WriterLease::release`] also removes the file at once.
pub struct WriterLease {
    lake: Lake,
    relative: String,
    refresh: tokio::task::JoinHandle<()>,
}

impl WriterLease {
    /// Announces a writer (`job`: ingest, compact) starting now.
    pub async fn take(lake: &Lake, job: &str) -> Result<WriterLease> {
        let started = Utc::now();
        // The start is in the name, so vacuum reads it from a listing alone.
        let relative = format!(
            "{LEASE_DIR}{}-{}-{job}.json",
            started.timestamp_micros(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let body = serde_json::json!({ "job": job, "started": started.to_rfc3339(), "pid": std::process::id() })
            .to_string()
            .into_bytes();
        lake.put(&relative, body.clone()).await?;
        let refresh = {
            let (lake, relative) = (lake.clone(), relative.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(LEASE_REFRESH).await;
                    // A failed refresh is retried next time; the commit's own check is the backstop.
                    let _ = lake.put(&relative, body.clone()).await;
                }
            })
        };
        Ok(WriterLease { lake: lake.clone(), relative, refresh })
    }

    /// Ends the lease: the writer has committed or given up.
    pub async fn release(self) {
        self.refresh.abort();
        let _ = self.lake.store().delete(&self.lake.path(&self.relative)).await;
    }
}

impl Drop for WriterLease {
    fn drop(&mut self) {
        self.refresh.abort();
    }
}

/// The start of the oldest writer whose lease is live; stale leases are removed on the way.
async fn oldest_running_writer(lake: &Lake, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
    let store = lake.store();
    let prefix = lake.path(LEASE_DIR);
    let listed: Vec<object_store::ObjectMeta> = match store.list(Some(&prefix)).try_collect().await {
        Ok(listed) => listed,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(Error::Store { path: lake.display_path(LEASE_DIR), source: Box::new(e) }),
    };
    let mut oldest: Option<DateTime<Utc>> = None;
    for meta in listed {
        if now - meta.last_modified > LEASE_STALE {
            let _ = store.delete(&meta.location).await;
            continue;
        }
        let started = meta
            .location
            .filename()
            .and_then(|name| name.split('-').next())
            .and_then(|micros| micros.parse::<i64>().ok())
            .and_then(DateTime::from_timestamp_micros)
            // A lease whose name does not say when it started protects from its last refresh.
            .unwrap_or(meta.last_modified);
        oldest = Some(oldest.map_or(started, |o| o.min(started)));
    }
    Ok(oldest)
}

impl Lake {
    /// Loads the table, creating it (empty, partitioned by `date`) when it does not exist.
    pub async fn load_or_create(&self) -> Result<DeltaTable> {
        if let Some(table) = self.load(None).await? {
            return Ok(table);
        }
        self.ensure_local_dir()?;
        let kernel: deltalake::kernel::StructType =
            schema::arrow_schema().as_ref().try_into_kernel().map_err(|e| self.delta_err("creating", e.into()))?;
        let columns: Vec<StructField> = kernel.fields().cloned().collect();
        let table = self.builder()?.build().map_err(|e| self.delta_err("creating", e))?;
        let (metadata, nonce) = marked(CommitMetadata::new());
        let created = table
            .create()
            .with_table_name(TABLE_NAME)
            .with_comment("Torq audit logs, one row per event, written by auditlake")
            .with_columns(columns)
            .with_partition_columns([PARTITION_COLUMN])
            // File statistics only for `timestamp`, the one column whose per-file range prunes
            // (ids are random, the rest repeat in every file). The log holds one stats string per
            // file; keeping every column's min/max made opening a year of daily files 1.5x
            // slower than opening one day (measured), most of it parsing those strings.
            .with_configuration_property(TableProperty::DataSkippingStatsColumns, Some(schema::col::TIMESTAMP))
            // The log is the audit trail of the audit log: no writer may delete old commit files
            // after a checkpoint (Delta's default after 30 days), or `verify` could not replay it.
            .with_configuration_property(TableProperty::EnableExpiredLogCleanup, Some("false"))
            .with_commit_properties(CommitProperties::default().with_metadata(metadata))
            .await;
        match created {
            Ok(table) => {
                // Usually version 0; after a lost answer, also the copy delta-rs retried.
                let ours = own_commits(self, None, &nonce).await?;
                evidence::seal(self, if ours.is_empty() { vec![0] } else { ours }).await?;
                Ok(table)
            }
            // Another writer created it first: use theirs.
            Err(_) if self.load(None).await?.is_some() => Ok(self.load(None).await?.expect("just loaded")),
            Err(e) => Err(self.delta_err("creating", e)),
        }
    }
}
