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

use deltalake::arrow::array::{AsArray, BooleanArray, RecordBatch};
use deltalake::arrow::buffer::BooleanBuffer;
use deltalake::arrow::compute::filter_record_batch;
use deltalake::arrow::datatypes::Date32Type;
use deltalake::writer::DeltaWriter;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio::sync::mpsc;

use super::batch::BatchBuilder;
use super::decode::split_records;
use super::known::KnownIds;
use super::normalise;
use super::quarantine::{Quarantine, Rejected};
use super::source::{self, Input, Skipped};
use crate::error::{Error, Result};
use crate::lake::{self, Lake, write};
use crate::schema::{PARTITION_COLUMN, col};
use crate::time::format_date;

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
    /// Entries larger than this are quarantined with their first KiB and their size, never
    /// held whole: with it, memory is bounded whatever the input holds.
    pub max_entry_size: usize,
    /// Follow symbolic links met inside input folders (links named on the command line are
    /// always followed).
    pub follow_links: bool,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            inputs: Vec::new(),
            progress: false,
            batch_rows: 8 * 1024,
            target_file_size: 256 << 20,
            max_entry_size: DEFAULT_MAX_ENTRY_SIZE,
            follow_links: false,
        }
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
    /// Quarantine files holding the rejected records (and skipped inputs), with their reasons.
    pub rejected_files: Vec<String>,
    /// Inputs not read, or read only in part (their readable entries were ingested), and why.
    pub skipped_inputs: Vec<Skipped>,
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

/// The default `--max-entry-size`: Torq entries are a few KiB; a workflow's `extra_data` can
/// reach a few hundred.
pub const DEFAULT_MAX_ENTRY_SIZE: usize = 8 << 20;

/// The least `--max-entry-size` taken: smaller would reject ordinary entries.
pub const MIN_MAX_ENTRY_SIZE: usize = 4 << 10;

/// Raw bytes a chunk of entries may hold before it goes to a normaliser worker (besides the
/// row count), so that a few chunks in flight stay a few tens of MiB whatever the entries' size.
const CHUNK_BYTES: usize = 4 << 20;

/// Dedupe keys reserved up front at most: enough for the 10M new events of an 8 GB feed without
/// regrowing (a regrowth holds the old and the new table at once: +130 MB at 10M, measured).
/// Only the table's control bytes (1 byte a slot) are touched until keys arrive, so a large
/// input of mostly stored events costs 16 MB, not the 270 MB of the slots.
const MAX_RESERVED_KEYS: u64 = 16 << 20;

/// Encoded bytes the writer may hold in unfinished files before they are all finished.
const FLUSH_BYTES: usize = 32 << 20;

enum Msg {
    Batch(RecordBatch),
    /// Entries whose id the table already holds in their date partition.
    Stored(u64),
    Rejected(Rejected),
    /// An input that could not be read, or not to its end.
    Skipped(Skipped),
    Failed(Error),
}

/// Runs one ingest into `lake`. The table is created on first use.
pub async fn ingest(lake: &Lake, opts: &IngestOptions) -> Result<IngestMetrics> {
    let started = Instant::now();
    let resolved = source::resolve(&opts.inputs, opts.follow_links).await?;
    let mut table = lake.load_or_create().await?;
    // Taken before any data file is written, so that vacuum leaves this run's files alone.
    let lease = write::WriterLease::take(lake, "ingest").await?;
    let extras = Extras { cursor: None, metadata: write::CommitMetadata::new(), stop_on_ctrl_c: true };
    let loaded = load(lake, &lease, &mut table, opts, resolved, extras).await;
    // Released on failure too: the run's uncommitted files are garbage for vacuum now.
    lease.release().await;
    let mut metrics = loaded?;
    metrics.seconds = started.elapsed().as_secs_f64();
    metrics.rows_per_sec = if metrics.seconds > 0.0 { metrics.read as f64 / metrics.seconds } else { 0.0 };
    Ok(metrics)
}

/// What a [`load`] commits beside its rows, and whether Ctrl-C abandons it.
pub(super) struct Extras {
    /// Committed with the rows, when there are any (see [`write::append`]).
    pub cursor: Option<write::Cursor>,
    /// Added to the commit's own `auditlake.*` metadata.
    pub metadata: write::CommitMetadata,
    /// `ingest` gives up on Ctrl-C; `pull` finishes the commit in hand and stops after it.
    pub stop_on_ctrl_c: bool,
}

