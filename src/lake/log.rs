//! A table version's live files, read straight from the Delta log for queries.
//!
//! delta-rs' kernel replays the log twice for a query: once for the protocol and metadata when
//! the snapshot opens, once more for the files when the scan is planned, each pass through a
//! blocking thread and Arrow's JSON reader over the full action schema. On a lake of one day
//! that was 3.5 ms of a 13 ms query, more on a year (measured in the binary, issue 21). Here one
//! LIST and one pass over the newest classic checkpoint and the commits after it give the same
//! files. Anything else a log may hold (multi-part or V2 checkpoints standing in for removed
//! commits) is left to the kernel, which reads every form.
//!
//! Replay follows the Delta protocol: a checkpoint lists the files live at its version; each
//! later commit, in order, adds files and removes them by path; the newest `protocol` and
//! `metaData` actions win.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::NaiveDate;
use deltalake::arrow::array::{Array, AsArray, StructArray};
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use serde::Deserialize;

use super::Lake;
use crate::error::{Error, Result};
use crate::schema::{PARTITION_COLUMN, TABLE_NAME};

/// What a query needs of a table version.
#[derive(Debug, Clone)]
pub struct LogState {
    pub version: u64,
    /// The protocol's `minReaderVersion`.
    pub reader_version: i64,
    /// The table's columns, in the schema's order (partition column included).
    pub columns: Vec<String>,
    /// The live data files, ordered by path.
    pub files: Vec<LiveFile>,
}

/// A live data file.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveFile {
    /// Relative to the table root, decoded from the log's URL form.
    pub path: Path,
    pub size: u64,
    /// The `date` partition value as the log spells it (`None`: the file has none).
    pub date: Option<String>,
    /// `numRecords` of the file's statistics.
    pub rows: Option<u64>,
    pub deletion_vector: bool,
}

impl LiveFile {
    /// The file's date partition: an error naming the file when it has none (the file would
    /// silently go missing) or it is not a date.
    pub fn day(&self) -> Result<NaiveDate> {
        let bad = |reason: &str| Error::TableFile { path: self.path.to_string(), reason: reason.into() };
        let date = self.date.as_deref().ok_or_else(|| bad("no date partition value"))?;
        crate::time::parse_date(date).ok_or_else(|| bad("the partition value is not a date"))
    }
}

