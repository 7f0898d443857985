//! One ingest run: read every input, dedupe, write Parquet, commit once.
//!
//! A reader thread delimits entries; one normaliser worker per core parses and validates them
//! into Arrow batches; this task puts the batches back in input order, dedupes and writes. Memory
//! stays bounded: a few chunks in flight, unfinished files up to `FLUSH_BYTES`, and the dedupe
//! keys (17 bytes an event, in a table sized once from the input's size).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use deltalake::DeltaTableError;
use deltalake::arrow::array::{AsArray, BooleanArray, RecordBatch};
use deltalake::arrow::compute::filter_record_batch;
use deltalake::arrow::datatypes::Date32Type;
use deltalake::kernel::Action;
use deltalake::kernel::transaction::{CommitBuilder, TransactionError};
use deltalake::parquet::basic::{Compression, ZstdLevel};
use deltalake::parquet::file::properties::{EnabledStatistics, WriterProperties};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio::sync::mpsc;

use super::batch::BatchBuilder;
use super::decode::split_records;
use super::known::KnownIds;
use super::normalise::{self, format_date};
use super::quarantine::{Quarantine, Rejected};
use super::source::{self, Input};
use crate::error::{Error, Result};
use crate::lake::{self, Lake};
use crate::schema::{PARTITION_COLUMN, col};

/// What to ingest and how; resolved by the CLI from flags and defaults.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Files, directories (recursively) and `-` for stdin.
    pub inputs: Vec<String>,
    /// Draw a progress bar on stderr (the CLI sets this only for a terminal).
    pub progress: bool,
    /// Rows per Arrow batch handed from the decoder to the writer.
    pub batch_rows: usize,
    /// Roll to a new Parquet file once one reaches this many bytes.
    pub target_file_size: u64,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions { inputs: Vec::new(), progress: false, batch_rows: 8 * 1024, target_file_size: 256 << 20 }
    }
}

/// The summary of a run, printed to stderr and, with `--format json`, to stdout.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestMetrics {
    /// Input files (stdin counts as one).
    pub inputs: usize,
    /// Records seen: ingested + duplicates + rejected.
    pub read: u64,
    pub ingested: u64,
    /// Records skipped because their id was already in the table or earlier in this run.
    pub duplicates: u64,
    pub rejected: u64,
    /// Quarantine files holding the rejected records, with their reasons.
    pub rejected_files: Vec<String>,
    /// UTC dates that received rows.
    pub partitions: Vec<String>,
    pub bytes_read: u64,
    pub files_written: u64,
    pub bytes_written: u64,
    /// The version this run committed; `None` when there was nothing new to commit.
    pub table_version: Option<u64>,
    pub seconds: f64,
    pub rows_per_sec: f64,
}

/// Encoded bytes the writer may hold in unfinished files before they are all finished.
const FLUSH_BYTES: usize = 32 << 20;

enum Msg {
    Batch(RecordBatch),
    /// Entries whose id the table already holds in their date partition.
    Stored(u64),
    Rejected(Rejected),
    Failed(Error),
}

