//! `export ocsf`: the table's events as OCSF 1.1, for Amazon Security Lake (Parquet) or a SIEM
//! (NDJSON), incrementally and exactly once per output.
//!
//! **What a run exports.** Each output (its URL and format) has two positions in the lake, Delta
//! application transactions like pull's cursor: `done`, the table version exported up to, and
//! `plan`, the version a run promised to export up to. A run exports the rows of every file that a
//! commit in (done, plan] added as new data: appends by ingest, pull or another Delta writer, not
//! compaction's rewrites, which hold rows exported already. The first run exports every live file.
//!
//! **Exactly once, also after a crash.** A run first commits `plan`, then writes the output, then
//! commits `done = plan`. Output names are fixed by the version range, the class, the day and a
//! part number, and the rows of each part by the files read, so a run killed while writing is
//! finished by the next one, which sees `plan > done` and writes the same range again: the same
//! files with the same rows, replacing what the killed run left. Then it goes on to what was
//! committed since.
//!
//! **Layout.** One folder per OCSF class (a Security Lake custom source holds one class), one per
//! UTC day, rows sorted by time in each file:
//! `<out>/ext/<prefix>-<class>/region=<r>/accountId=<a>/eventDay=YYYYMMDD/` with `--region` and
//! `--account-id` (Security Lake's layout), else `<out>/<prefix>-<class>/eventDay=YYYYMMDD/`.

pub mod ocsf;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, AsArray, ListArray, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit};
use deltalake::DeltaTable;
use deltalake::parquet::arrow::ArrowWriter;
#[allow(deprecated)]
use deltalake::parquet::arrow::async_reader::{
    ParquetObjectReader, ParquetRecordBatchStream, ParquetRecordBatchStreamBuilder,
};
use deltalake::parquet::basic::{Compression, ZstdLevel};
use deltalake::parquet::file::properties::WriterProperties;
use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use object_store::ObjectStoreExt;
use object_store::path::Path;
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::lake::{Lake, evidence, file_date, write};
use crate::schema::{PARTITION_COLUMN, TABLE_NAME, col, tag_item_field};
use ocsf::Class;

/// What the output files hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// Parquet, zstd: what Security Lake takes.
    Parquet,
    /// One OCSF event a line: what a SIEM's file or S3 input takes.
    Ndjson,
}

impl ExportFormat {
    fn extension(self) -> &'static str {
        match self {
            ExportFormat::Parquet => "parquet",
            ExportFormat::Ndjson => "ndjson",
        }
    }
}

/// Security Lake's partition values: the AWS region and account of the lake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityLake {
    pub region: String,
    pub account_id: String,
}

#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Where the files go: a folder or an object-store URL.
    pub out: String,
    pub format: ExportFormat,
    /// Leave out events before this time (every run).
    pub since: Option<DateTime<Utc>>,
    /// Security Lake's layout, when set.
    pub security_lake: Option<SecurityLake>,
    /// Sources are named `<prefix>-<class>`, e.g. `torq-authentication`.
    pub source_prefix: String,
    /// At most this many events a file (bounds memory: the events of a file are sorted in it).
    pub rows_per_file: usize,
    pub progress: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            out: String::new(),
            format: ExportFormat::Parquet,
            since: None,
            security_lake: None,
            source_prefix: "torq".into(),
            rows_per_file: 50_000,
            progress: false,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportSummary {
    pub out: String,
    /// The table versions whose new rows this run exported: after `from_version` (none: from the
    /// start) up to and including `to_version`. None when there was nothing new.
    pub from_version: Option<u64>,
    pub to_version: Option<u64>,
    /// The run finished a range a killed run had begun.
    pub resumed: bool,
    pub events: u64,
    /// Events by OCSF class name.
    pub by_class: BTreeMap<String, u64>,
    /// Events left out by `--since`.
    pub before_since: u64,
    /// Files written, relative to `out`.
    pub files: Vec<String>,
    pub seconds: f64,
}