/// The live files of `version` (or the newest), or `None` when the log has no classic
/// checkpoint or unbroken run of commits to start from (read it with the kernel).
pub async fn read(lake: &Lake, version: Option<u64>) -> Result<Option<LogState>> {
    let dir = format!("{TABLE_NAME}/_delta_log/");
    let listed: Vec<object_store::ObjectMeta> = match lake.store().list(Some(&lake.path(&dir))).try_collect().await {
        Ok(l) => l,
        Err(object_store::Error::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(Error::Store { path: lake.display_path(&dir), source: Box::new(e) }),
    };
    let mut commits = std::collections::BTreeSet::new();
    let mut checkpoints = std::collections::BTreeSet::new();
    for meta in &listed {
        let name = meta.location.filename().unwrap_or_default();
        let number = |suffix: &str| name.strip_suffix(suffix).filter(|v| v.len() == 20).and_then(|v| v.parse().ok());
        if let Some(v) = number(".json") {
            commits.insert(v);
        } else if let Some(v) = number(".checkpoint.parquet") {
            checkpoints.insert(v);
        }
    }
    let Some(target) = version.or_else(|| commits.last().copied()) else { return Ok(None) };
    // The newest start (a classic checkpoint, or the table's first commit) with every commit
    // from there to `target`.
    let unbroken = |from: u64| (from..=target).all(|v| commits.contains(&v));
    let start = checkpoints
        .range(..=target)
        .rev()
        .find(|cp| unbroken(**cp + 1))
        .map(|cp| Start::Checkpoint(*cp))
        .or_else(|| unbroken(0).then_some(Start::Empty));
    let Some(start) = start else { return Ok(None) };

    let mut replay = Replay::default();
    let first_commit = match start {
        Start::Checkpoint(cp) => {
            let path = format!("{dir}{cp:020}.checkpoint.parquet");
            let bytes = lake.get(&path).await?.ok_or_else(|| gone(lake, &path))?;
            replay.checkpoint(bytes).map_err(|reason| Error::TableFile { path: lake.display_path(&path), reason })?;
            cp + 1
        }
        Start::Empty => 0,
    };
    // Fetched ahead, many at once (an object store answers each GET in tens of milliseconds),
    // applied in order.
    let mut fetched = futures::stream::iter(first_commit..=target)
        .map(|v| {
            let path = format!("{dir}{v:020}.json");
            async move { (lake.get(&path).await, path) }
        })
        .buffered(16);
    while let Some((bytes, path)) = fetched.next().await {
        let bytes = bytes?.ok_or_else(|| gone(lake, &path))?;
        replay.commit(&bytes).map_err(|reason| Error::TableFile { path: lake.display_path(&path), reason })?;
    }
    replay.finish(target).map(Some).map_err(|reason| Error::TableFile { path: lake.display_path(&dir), reason })
}

enum Start {
    Checkpoint(u64),
    Empty,
}

fn gone(lake: &Lake, path: &str) -> Error {
    Error::TableFile { path: lake.display_path(path), reason: "listed in the log but gone when read".into() }
}

#[derive(Default)]
struct Replay {
    live: HashMap<Path, LiveFile>,
    reader_version: Option<i64>,
    schema: Option<String>,
}

impl Replay {
    fn commit(&mut self, bytes: &[u8]) -> std::result::Result<(), String> {
        for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let action: Action = serde_json::from_slice(line).map_err(|e| format!("line {}: {e}", n + 1))?;
            if let Some(add) = action.add {
                let rows = match add.stats.as_deref() {
                    Some(stats) => {
                        serde_json::from_str::<Stats>(stats)
                            .map_err(|e| format!("line {}: stats: {e}", n + 1))?
                            .num_records
                    }
                    None => None,
                };
                let file = LiveFile {
                    path: store_path(&add.path),
                    size: u64::try_from(add.size).map_err(|_| format!("line {}: negative size", n + 1))?,
                    date: add.partition_values.and_then(|p| p.date).map(Cow::into_owned),
                    rows,
                    deletion_vector: add.deletion_vector.is_some(),
                };
                self.live.insert(file.path.clone(), file);
            }
            if let Some(remove) = action.remove {
                self.live.remove(&store_path(&remove.path));
            }
            if let Some(p) = action.protocol {
                self.reader_version = Some(p.min_reader_version);
            }
            if let Some(m) = action.meta_data {
                self.schema = Some(m.schema_string.into_owned());
            }
        }
        Ok(())
    }

    /// The files, protocol and schema a classic checkpoint lists.
    fn checkpoint(&mut self, bytes: bytes::Bytes) -> std::result::Result<(), String> {
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(bytes).and_then(|b| b.build()).map_err(|e| e.to_string())?;
        for batch in reader {
            let batch = batch.map_err(|e| e.to_string())?;
            if let Some(add) = batch.column_by_name("add") {
                self.checkpoint_adds(add.as_struct())?;
            }
            if let Some(protocol) = batch.column_by_name("protocol").map(|p| p.as_struct()) {
                let Some(v) = protocol.column_by_name("minReaderVersion") else { continue };
                let v = deltalake::arrow::compute::cast(v, &deltalake::arrow::datatypes::DataType::Int64)
                    .map_err(|e| e.to_string())?;
                let v = v.as_primitive::<deltalake::arrow::datatypes::Int64Type>();
                if let Some(i) = (0..protocol.len()).find(|i| protocol.is_valid(*i) && v.is_valid(*i)) {
                    self.reader_version = Some(v.value(i));
                }
            }
            if let Some(meta) = batch.column_by_name("metaData").map(|m| m.as_struct()) {
                let Some(s) = meta.column_by_name("schemaString") else { continue };
                let s = s.as_string::<i32>();
                if let Some(i) = (0..meta.len()).find(|i| meta.is_valid(*i) && s.is_valid(*i)) {
                    self.schema = Some(s.value(i).to_string());
                }
            }
        }
        Ok(())
    }

    fn checkpoint_adds(&mut self, add: &StructArray) -> std::result::Result<(), String> {
        let column = |name: &str| add.column_by_name(name).ok_or_else(|| format!("add.{name} is missing"));
        let paths = column("path")?.as_string::<i32>();
        let sizes = column("size")?.as_primitive::<deltalake::arrow::datatypes::Int64Type>();
        let stats = add.column_by_name("stats").map(|s| s.as_string::<i32>());
        let dvs = add.column_by_name("deletionVector");
        let values = column("partitionValues")?.as_map();
        let (keys, dates) = (values.keys().as_string::<i32>(), values.values().as_string::<i32>());
        for i in (0..add.len()).filter(|i| add.is_valid(*i)) {
            let entries = values.value_offsets()[i] as usize..values.value_offsets()[i + 1] as usize;
            let date = entries
                .into_iter()
                .find(|e| keys.value(*e) == PARTITION_COLUMN)
                .and_then(|e| dates.is_valid(e).then(|| dates.value(e).to_string()));
            let rows = match stats.filter(|s| s.is_valid(i)) {
                Some(s) => serde_json::from_str::<Stats>(s.value(i)).map_err(|e| format!("stats: {e}"))?.num_records,
                None => None,
            };
            let file = LiveFile {
                path: store_path(paths.value(i)),
                size: u64::try_from(sizes.value(i)).map_err(|_| "negative size".to_string())?,
                date,
                rows,
                deletion_vector: dvs.is_some_and(|d| d.is_valid(i)),
            };
            self.live.insert(file.path.clone(), file);
        }
        Ok(())
    }

    fn finish(self, version: u64) -> std::result::Result<LogState, String> {
        let reader_version = self.reader_version.ok_or("no protocol action")?;
        let schema = self.schema.ok_or("no metaData action")?;
        let schema: SchemaString = serde_json::from_str(&schema).map_err(|e| format!("the table's schema: {e}"))?;
        let mut files: Vec<LiveFile> = self.live.into_values().collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(LogState { version, reader_version, columns: schema.fields.into_iter().map(|f| f.name).collect(), files })
    }
}