/// Reads `resolved` through the pipeline into `table` as one commit (none when nothing is new),
/// under the caller's `lease`. `ingest` runs it once; `pull` once per group of pages.
pub(super) async fn load(
    lake: &Lake,
    lease: &write::WriterLease,
    table: &mut deltalake::DeltaTable,
    opts: &IngestOptions,
    resolved: source::Resolved,
    extras: Extras,
) -> Result<IngestMetrics> {
    let started = Instant::now();
    let source::Resolved { inputs, skipped } = resolved;
    let now = chrono::Utc::now();
    let run_id = format!("{}-{}", now.format("%Y%m%dT%H%M%SZ"), &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut quarantine = Quarantine::new();
    let mut metrics = IngestMetrics { inputs: inputs.len(), ..Default::default() };
    for s in skipped {
        quarantine.add_skipped(lake, &s.input, &s.reason).await?;
        metrics.skipped_inputs.push(s);
    }

    let bytes_read = Arc::new(AtomicU64::new(0));
    let total: Option<u64> = inputs.iter().map(Input::size).sum();
    let bar = progress_bar(opts.progress, total);

    // Reader thread -> normaliser workers -> this task. The reader only delimits entries; the
    // workers parse, validate and build batches in parallel; this task puts their output back in
    // input order (so "first copy wins" stays deterministic), dedupes and writes.
    let (tx, mut rx) = mpsc::channel::<Output>(2);
    let decoders = {
        let batch_rows = opts.batch_rows.max(1);
        let max_entry = opts.max_entry_size.max(MIN_MAX_ENTRY_SIZE);
        let ingested_at = now.timestamp_micros();
        let runtime = tokio::runtime::Handle::current();
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
        let known = Arc::new(KnownIds::new(lake, table, runtime.clone()));
        let (work_tx, work_rx) = std::sync::mpsc::sync_channel::<Chunk>(workers);
        let work_rx = Arc::new(std::sync::Mutex::new(work_rx));
        // Chunk buffers go back to the reader when done: a fresh 4 MiB buffer a chunk is pages
        // the kernel must zero again (page faults were 6% of a re-ingest's CPU, in `perf`).
        let (spare_tx, spare_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let mut threads = Vec::new();
        for i in 0..workers {
            let (work_rx, tx, known, spare) = (work_rx.clone(), tx.clone(), known.clone(), spare_tx.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("auditlake-normalise-{i}"))
                    .spawn(move || normalise_chunks(&work_rx, &known, ingested_at, &tx, &spare))
                    .expect("spawn normaliser thread"),
            );
        }
        let bytes_read = bytes_read.clone();
        threads.push(
            std::thread::Builder::new()
                .name("auditlake-read".into())
                .spawn(move || {
                    let buffers = Buffers { spare: spare_rx };
                    read_inputs(&inputs, batch_rows, max_entry, bytes_read, &runtime, &work_tx, &tx, &buffers)
                })
                .expect("spawn reader thread"),
        );
        threads
    };
    let mut pending: BTreeMap<u64, Vec<Msg>> = BTreeMap::new();
    let mut next_seq = 0u64;

    let mut writer = write::writer(lake, table, opts.target_file_size)?;

    // Dedupe: the workers drop entries already in the table (`KnownIds`); this task drops
    // repeats within the run. This run's keys are kept apart so that a concurrent commit can be
    // checked against ours alone.
    let mut ours = lake::KeySet::default();
    // Sized from the input's bytes (entries are rarely under 512 bytes), up to a cap: growing a
    // table of millions of keys briefly holds the old and the new table, but a reservation from
    // the size of a whole bucket prefix (most of it already stored) would ask for tens of GB.
    ours.reserve(total.map_or(0, |t| (t / 512).min(MAX_RESERVED_KEYS) as usize));
    let mut touched: BTreeSet<i32> = BTreeSet::new();
    // Files finished so far; committed together at the end, so the run stays one commit.
    let mut adds = Vec::new();

    let ctrl_c = async {
        if extras.stop_on_ctrl_c {
            let _ = tokio::signal::ctrl_c().await;
        } else {
            std::future::pending::<()>().await;
        }
    };
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
                Msg::Skipped(s) => {
                    quarantine.add_skipped(lake, &s.input, &s.reason).await?;
                    metrics.skipped_inputs.push(s);
                }
                Msg::Stored(n) => {
                    metrics.read += n;
                    metrics.duplicates += n;
                }
                Msg::Batch(batch) => {
                    let rows = batch.num_rows();
                    metrics.read += rows as u64;
                    let ids = batch.column_by_name(col::ID).expect("id column").as_string::<i32>();
                    let keep = BooleanBuffer::collect_bool(rows, |i| ours.insert(lake::id_key(ids.value(i))));
                    // A batch without repeats goes on uncopied.
                    let fresh = if keep.count_set_bits() == keep.len() {
                        batch
                    } else {
                        filter_record_batch(&batch, &BooleanArray::new(keep, None))?
                    };
                    metrics.duplicates += (rows - fresh.num_rows()) as u64;
                    if fresh.num_rows() == 0 {
                        continue;
                    }
                    let fresh_dates =
                        fresh.column_by_name(PARTITION_COLUMN).expect("date column").as_primitive::<Date32Type>();
                    touched.extend(fresh_dates.values().iter().copied());
                    metrics.ingested += fresh.num_rows() as u64;
                    writer.write(fresh).await.map_err(|e| lake.delta_err("writing to", e))?;
                    // Every date partition has a file open; with many partitions (or a long run)
                    // their unfinished row groups add up. Finishing all files past a budget bounds
                    // memory whatever the input's size; compaction merges the extra files later.
                    if writer.buffer_len() > FLUSH_BYTES {
                        adds.extend(writer.flush().await.map_err(|e| lake.delta_err("writing to", e))?);
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

    adds.extend(writer.flush().await.map_err(|e| lake.delta_err("writing to", e))?);
    if !adds.is_empty() {
        metrics.files_written = adds.len() as u64;
        metrics.bytes_written = adds.iter().map(|a| a.size.max(0) as u64).sum();
        metrics.partitions = touched.iter().map(|d| format_date(*d)).collect();
        let mut metadata: write::CommitMetadata = HashMap::from([
            ("auditlake.run".to_string(), run_id.clone().into()),
            ("auditlake.ingested".to_string(), metrics.ingested.into()),
            ("auditlake.duplicates".to_string(), metrics.duplicates.into()),
            ("auditlake.rejected".to_string(), metrics.rejected.into()),
        ]);
        metadata.extend(extras.metadata);
        let dates: BTreeSet<String> = metrics.partitions.iter().cloned().collect();
        let version = write::append(lake, lease, table, adds, metadata, &dates, &ours, extras.cursor.as_ref()).await?;
        metrics.table_version = Some(version);
    }

    metrics.seconds = started.elapsed().as_secs_f64();
    metrics.rows_per_sec = if metrics.seconds > 0.0 { metrics.read as f64 / metrics.seconds } else { 0.0 };
    Ok(metrics)
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
    /// Each entry: its byte range in `text`, its line, and how it was cut.
    records: Vec<(std::ops::Range<usize>, u64, Cut)>,
}

/// How an entry came out of the decoder.
#[derive(Debug, Clone, Copy)]
enum Cut {
    Whole,
    /// The input ended inside it.
    Truncated,
    /// Over the size limit: only its head is kept; the entry's size in bytes.
    Oversized(u64),
    /// No entry: an object read as an API page named `id` or `timestamp` after its array.
    MisreadPage,
}

/// The reader thread: delimits every entry of every input and hands them out in chunks. An input
/// that cannot be opened, or fails part way (a truncated gzip, an I/O error), is reported and
/// the run goes on with the next: the entries read before the failure were whole and are kept.
#[allow(clippy::too_many_arguments)]
fn read_inputs(
    inputs: &[Input],
    batch_rows: usize,
    max_entry: usize,
    bytes_read: Arc<AtomicU64>,
    runtime: &tokio::runtime::Handle,
    work: &std::sync::mpsc::SyncSender<Chunk>,
    tx: &mpsc::Sender<Output>,
    buffers: &Buffers,
) {
    let skipped = |input: &str, reason: String| {
        let msg = Msg::Skipped(Skipped { input: input.to_string(), reason });
        tx.blocking_send(Output { seq: None, msgs: vec![msg] }).is_ok()
    };
    let mut seq = 0u64;
    for input in inputs {
        let name: Arc<str> = input.name().into();
        let reader = match source::open(input, bytes_read.clone(), runtime) {
            Ok(r) => r,
            Err(e) => {
                if !skipped(&name, format!("cannot open it: {}", root_message(&e))) {
                    return;
                }
                continue;
            }
        };
        let new_chunk = |seq| Chunk { seq, name: name.clone(), text: buffers.take(), records: Vec::new() };
        let mut chunk = new_chunk(seq);
        let mut entries = 0u64;
        // A closed channel means the writer stopped (error or Ctrl-C): stop reading.
        let closed = || std::io::Error::new(std::io::ErrorKind::BrokenPipe, "writer stopped");
        let result = split_records(reader, max_entry, |rec| {
            let start = chunk.text.len();
            chunk.text.extend_from_slice(rec.text);
            let cut = match (rec.truncated, rec.oversized, rec.misread_page) {
                (_, _, true) => Cut::MisreadPage,
                (_, true, _) => Cut::Oversized(rec.size),
                (true, false, _) => Cut::Truncated,
                (false, false, _) => Cut::Whole,
            };
            chunk.records.push((start..chunk.text.len(), rec.line, cut));
            entries += 1;
            if chunk.records.len() >= batch_rows || chunk.text.len() >= CHUNK_BYTES {
                seq += 1;
                work.send(std::mem::replace(&mut chunk, new_chunk(seq))).map_err(|_| closed())?;
            }
            Ok(())
        });
        if let Err(e) = &result
            && e.kind() == std::io::ErrorKind::BrokenPipe
            && tx.is_closed()
        {
            return;
        }
        if !chunk.records.is_empty() {
            seq += 1;
            if work.send(chunk).is_err() {
                return;
            }
        }
        if let Err(e) = result {
            let reason = format!("reading failed after {entries} entries, which were kept: {e}");
            if !skipped(&name, reason) {
                return;
            }
        }
    }
}

/// Chunk text buffers the workers are done with, for the reader to fill again.
struct Buffers {
    spare: std::sync::mpsc::Receiver<Vec<u8>>,
}

impl Buffers {
    fn take(&self) -> Vec<u8> {
        self.spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(CHUNK_BYTES + (64 << 10)))
    }
}

/// An error's message without the input's name (the skipped record names the input).
fn root_message(e: &Error) -> String {
    match e {
        Error::Input { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}

/// A normaliser worker: parses and validates each entry of a chunk into one batch, plus the
/// chunk's rejections. An entry whose id its date partition already holds is only counted.
fn normalise_chunks(
    work: &std::sync::Mutex<std::sync::mpsc::Receiver<Chunk>>,
    known: &KnownIds,
    ingested_at: i64,
    tx: &mpsc::Sender<Output>,
    spare: &std::sync::mpsc::Sender<Vec<u8>>,
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
        for (range, line, cut) in &chunk.records {
            let text = &chunk.text[range.clone()];
            let entry = match cut {
                Cut::Whole => normalise::parse(text),
                Cut::Truncated => Err(normalise::Rejection(format!(
                    "truncated JSON: input ended inside this record ({} bytes)",
                    text.len()
                ))),
                Cut::Oversized(size) => Err(normalise::Rejection(format!(
                    "entry of {size} bytes is over --max-entry-size; its first {} bytes are kept here",
                    text.len()
                ))),
                Cut::MisreadPage => Err(normalise::Rejection(
                    "the object ending here was read as an API page (its `audit_logs` elements were taken as \
                     entries), but it names `id` or `timestamp` after that array: it may have been an entry \
                     itself; its own fields were not kept"
                        .into(),
                )),
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
        let mut text = chunk.text;
        text.clear();
        let _ = spare.send(text);
        if tx.blocking_send(Output { seq: Some(chunk.seq), msgs }).is_err() {
            return;
        }
    }
}

fn rejected(source: &str, line: u64, reason: String, raw: &[u8]) -> Rejected {
    Rejected { source: source.to_string(), line, reason, raw: String::from_utf8_lossy(raw).into_owned() }
}