/// The app ids of an output's two positions, from its URL and format.
fn position_ids(out: &str, format: ExportFormat) -> (String, String) {
    let key = format!("{}|{}", out.trim_end_matches('/'), format.extension());
    let id = &evidence::sha256_hex(key.as_bytes())[..16];
    (format!("auditlake.export:{id}"), format!("auditlake.export-plan:{id}"))
}

/// Exports what was committed since this output's last export; see the module docs.
pub async fn export(lake: &Lake, opts: &ExportOptions) -> Result<ExportSummary> {
    let started = Instant::now();
    let target = Lake::open(&opts.out)?;
    let (done_id, plan_id) = position_ids(&opts.out, opts.format);
    let mut table = lake.existing().await?;
    let mut summary = ExportSummary { out: opts.out.clone(), ..ExportSummary::default() };
    loop {
        let done = lake.cursor(&table, &done_id).await?.map(as_version);
        let plan = lake.cursor(&table, &plan_id).await?.map(as_version);
        let resumed = plan.is_some_and(|p| done.is_none_or(|d| p > d));
        let to = if resumed { plan.expect("resumed has a plan") } else { table.version().unwrap_or(0) as u64 };
        if done == Some(to) {
            break;
        }
        let files = match done {
            None => live_files(lake, to).await?,
            Some(d) => appended_files(lake, d, to).await?,
        };
        if files.is_empty() && !resumed {
            break; // nothing new: no commit, so an idle export never grows the log
        }
        let range = VersionRange { from: done, to };
        let mut meta = write::CommitMetadata::new();
        meta.insert("auditlake.export.out".into(), opts.out.clone().into());
        meta.insert("auditlake.export.versions".into(), range.to_string().into());
        if !resumed {
            write::record_positions(lake, &mut table, &[(plan_id.clone(), to as i64)], meta.clone()).await?;
        }
        let run = write_range(lake, &target, opts, range, files).await?;
        meta.insert("auditlake.export.events".into(), run.events.into());
        write::record_positions(lake, &mut table, &[(done_id.clone(), to as i64)], meta).await?;
        if summary.to_version.is_none() {
            summary.from_version = done; // the first range's start: the run covers (done, to]
        }
        summary.to_version = Some(to);
        summary.resumed |= resumed;
        summary.events += run.events;
        summary.before_since += run.before_since;
        for (class, n) in run.by_class {
            *summary.by_class.entry(class.caption().to_string()).or_default() += n;
        }
        summary.files.extend(run.files);
        if !resumed {
            break;
        }
        // A killed run's range is done; what was committed since follows in this run.
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

fn as_version(position: i64) -> u64 {
    position.max(0) as u64
}

/// The table versions a run exports: after `from` (none: the table as it is at `to`), to `to`.
#[derive(Debug, Clone, Copy)]
struct VersionRange {
    from: Option<u64>,
    to: u64,
}

impl std::fmt::Display for VersionRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.from {
            Some(from) => write!(f, "{}-{}", from + 1, self.to),
            None => write!(f, "0-{}", self.to),
        }
    }
}

/// A data file to export: its date partition, its path in the table, the version that added it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SourceFile {
    date: String,
    version: u64,
    path: String,
}

/// Every live file of version `to` (the first export of an output).
async fn live_files(lake: &Lake, to: u64) -> Result<Vec<SourceFile>> {
    let table = lake.load(Some(to)).await?.ok_or_else(|| Error::NoTable { table: lake.display_path(TABLE_NAME) })?;
    let snapshot = table.snapshot().map_err(|e| lake.delta_err("reading", e))?;
    let mut files: Vec<SourceFile> = snapshot
        .log_data()
        .iter()
        .map(|f| SourceFile { date: file_date(&f).unwrap_or_default(), version: to, path: f.path().to_string() })
        .collect();
    files.sort();
    Ok(files)
}

