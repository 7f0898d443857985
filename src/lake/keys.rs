//! Dedupe keys: an id's 128-bit hash, sets of them, and the keys already in the table (of one
//! date partition, or of given files). Ingest checks new entries against these; an append
//! checks a concurrent writer's files against its own.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use deltalake::DeltaTable;
use deltalake::datafusion::prelude::{SessionContext, col, lit};
use deltalake::datafusion::scalar::ScalarValue;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;

use super::Lake;
use crate::error::{Error, Result};
use crate::schema::{PARTITION_COLUMN, col as c};

/// 128-bit hash of an id: the dedupe key held in memory (16 bytes an event, whatever the id's
/// length). A collision between two distinct ids is about 2^-100 likely at a billion events.
pub fn id_key(id: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(id.as_bytes())
}

/// A set of dedupe keys. The keys are already uniform hashes, so hashing them again (SipHash,
/// the default) is wasted work: the set folds the key's two halves instead.
pub type KeySet = HashSet<u128, std::hash::BuildHasherDefault<KeyHasher>>;

/// The hasher of [`KeySet`]: only ever fed one `u128`.
#[derive(Default)]
pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not used by u128 keys; kept correct for any other input.
        self.0 = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.0);
    }
    fn write_u128(&mut self, k: u128) {
        self.0 ^= (k as u64) ^ ((k >> 64) as u64);
    }
}

/// Adds the dedupe keys of a column of ids, whichever string layout the reader chose
/// (DataFusion reads Parquet strings as Utf8View).
pub fn extend_keys(out: &mut KeySet, ids: &deltalake::arrow::array::ArrayRef) -> Result<()> {
    let utf8 = deltalake::arrow::compute::cast(ids, &deltalake::arrow::datatypes::DataType::Utf8)?;
    out.extend(deltalake::arrow::array::cast::as_string_array(&utf8).iter().flatten().map(id_key));
    Ok(())
}

/// Reads the dedupe keys of rows already in a table, one date partition at a time. The session
/// and the table's scan are built once and reused for every partition.
pub struct PartitionIds {
    ctx: SessionContext,
    provider: Arc<dyn deltalake::datafusion::catalog::TableProvider>,
}

impl PartitionIds {
    pub async fn new(lake: &Lake, table: &DeltaTable) -> Result<Self> {
        let ctx = SessionContext::new();
        lake.register_store(table, &ctx)?;
        Ok(PartitionIds { provider: table.table_provider().await?, ctx })
    }

    /// The keys of every row in the partition of `date` (days since the epoch). Only that
    /// partition's files are read, and only their `id` column.
    pub async fn read(&self, date: i32) -> Result<KeySet> {
        let mut out = KeySet::default();
        let df = self
            .ctx
            .read_table(self.provider.clone())?
            .filter(col(c::DATE).eq(lit(ScalarValue::Date32(Some(date)))))?
            .select_columns(&[c::ID])?;
        let mut stream = df.execute_stream().await?;
        while let Some(batch) = stream.try_next().await? {
            extend_keys(&mut out, batch.column(0))?;
        }
        Ok(out)
    }
}

/// The date partition a live file belongs to, as `YYYY-MM-DD`.
pub fn file_date(file: &deltalake::kernel::LogicalFileView) -> Option<String> {
    file.partition_values_map().get(PARTITION_COLUMN).cloned().flatten()
}

/// The date partition a live file belongs to, for the readers that need it as a date: an error
/// naming the file when it has none (the file would silently go missing) or it is not a date.
pub fn file_day(file: &deltalake::kernel::LogicalFileView) -> Result<chrono::NaiveDate> {
    let bad = |reason: &str| Error::TableFile { path: file.path().to_string(), reason: reason.into() };
    let date = file_date(file).ok_or_else(|| bad("no date partition value"))?;
    crate::time::parse_date(&date).ok_or_else(|| bad("the partition value is not a date"))
}

/// Paths (relative to the table) of the live files in the given date partitions.
pub fn files_in_partitions(lake: &Lake, table: &DeltaTable, dates: &BTreeSet<String>) -> Result<HashSet<String>> {
    let snapshot = table.snapshot().map_err(|e| lake.delta_err("reading", e))?;
    Ok(snapshot
        .log_data()
        .iter()
        .filter(|f| file_date(f).is_some_and(|d| dates.contains(&d)))
        .map(|f| f.path().to_string())
        .collect())
}

/// Dedupe keys of the ids in the given data files (paths relative to the table), reading only
/// the `id` column.
#[allow(deprecated)] // ParquetObjectReader: its replacement is not yet in a release delta-rs uses
pub async fn ids_in_files(lake: &Lake, table: &DeltaTable, paths: &[String]) -> Result<Vec<u128>> {
    use deltalake::parquet::arrow::ProjectionMask;
    use deltalake::parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStreamBuilder};
    let store = table.object_store();
    let read_err = |e: deltalake::parquet::errors::ParquetError| lake.delta_err("reading", e.into());
    let mut out = Vec::new();
    for path in paths {
        let location =
            Path::from_url_path(path).map_err(|e| Error::TableFile { path: path.clone(), reason: e.to_string() })?;
        // With the size known the footer is read by an absolute range: Azure has no suffix ranges.
        let size = store
            .head(&location)
            .await
            .map_err(|e| Error::Store { path: lake.display_path(path), source: Box::new(e) })?
            .size;
        let reader = ParquetObjectReader::new(store.clone(), location).with_file_size(size);
        let builder = ParquetRecordBatchStreamBuilder::new(reader).await.map_err(read_err)?;
        let mask = ProjectionMask::columns(builder.parquet_schema(), [c::ID]);
        let mut stream = builder.with_projection(mask).build().map_err(read_err)?;
        while let Some(batch) = stream.try_next().await.map_err(read_err)? {
            let mut keys = KeySet::default();
            extend_keys(&mut keys, batch.column(0))?;
            out.extend(keys);
        }
    }
    Ok(out)
}