/// Runs one ingest into `lake`. The table is created on first use.
pub async fn ingest(lake: &Lake, opts: &IngestOptions) -> Result<IngestMetrics> {
    let started = Instant::now();
    let inputs = source::resolve(&opts.inputs).await?;
    let mut table = lake.load_or_create().await?;

    let now = chrono::Utc::now();
    let run_id = format!("{}-{}", now.format("%Y%m%dT%H%M%SZ"), &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut quarantine = Quarantine::new(&run_id);
    let mut metrics = IngestMetrics { inputs: inputs.len(), ..Default::default() };

    let bytes_read = Arc::new(AtomicU64::new(0));
    let total: Option<u64> = inputs.iter().map(Input::size).sum();
    let bar = progress_bar(opts.progress, total);

    // Reader thread -> normaliser workers -> this task. The reader only delimits entries; the
    // workers parse, validate and build batches in parallel; this task puts their output back in
    // input order (so "first copy wins" stays deterministic), dedupes and writes.
    let (tx, mut rx) = mpsc::channel::<Output>(2);
    let decoders = {
        let batch_rows = opts.batch_rows.max(1);
        let ingested_at = now.timestamp_micros();
        let runtime = tokio::runtime::Handle::current();
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
        let known = Arc::new(KnownIds::new(&table, runtime.clone()));
        let (work_tx, work_rx) = std::sync::mpsc::sync_channel::<Chunk>(workers);
        let work_rx = Arc::new(std::sync::Mutex::new(work_rx));
        let mut threads = Vec::new();
        for i in 0..workers {
            let (work_rx, tx, known) = (work_rx.clone(), tx.clone(), known.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("auditlake-normalise-{i}"))
                    .spawn(move || normalise_chunks(&work_rx, &known, ingested_at, &tx))
                    .expect("spawn normaliser thread"),
            );
        }
        let bytes_read = bytes_read.clone();
        threads.push(
            std::thread::Builder::new()
                .name("auditlake-read".into())
                .spawn(move || read_inputs(&inputs, batch_rows, bytes_read, &runtime, &work_tx, &tx))
                .expect("spawn reader thread"),
        );
        threads
    };
    let mut pending: BTreeMap<u64, Vec<Msg>> = BTreeMap::new();
    let mut next_seq = 0u64;

    let mut writer = RecordBatchWriter::for_table(&table)
        .map_err(|e| lake.delta_err("writing", e))?
        .with_writer_properties(writer_properties())
        .with_target_file_size(opts.target_file_size);

    // Dedupe: the workers drop entries already in the table (`KnownIds`); this task drops
    // repeats within the run. This run's keys are kept apart so that a concurrent commit can be
    // checked against ours alone.
    let mut ours = lake::KeySet::default();
    // Sized once from the input's bytes (entries are rarely under 512 bytes): growing a table of
    // millions of keys would briefly hold the old and the new table, 1.5 times the memory.
    ours.reserve(total.map_or(0, |t| (t / 512) as usize));
    let mut touched: BTreeSet<i32> = BTreeSet::new();
    // Files finished so far; committed together at the end, so the run stays one commit.
    let mut adds = Vec::new();

    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let msg = tokio::select! {
            msg = rx.recv() => msg,
            _ = &mut ctrl_c => {
                writer.reset();
                return Err(Error::Cancelled);
            }
        };
        let Some(out) = msg else { break };
        if let Some(bar) = &bar {
            bar.set_position(bytes_read.load(Ordering::Relaxed));
        }
        let ready = match out.seq {
            None => out.msgs,
            Some(seq) => {
                pending.insert(seq, out.msgs);
                let mut ready = Vec::new();
                while let Some(msgs) = pending.remove(&next_seq) {
                    ready.extend(msgs);
                    next_seq += 1;
                }
                ready
            }
        };
        for msg in ready {
            match msg {
                Msg::Failed(e) => {
                    writer.reset();
                    return Err(e);
                }
                Msg::Rejected(r) => {
                    metrics.read += 1;
                    quarantine.add(lake, &r).await?;
                }
                Msg::Stored(n) => {
                    metrics.read += n;
                    metrics.duplicates += n;
                }
                Msg::Batch(batch) => {
                    metrics.read += batch.num_rows() as u64;
                    let ids = batch.column_by_name(col::ID).expect("id column").as_string::<i32>();
                    let keep: BooleanArray =
                        ids.iter().map(|id| Some(ours.insert(lake::id_key(id.unwrap_or_default())))).collect();
                    let fresh = filter_record_batch(&batch, &keep)?;
                    metrics.duplicates += (batch.num_rows() - fresh.num_rows()) as u64;
                    if fresh.num_rows() == 0 {
                        continue;
                    }
                    let fresh_dates =
                        fresh.column_by_name(PARTITION_COLUMN).expect("date column").as_primitive::<Date32Type>();
                    touched.extend(fresh_dates.values().iter().copied());
                    metrics.ingested += fresh.num_rows() as u64;
                    writer.write(fresh).await.map_err(|e| lake.delta_err("writing", e))?;
                    // Every date partition has a file open; with many partitions (or a long run)
                    // their unfinished row groups add up. Finishing all files past a budget bounds
                    // memory whatever the input's size; compaction merges the extra files later.
                    if writer.buffer_len() > FLUSH_BYTES {
                        adds.extend(writer.flush().await.map_err(|e| lake.delta_err("writing", e))?);
                    }
                }
            }
        }
    }
    for t in decoders {
        t.join().expect("decoder thread panicked");
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    quarantine.flush(lake).await?;
    metrics.rejected = quarantine.count();
    metrics.rejected_files = quarantine.parts().iter().map(|p| lake.display_path(p)).collect();
    metrics.bytes_read = bytes_read.load(Ordering::Relaxed);

    adds.extend(writer.flush().await.map_err(|e| lake.delta_err("writing", e))?);
    if !adds.is_empty() {
        metrics.files_written = adds.len() as u64;
        metrics.bytes_written = adds.iter().map(|a| a.size.max(0) as u64).sum();
        metrics.partitions = touched.iter().map(|d| format_date(*d)).collect();
        let app_metadata: HashMap<String, serde_json::Value> = HashMap::from([
            ("auditlake.run".to_string(), run_id.clone().into()),
            ("auditlake.ingested".to_string(), metrics.ingested.into()),
            ("auditlake.duplicates".to_string(), metrics.duplicates.into()),
            ("auditlake.rejected".to_string(), metrics.rejected.into()),
        ]);
        let actions: Vec<Action> = adds.into_iter().map(Action::Add).collect();
        let dates: BTreeSet<String> = metrics.partitions.iter().cloned().collect();
        let version = commit(lake, &mut table, actions, app_metadata, &dates, &ours).await?;
        metrics.table_version = Some(version);
    }

    metrics.seconds = started.elapsed().as_secs_f64();
    metrics.rows_per_sec = if metrics.seconds > 0.0 { metrics.read as f64 / metrics.seconds } else { 0.0 };
    Ok(metrics)
}