/// The files commits in (`from`, `to`] added as new data: every add with `dataChange` of a
/// commit other than a compaction (`OPTIMIZE`), in commit order.
async fn appended_files(lake: &Lake, from: u64, to: u64) -> Result<Vec<SourceFile>> {
    let mut files = Vec::new();
    for version in from + 1..=to {
        let bytes = evidence::commit_bytes(lake, version).await?.ok_or_else(|| Error::TableFile {
            path: lake.display_path(&evidence::commit_path(version)),
            reason: "the commit is missing, so export cannot tell what it added".into(),
        })?;
        let actions: Vec<Value> = evidence::actions(&bytes).collect();
        let compaction =
            actions.iter().any(|a| a.pointer("/commitInfo/operation").and_then(Value::as_str) == Some("OPTIMIZE"));
        if compaction {
            continue;
        }
        for add in actions.iter().filter_map(|a| a.get("add")) {
            if add.get("dataChange").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            let Some(path) = add.get("path").and_then(Value::as_str) else { continue };
            let date = add
                .pointer(&format!("/partitionValues/{PARTITION_COLUMN}"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            files.push(SourceFile { date: date.to_string(), version, path: path.to_string() });
        }
    }
    // Day by day; within a day in commit order (stable, so a rerun reads the same order).
    files.sort_by(|a, b| a.date.cmp(&b.date));
    Ok(files)
}

/// What one range wrote.
#[derive(Debug, Default)]
struct RangeRun {
    events: u64,
    before_since: u64,
    by_class: BTreeMap<Class, u64>,
    files: Vec<String>,
}

/// Events buffered for one class and day before they are sorted and written as one part.
#[derive(Default)]
struct Pending {
    /// (time µs, the rows, the row)
    events: Vec<(i64, Arc<Rows>, usize)>,
    next_part: usize,
}

/// What every day of a range shares.
struct RangeContext {
    lake: Lake,
    table: DeltaTable,
    target: Lake,
    opts: ExportOptions,
    range: VersionRange,
    bar: Option<ProgressBar>,
}

/// Reads `files` and writes their events, one task per UTC day, as many days at once as there are
/// cores. Each day's output depends only on its files, so the order they finish in does not
/// matter; the summary lists files day by day.
async fn write_range(
    lake: &Lake,
    target: &Lake,
    opts: &ExportOptions,
    range: VersionRange,
    files: Vec<SourceFile>,
) -> Result<RangeRun> {
    let ctx = Arc::new(RangeContext {
        lake: lake.clone(),
        table: lake.existing().await?,
        target: target.clone(),
        opts: opts.clone(),
        range,
        bar: progress_bar(opts.progress, files.len() as u64),
    });
    let mut by_day: BTreeMap<String, Vec<SourceFile>> = BTreeMap::new();
    for file in files {
        by_day.entry(file.date.clone()).or_default().push(file);
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut days = futures::stream::iter(by_day)
        .map(|(date, files)| {
            let ctx = ctx.clone();
            tokio::spawn(async move { write_day(&ctx, &date, files).await })
        })
        .buffered(cores);
    let mut run = RangeRun::default();
    while let Some(day) = days.next().await {
        let day =
            day.map_err(|e| Error::Export { out: opts.out.clone(), reason: format!("a day's task failed: {e}") })??;
        run.events += day.events;
        run.before_since += day.before_since;
        for (class, n) in day.by_class {
            *run.by_class.entry(class).or_default() += n;
        }
        run.files.extend(day.files);
    }
    if let Some(bar) = &ctx.bar {
        bar.finish_and_clear();
    }
    Ok(run)
}

/// Writes one day's events: each class's in parts of at most `rows_per_file`, sorted by time.
async fn write_day(ctx: &RangeContext, date: &str, files: Vec<SourceFile>) -> Result<RangeRun> {
    let RangeContext { lake, table, opts, .. } = ctx;
    let mut run = RangeRun::default();
    let mut pending: HashMap<Class, Pending> = HashMap::new();
    let mut buffered = 0usize;
    for file in files {
        let mut batches = read_file(lake, table, &file).await?;
        while let Some(batch) = batches.try_next().await.map_err(|e| lake.delta_err("reading", e.into()))? {
            let rows = Arc::new(Rows::new(&batch)?);
            for row in 0..rows.len() {
                let (time_us, class) = (rows.times[row], rows.class(row));
                if opts.since.is_some_and(|s| time_us < s.timestamp_micros()) {
                    run.before_since += 1;
                    continue;
                }
                pending.entry(class).or_default().events.push((time_us, rows.clone(), row));
                buffered += 1;
                *run.by_class.entry(class).or_default() += 1;
                run.events += 1;
                // Bound memory: when the day holds a file's worth of events, every class's are
                // written, so that no buffered row keeps a batch of the table alive.
                if buffered >= opts.rows_per_file {
                    run.files.extend(write_parts(ctx, date, &mut pending).await?);
                    buffered = 0;
                }
            }
        }
        if let Some(bar) = &ctx.bar {
            bar.inc(1);
        }
    }
    run.files.extend(write_parts(ctx, date, &mut pending).await?);
    Ok(run)
}

/// Writes the next part of every class that has events waiting, in class order.
async fn write_parts(ctx: &RangeContext, date: &str, pending: &mut HashMap<Class, Pending>) -> Result<Vec<String>> {
    let mut written = Vec::new();
    for class in Class::ALL {
        if let Some(p) = pending.get_mut(&class).filter(|p| !p.events.is_empty()) {
            written.push(write_part(&ctx.target, &ctx.opts, ctx.range, class, date, p).await?);
        }
    }
    Ok(written)
}

/// A stream of one data file's batches, every column.
#[allow(deprecated)] // ParquetObjectReader: its replacement is not yet in a release delta-rs uses
async fn read_file(
    lake: &Lake,
    table: &DeltaTable,
    file: &SourceFile,
) -> Result<ParquetRecordBatchStream<ParquetObjectReader>> {
    let location = Path::from_url_path(&file.path)
        .map_err(|e| Error::TableFile { path: file.path.clone(), reason: e.to_string() })?;
    let store = table.object_store();
    let size = match store.head(&location).await {
        Err(object_store::Error::NotFound { .. }) => {
            return Err(Error::ExportSourceGone {
                table: lake.display_path(TABLE_NAME),
                path: file.path.clone(),
                version: file.version,
            });
        }
        Err(e) => return Err(Error::Store { path: lake.display_path(&file.path), source: Box::new(e) }),
        Ok(meta) => meta.size,
    };
    let read_err = |e: deltalake::parquet::errors::ParquetError| lake.delta_err("reading", e.into());
    // With the size known the footer is read by an absolute range: Azure has no suffix ranges.
    ParquetRecordBatchStreamBuilder::new(ParquetObjectReader::new(store, location).with_file_size(size))
        .await
        .map_err(read_err)?
        .with_batch_size(8 * 1024)
        .build()
        .map_err(read_err)
}

/// One batch of table rows, its columns cast once to the types the mapping reads. Buffered
/// events are (time, batch, row): a row is turned into its OCSF event only when its part is
/// written, so the events waiting for a part cost their columnar bytes, not an event's dozens
/// of small strings (measured: 827 MiB peak at 10M events when events were buffered whole).
struct Rows {
    ids: StringArray,
    times: Vec<i64>,
    ingested: Option<Vec<Option<i64>>>,
    /// In [`TEXT_COLUMNS`] order.
    text: Vec<Option<StringArray>>,
    /// `tags`: each row's range of `tag_values`.
    tag_offsets: Option<(ListArray, StringArray)>,
}

const TEXT_COLUMNS: [&str; 14] = [
    col::ACCOUNT_ID,
    col::ACCOUNT_NAME,
    col::ACTION,
    col::ACTOR_NAME,
    col::ACTOR_TYPE,
    col::EMAIL,
    col::IP,
    col::USER_AGENT,
    col::RESOURCE_ID,
    col::RESOURCE_NAME,
    col::SCENARIO_ID,
    col::REVISION_ID,
    col::EXTRA_DATA,
    col::EXTRA,
];
const ACTION: usize = 2;

impl Rows {
    fn new(batch: &RecordBatch) -> Result<Rows> {
        let text = |name: &str| -> Result<Option<StringArray>> {
            batch.column_by_name(name).map(|c| Ok(cast(c, &DataType::Utf8)?.as_string::<i32>().clone())).transpose()
        };
        let micros = |name: &str| -> Result<Option<Vec<Option<i64>>>> {
            let Some(c) = batch.column_by_name(name) else { return Ok(None) };
            let c = cast(c, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
            let c = cast(&c, &DataType::Int64)?;
            Ok(Some(c.as_primitive::<Int64Type>().iter().collect()))
        };
        let missing = |name: &str| Error::TableFile { path: "a data file".into(), reason: format!("no {name} column") };
        let ids = text(col::ID)?.ok_or_else(|| missing(col::ID))?;
        let times = micros(col::TIMESTAMP)?.ok_or_else(|| missing(col::TIMESTAMP))?;
        let tag_offsets = match batch.column_by_name(col::TAGS) {
            Some(c) => {
                let list = cast(c, &DataType::List(tag_item_field()))?.as_list::<i32>().clone();
                let values = list.values().as_string::<i32>().clone();
                Some((list, values))
            }
            None => None,
        };
        Ok(Rows {
            ids,
            times: times.into_iter().map(Option::unwrap_or_default).collect(),
            ingested: micros(col::INGESTED_AT)?,
            text: TEXT_COLUMNS.iter().map(|name| text(name)).collect::<Result<_>>()?,
            tag_offsets,
        })
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn text(&self, column: usize, row: usize) -> Option<&str> {
        self.text[column].as_ref().filter(|c| c.is_valid(row)).map(|c| c.value(row))
    }

    fn class(&self, row: usize) -> Class {
        ocsf::mapping(self.text(ACTION, row).unwrap_or("")).class
    }

    fn id(&self, row: usize) -> &str {
        self.ids.value(row)
    }

    fn event(&self, row: usize) -> ocsf::Event {
        let tags = match &self.tag_offsets {
            Some((list, values)) if list.is_valid(row) => {
                let offsets = list.value_offsets();
                (offsets[row] as usize..offsets[row + 1] as usize)
                    .filter(|&i| values.is_valid(i))
                    .map(|i| values.value(i))
                    .collect()
            }
            _ => Vec::new(),
        };
        let t = |i: usize| self.text(i, row);
        ocsf::event(&ocsf::Entry {
            id: self.id(row),
            timestamp_us: self.times[row],
            account_id: t(0),
            account_name: t(1),
            action: t(2),
            actor_name: t(3),
            actor_type: t(4),
            email: t(5),
            ip: t(6),
            user_agent: t(7),
            resource_id: t(8),
            resource_name: t(9),
            scenario_id: t(10),
            revision_id: t(11),
            extra_data: t(12),
            extra: t(13),
            tags,
            ingested_at_us: self.ingested.as_ref().and_then(|i| i[row]),
        })
    }
}

/// Where a class's files for one day go, relative to `out`.
fn day_folder(opts: &ExportOptions, class: Class, date: &str) -> String {
    let source = format!("{}-{}", opts.source_prefix, class.slug());
    let day = date.replace('-', "");
    match &opts.security_lake {
        Some(sl) => format!("ext/{source}/region={}/accountId={}/eventDay={day}", sl.region, sl.account_id),
        None => format!("{source}/eventDay={day}"),
    }
}

/// Sorts one class-day's buffered events by time and writes them as the next part.
async fn write_part(
    target: &Lake,
    opts: &ExportOptions,
    range: VersionRange,
    class: Class,
    date: &str,
    pending: &mut Pending,
) -> Result<String> {
    let mut events = std::mem::take(&mut pending.events);
    events.sort_unstable_by(|a, b| (a.0, a.1.id(a.2)).cmp(&(b.0, b.1.id(b.2))));
    let part = pending.next_part;
    pending.next_part += 1;
    let relative =
        format!("{}/auditlake-v{range}-{part:04}.{}", day_folder(opts, class, date), opts.format.extension());
    let failed = |reason: String| Error::Export { out: target.display_path(&relative), reason };
    let events = events.into_iter().map(|(_, rows, row)| rows.event(row));
    let bytes = match opts.format {
        ExportFormat::Ndjson => {
            let mut lines = Vec::new();
            for event in events {
                serde_json::to_writer(&mut lines, &event).map_err(|e| failed(e.to_string()))?;
                lines.push(b'\n');
            }
            lines
        }
        ExportFormat::Parquet => to_parquet(class, events).map_err(failed)?,
    };
    target.put(&relative, bytes).await?;
    Ok(relative)
}

/// Events of one class as a zstd Parquet file of the class's schema, serialised straight into
/// Arrow (no JSON text in between). Strict: an event attribute the schema lacks is an error,
/// never silently dropped.
fn to_parquet(class: Class, events: impl Iterator<Item = ocsf::Event>) -> std::result::Result<Vec<u8>, String> {
    use datafusion::arrow::json::ReaderBuilder;
    const BATCH: usize = 16 * 1024;
    let schema = ocsf::arrow_schema(class);
    let mut decoder = ReaderBuilder::new(schema.clone())
        .with_strict_mode(true)
        .with_batch_size(BATCH)
        .build_decoder()
        .map_err(|e| e.to_string())?;
    // Row groups of one batch: each is encoded and compressed as it comes, so the writer never
    // holds a whole file's columns.
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("valid zstd level")))
        .set_max_row_group_row_count(Some(BATCH))
        .build();
    let mut writer = ArrowWriter::try_new(Vec::new(), schema, Some(props)).map_err(|e| e.to_string())?;
    let mut chunk = Vec::with_capacity(BATCH);
    let mut events = events.peekable();
    while events.peek().is_some() {
        chunk.clear();
        chunk.extend(events.by_ref().take(BATCH));
        decoder.serialize(&chunk).map_err(|e| e.to_string())?;
        if let Some(batch) = decoder.flush().map_err(|e| e.to_string())? {
            writer.write(&batch).map_err(|e| e.to_string())?;
        }
    }
    writer.into_inner().map_err(|e| e.to_string())
}

fn progress_bar(enabled: bool, files: u64) -> Option<ProgressBar> {
    enabled.then(|| {
        ProgressBar::new(files).with_style(
            ProgressStyle::with_template("exporting {bar:30} {pos}/{len} files {elapsed}").expect("valid template"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_differ_by_url_and_format_and_not_by_a_trailing_slash() {
        let a = position_ids("s3://b/ocsf", ExportFormat::Parquet);
        assert_eq!(a, position_ids("s3://b/ocsf/", ExportFormat::Parquet));
        assert_ne!(a, position_ids("s3://b/ocsf", ExportFormat::Ndjson));
        assert_ne!(a, position_ids("s3://b/other", ExportFormat::Parquet));
        assert_ne!(a.0, a.1);
    }

    #[test]
    fn security_lake_layout() {
        let opts = ExportOptions {
            security_lake: Some(SecurityLake { region: "eu-west-1".into(), account_id: "123456789012".into() }),
            ..ExportOptions::default()
        };
        assert_eq!(
            day_folder(&opts, Class::Authentication, "2026-09-01"),
            "ext/torq-authentication/region=eu-west-1/accountId=123456789012/eventDay=20260901"
        );
        assert_eq!(
            day_folder(&ExportOptions::default(), Class::ApiActivity, "2026-09-01"),
            "torq-api-activity/eventDay=20260901"
        );
    }
}