/// A path as the log writes it (URL-encoded) in the store's form.
pub fn store_path(log_path: &str) -> Path {
    Path::from_url_path(log_path).unwrap_or_else(|_| Path::from(log_path))
}

/// One line of a commit: the actions a reader needs; the rest (`commitInfo`, `txn`, ...) skipped.
#[derive(Deserialize)]
struct Action<'a> {
    #[serde(borrow)]
    add: Option<Add<'a>>,
    #[serde(borrow)]
    remove: Option<Remove<'a>>,
    protocol: Option<Protocol>,
    #[serde(borrow, rename = "metaData")]
    meta_data: Option<MetaData<'a>>,
}

#[derive(Deserialize)]
struct Add<'a> {
    #[serde(borrow)]
    path: Cow<'a, str>,
    size: i64,
    #[serde(borrow, rename = "partitionValues")]
    partition_values: Option<PartitionValues<'a>>,
    #[serde(borrow)]
    stats: Option<Cow<'a, str>>,
    #[serde(rename = "deletionVector")]
    deletion_vector: Option<serde::de::IgnoredAny>,
}

/// The partition values of an add; the one partition column is `date` (`PARTITION_COLUMN`).
#[derive(Deserialize)]
struct PartitionValues<'a> {
    #[serde(borrow)]
    date: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Remove<'a> {
    #[serde(borrow)]
    path: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Protocol {
    #[serde(rename = "minReaderVersion")]
    min_reader_version: i64,
}

#[derive(Deserialize)]
struct MetaData<'a> {
    #[serde(borrow, rename = "schemaString")]
    schema_string: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Stats {
    #[serde(rename = "numRecords")]
    num_records: Option<u64>,
}

#[derive(Deserialize)]
struct SchemaString {
    fields: Vec<SchemaField>,
}

#[derive(Deserialize)]
struct SchemaField {
    name: String,
}

/// The same through delta-rs' kernel, for logs [`read`] leaves to it; `None` when no table
/// exists.
pub async fn read_with_kernel(lake: &Lake, version: Option<u64>) -> Result<Option<LogState>> {
    let log_store = lake.builder()?.build_storage().map_err(|e| lake.delta_err("opening", e))?;
    let snapshot = match deltalake::kernel::Snapshot::try_new(log_store.as_ref(), version).await {
        Ok(snapshot) => snapshot,
        Err(deltalake::DeltaTableError::NotATable(_)) if version.is_none() => return Ok(None),
        Err(e) => return Err(lake.delta_err("loading", e)),
    };
    // The kernel keeps the protocol's fields to itself; its JSON form is the log's own.
    let protocol = serde_json::to_value(snapshot.protocol()).unwrap_or_default();
    let mut files = Vec::new();
    let mut views = snapshot.file_views(log_store.as_ref(), None);
    while let Some(file) = views.try_next().await.map_err(|e| lake.delta_err("reading", e))? {
        files.push(LiveFile {
            path: file.object_store_path(),
            size: u64::try_from(file.size())
                .map_err(|_| Error::TableFile { path: file.path().to_string(), reason: "negative size".into() })?,
            date: super::file_date(&file),
            rows: file.num_records().and_then(|n| u64::try_from(n).ok()),
            deletion_vector: file.deletion_vector_descriptor().is_some(),
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Some(LogState {
        version: snapshot.version(),
        reader_version: protocol["minReaderVersion"].as_i64().unwrap_or(0),
        columns: snapshot.arrow_schema().fields().iter().map(|f| f.name().clone()).collect(),
        files,
    }))
}