/// Commits the run's files as one append.
///
/// Delta lets two appends commit one after the other without conflict, but two ingests of
/// overlapping input could then both add the same id. So the commit is attempted only on the
/// version this run deduplicated against; when another writer got there first, the files it
/// added to this run's partitions are checked for this run's ids (a compaction's rewritten files
/// hold only ids that were there before, so it never counts as overlap). No overlap: commit on
/// the new version. Overlap: fail without committing, so that rerunning (which dedupes against the new
/// version) finishes the job with nothing doubled.
async fn commit(
    lake: &Lake,
    table: &mut deltalake::DeltaTable,
    actions: Vec<Action>,
    app_metadata: HashMap<String, serde_json::Value>,
    dates: &BTreeSet<String>,
    ours: &lake::KeySet,
) -> Result<u64> {
    let mut known_files = lake::files_in_partitions(table, dates)?;
    for _attempt in 0..100 {
        let snapshot = table.snapshot().map_err(|e| lake.delta_err("committing", e))?.clone();
        let result = CommitBuilder::default()
            .with_actions(actions.clone())
            .with_app_metadata(app_metadata.clone())
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
            Ok(done) => return Ok(done.version),
            Err(DeltaTableError::Transaction { source: TransactionError::MaxCommitAttempts(_) })
            | Err(DeltaTableError::VersionAlreadyExists(_)) => {
                table.update_state().await.map_err(|e| lake.delta_err("reloading", e))?;
                let now_files = lake::files_in_partitions(table, dates)?;
                let added: Vec<String> = now_files.difference(&known_files).cloned().collect();
                let theirs = lake::ids_in_files(table, &added).await?;
                if theirs.iter().any(|k| ours.contains(k)) {
                    return Err(Error::ConcurrentOverlap);
                }
                known_files = now_files;
            }
            Err(e) => return Err(lake.delta_err("committing", e)),
        }
    }
    Err(Error::ConcurrentOverlap)
}

/// Parquet settings: zstd, row groups small enough to bound writer memory and to prune well,
/// a bloom filter on `id` for point lookups.
///
/// Columns that are unique or nearly so per row skip dictionary encoding: a dictionary of them
/// only grows until Parquet gives up on it, after hashing every value (measured: the interner
/// was the writer's largest cost after zstd).
pub(crate) fn writer_properties() -> WriterProperties {
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
    for unique in [col::ID, col::TIMESTAMP, col::SOURCE, col::EXTRA_DATA, col::EXTRA] {
        b = b.set_column_dictionary_enabled(unique.into(), false);
    }
    b.build()
}

fn progress_bar(enabled: bool, total: Option<u64>) -> Option<ProgressBar> {
    if !enabled {
        return None;
    }
    let bar = match total {
        Some(total) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template("{spinner} ingest [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} ingest {bytes} {bytes_per_sec}").expect("valid template"),
        ),
    };
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}

/// What the normaliser workers (and the reader, for a failure) send the writer task. `seq`
/// orders chunks as they were read; a failure has none and is handled at once.
struct Output {
    seq: Option<u64>,
    msgs: Vec<Msg>,
}

/// Up to `batch_rows` raw entries of one input, for one normaliser worker.
struct Chunk {
    seq: u64,
    /// The input's name, for `source` and rejections.
    name: Arc<str>,
    text: Vec<u8>,
    /// Each entry: its byte range in `text`, its line, and whether the input ended inside it.
    records: Vec<(std::ops::Range<usize>, u64, bool)>,
}

/// The reader thread: delimits every entry of every input and hands them out in chunks.
fn read_inputs(
    inputs: &[Input],
    batch_rows: usize,
    bytes_read: Arc<AtomicU64>,
    runtime: &tokio::runtime::Handle,
    work: &std::sync::mpsc::SyncSender<Chunk>,
    tx: &mpsc::Sender<Output>,
) {
    let fail = |e: Error| {
        let _ = tx.blocking_send(Output { seq: None, msgs: vec![Msg::Failed(e)] });
    };
    let mut seq = 0u64;
    for input in inputs {
        let name: Arc<str> = input.name().into();
        let reader = match source::open(input, bytes_read.clone(), runtime) {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
        let new_chunk = |seq| Chunk { seq, name: name.clone(), text: Vec::new(), records: Vec::new() };
        let mut chunk = new_chunk(seq);
        // A closed channel means the writer stopped (error or Ctrl-C): stop reading.
        let closed = || std::io::Error::new(std::io::ErrorKind::BrokenPipe, "writer stopped");
        let result = split_records(reader, |rec| {
            let start = chunk.text.len();
            chunk.text.extend_from_slice(rec.text);
            chunk.records.push((start..chunk.text.len(), rec.line, rec.truncated));
            if chunk.records.len() >= batch_rows {
                seq += 1;
                work.send(std::mem::replace(&mut chunk, new_chunk(seq))).map_err(|_| closed())?;
            }
            Ok(())
        });
        if let Err(e) = result {
            if e.kind() == std::io::ErrorKind::BrokenPipe && tx.is_closed() {
                return;
            }
            // A read error (corrupt gzip, I/O) fails the run: committing part of a file would
            // look like success while losing its tail.
            return fail(Error::Input { path: name.to_string(), source: e });
        }
        if !chunk.records.is_empty() {
            seq += 1;
            if work.send(chunk).is_err() {
                return;
            }
        }
    }
}

/// A normaliser worker: parses and validates each entry of a chunk into one batch, plus the
/// chunk's rejections. An entry whose id its date partition already holds is only counted.
fn normalise_chunks(
    work: &std::sync::Mutex<std::sync::mpsc::Receiver<Chunk>>,
    known: &KnownIds,
    ingested_at: i64,
    tx: &mpsc::Sender<Output>,
) {
    let mut builder = BatchBuilder::new(ingested_at);
    let mut source = String::new();
    loop {
        let next = work.lock().expect("work queue lock").recv();
        let Ok(chunk) = next else { return };
        let mut msgs = Vec::new();
        let mut stored = 0u64;
        // One pass, each entry while its text is in this core's cache: parse as far as id and
        // date, check the table's keys for that date (loading them on first need), then either
        // count it or finish its row.
        let mut in_table = known.view();
        for (range, line, truncated) in &chunk.records {
            let text = &chunk.text[range.clone()];
            let entry = if *truncated {
                Err(normalise::Rejection(format!("truncated JSON: input ended inside this record ({} bytes)", text.len())))
            } else {
                normalise::parse(text)
            };
            let row = match entry {
                Err(reason) => Err(reason),
                Ok(parsed) => {
                    if in_table.as_ref().is_some_and(|keys| !keys.contains_key(&parsed.date)) {
                        drop(in_table);
                        if let Err(e) = known.ensure(parsed.date) {
                            let _ = tx.blocking_send(Output { seq: None, msgs: vec![Msg::Failed(e)] });
                            return;
                        }
                        in_table = known.view();
                    }
                    // No key to hash when the table was empty (a first ingest).
                    if in_table.as_ref().is_some_and(|keys| keys[&parsed.date].contains(&lake::id_key(&parsed.id))) {
                        Ok(None)
                    } else {
                        parsed.finish().map(Some)
                    }
                }
            };
            match row {
                Ok(None) => stored += 1,
                Ok(Some(row)) => {
                    source.clear();
                    use std::fmt::Write;
                    let _ = write!(source, "{}:{line}", chunk.name);
                    builder.push(&row, &source);
                }
                Err(reason) => msgs.push(Msg::Rejected(rejected(&chunk.name, *line, reason.0, text))),
            }
        }
        drop(in_table);
        if stored > 0 {
            msgs.push(Msg::Stored(stored));
        }
        if !builder.is_empty() {
            msgs.push(Msg::Batch(builder.finish().expect("batch matches schema")));
        }
        if tx.blocking_send(Output { seq: Some(chunk.seq), msgs }).is_err() {
            return;
        }
    }
}

fn rejected(source: &str, line: u64, reason: String, raw: &[u8]) -> Rejected {
    Rejected { source: source.to_string(), line, reason, raw: String::from_utf8_lossy(raw).into_owned() }
}
