//! The lake: a location (local folder or `memory://`), the Delta table `audit_log` under it, and
//! the lake's own side files (`_rejected/`).
//!
//! Readers and writers both go through [`Lake`], so they agree on where the table lives and on
//! which object store instance backs it (which matters for `memory://`, whose contents live only
//! in this process).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use deltalake::datafusion::prelude::{SessionContext, col, lit};
use deltalake::datafusion::scalar::ScalarValue;
use deltalake::kernel::StructField;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError, ObjectStore, TableProperty};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use serde::Serialize;
use url::Url;

use crate::error::{Error, Result};
use crate::schema::{self, PARTITION_COLUMN, TABLE_NAME, col as c};

/// Where the lake lives and the store that holds it.
#[derive(Clone)]
pub struct Lake {
    /// As the user wrote it, for messages.
    location: String,
    /// The lake root as a URL with a trailing slash.
    root: Url,
    /// Store whose "/" is the root of the URL's file system or bucket (what delta-rs expects).
    store: Arc<dyn ObjectStore>,
    /// Set for a local lake, whose folder is created on first write.
    local_dir: Option<PathBuf>,
}

impl std::fmt::Debug for Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lake").field("location", &self.location).finish()
    }
}

pub(crate) fn with_trailing_slash(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

/// Transient store errors (timeouts, 5xx, throttling) are retried with exponential backoff,
/// for up to three minutes, before an operation fails.
fn retry_config() -> object_store::RetryConfig {
    object_store::RetryConfig {
        max_retries: 10,
        retry_timeout: std::time::Duration::from_secs(180),
        ..Default::default()
    }
}

/// URL schemes of object stores this build can use, for messages.
pub fn cloud_schemes() -> Vec<&'static str> {
    let mut schemes = vec!["s3://"];
    if cfg!(feature = "gcs") {
        schemes.push("gs://");
    }
    if cfg!(feature = "azure") {
        schemes.push("az://");
    }
    schemes
}

/// The object store for a cloud URL's bucket or container, configured from the environment.
/// Errors name the scheme when this build lacks it (gs:// and az:// are cargo features).
pub fn cloud_store(url: &Url) -> std::result::Result<Arc<dyn ObjectStore>, String> {
    match url.scheme() {
        "s3" | "s3a" => s3_store(url).map_err(|e| e.to_string()),
        #[cfg(feature = "gcs")]
        "gs" => {
            static HANDLERS: std::sync::Once = std::sync::Once::new();
            HANDLERS.call_once(|| deltalake::gcp::register_handlers(None));
            let store = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(url.host_str().unwrap_or_default())
                .with_retry(retry_config())
                .build()
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(store))
        }
        #[cfg(feature = "azure")]
        "az" | "abfs" | "abfss" | "azure" => {
            static HANDLERS: std::sync::Once = std::sync::Once::new();
            HANDLERS.call_once(|| deltalake::azure::register_handlers(None));
            let store = object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(url.as_str())
                .with_retry(retry_config())
                .build()
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(store))
        }
        #[cfg(not(feature = "gcs"))]
        "gs" => Err("gs:// needs a build with `--features gcs`".to_string()),
        #[cfg(not(feature = "azure"))]
        "az" | "abfs" | "abfss" | "azure" => Err(format!("{}:// needs a build with `--features azure`", url.scheme())),
        other => Err(format!(
            "the '{other}' scheme is not supported; use a path, file://, {}, or memory://",
            cloud_schemes().join(", ")
        )),
    }
}

/// An S3 store for the URL's bucket, configured from the environment (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`,
/// `AWS_ALLOW_HTTP`, ...; instance and container credentials when no keys are set).
/// Transient errors (timeouts, 5xx, throttling) are retried with exponential backoff for up to
/// three minutes before an operation fails. Commits rely on S3 conditional puts
/// (`If-None-Match`), which AWS S3 and most S3-compatible stores honour: no lock table needed.
pub fn s3_store(url: &Url) -> std::result::Result<Arc<dyn ObjectStore>, object_store::Error> {
    static HANDLERS: std::sync::Once = std::sync::Once::new();
    // delta-rs picks its S3 log store (conditional-put commits) by URL scheme.
    HANDLERS.call_once(|| deltalake::aws::register_handlers(None));
    let bucket = url.host_str().unwrap_or_default();
    let mut builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
    // object_store reads AWS_ENDPOINT; the AWS SDKs' name for it is AWS_ENDPOINT_URL.
    if std::env::var_os("AWS_ENDPOINT").is_none()
        && let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL")
    {
        builder = builder.with_endpoint(endpoint);
    }
    Ok(Arc::new(builder.with_retry(retry_config()).build()?))
}

/// `memory://NAME` lakes of this process, so that two opens of one name share their contents.
fn memory_stores() -> &'static Mutex<HashMap<String, Arc<InMemory>>> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<InMemory>>>> = OnceLock::new();
    STORES.get_or_init(Default::default)
}

impl Lake {
    /// Opens a lake location: a path (`./lake`, `/data/lake`), `file:///…`, or `memory://NAME`.
    pub fn open(location: &str) -> Result<Lake> {
        let bad = |reason: String| Error::LakeLocation { location: location.to_string(), reason };
        if location.trim().is_empty() {
            return Err(bad("empty location".into()));
        }
        let parsed = Url::parse(location).ok().filter(|u| u.scheme().len() > 1);
        match parsed {
            Some(url) if url.scheme() == "memory" => {
                let name = format!("{}{}", url.host_str().unwrap_or(""), url.path().trim_end_matches('/'));
                let store = memory_stores()
                    .lock()
                    .expect("memory store registry")
                    .entry(name.clone())
                    .or_insert_with(|| Arc::new(InMemory::new()))
                    .clone();
                let root = Url::parse(&format!("memory:///{}/", name.trim_matches('/')).replace(":////", ":///"))
                    .map_err(|e| bad(e.to_string()))?;
                Ok(Lake { location: location.to_string(), root, store, local_dir: None })
            }
            Some(url) if url.scheme() == "file" => {
                let path = url.to_file_path().map_err(|()| bad("not a local file URL".into()))?;
                Self::local(location, path)
            }
            Some(url) => {
                let store = cloud_store(&url).map_err(bad)?;
                let root = with_trailing_slash(url);
                Ok(Lake { location: location.to_string(), root, store, local_dir: None })
            }
            None => Self::local(location, PathBuf::from(location)),
        }
    }

    fn local(location: &str, path: PathBuf) -> Result<Lake> {
        let bad = |reason: String| Error::LakeLocation { location: location.to_string(), reason };
        let abs = std::path::absolute(&path).map_err(|e| bad(e.to_string()))?;
        let root = Url::from_directory_path(&abs).map_err(|()| bad("not an absolute path".into()))?;
        Ok(Lake { location: location.to_string(), root, store: Arc::new(LocalFileSystem::new()), local_dir: Some(abs) })
    }

    /// The location as the user gave it.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The table's URL (`…/audit_log/`).
    pub fn table_url(&self) -> Url {
        self.root.join(&format!("{TABLE_NAME}/")).expect("valid table url")
    }

    /// The object store holding the lake (its "/" is the file system's or bucket's root).
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// A path under the lake root, in the store's terms.
    pub fn path(&self, relative: &str) -> Path {
        let url = self.root.join(relative).expect("valid lake path");
        Path::from_url_path(url.path()).expect("valid object path")
    }

    /// A URL-ish display of a path under the lake, for messages.
    pub fn display_path(&self, relative: &str) -> String {
        match &self.local_dir {
            Some(dir) => dir.join(relative).display().to_string(),
            None => format!("{}{relative}", self.root),
        }
    }

    /// Writes a side file (quarantine) under the lake root.
    pub async fn put(&self, relative: &str, bytes: Vec<u8>) -> Result<()> {
        self.ensure_local_dir()?;
        self.store
            .put(&self.path(relative), bytes.into())
            .await
            .map(|_| ())
            .map_err(|e| Error::Store { path: self.display_path(relative), source: Box::new(e) })
    }

    fn ensure_local_dir(&self) -> Result<()> {
        if let Some(dir) = &self.local_dir {
            std::fs::create_dir_all(dir).map_err(|e| Error::LakeLocation {
                location: self.location.clone(),
                reason: format!("cannot create {}: {e}", dir.display()),
            })?;
        }
        Ok(())
    }

    fn builder(&self) -> Result<DeltaTableBuilder> {
        DeltaTableBuilder::from_url(self.table_url())
            .map(|b| b.with_storage_backend(self.store.clone(), self.table_url()))
            .map_err(|e| self.delta_err("opening", e))
    }

    pub(crate) fn delta_err(&self, action: &'static str, e: DeltaTableError) -> Error {
        Error::Delta { action, table: self.display_path(TABLE_NAME), source: Box::new(e) }
    }

    /// A lake folder that does not exist yet, or holds no log yet, has no table: known without
    /// asking delta-rs.
    fn has_no_local_log(&self) -> bool {
        self.local_dir.as_ref().is_some_and(|dir| !dir.join(TABLE_NAME).join("_delta_log").is_dir())
    }

    /// Loads the table at its latest version (or `version`), or `None` when none exists yet.
    pub async fn load(&self, version: Option<u64>) -> Result<Option<DeltaTable>> {
        if version.is_none() && self.has_no_local_log() {
            return Ok(None);
        }
        let mut builder = self.builder()?;
        if let Some(v) = version {
            builder = builder.with_version(v);
        }
        match builder.load().await {
            Ok(table) => Ok(Some(table)),
            Err(DeltaTableError::NotATable(_)) if version.is_none() => Ok(None),
            Err(e) => Err(self.delta_err("loading", e)),
        }
    }

    /// The table's latest version (or `version`) for reading, without listing its files: each
    /// scan then replays the log for the files its filters keep (a one-day query on a year of
    /// daily files touches one). `None` when no table exists yet.
    pub async fn snapshot(&self, version: Option<u64>) -> Result<Option<ReadSnapshot>> {
        if version.is_none() && self.has_no_local_log() {
            return Ok(None);
        }
        let log_store = self.builder()?.build_storage().map_err(|e| self.delta_err("opening", e))?;
        match deltalake::kernel::Snapshot::try_new(log_store.as_ref(), version).await {
            Ok(snapshot) => Ok(Some(ReadSnapshot { log_store, snapshot: Arc::new(snapshot) })),
            Err(DeltaTableError::NotATable(_)) if version.is_none() => Ok(None),
            Err(e) => Err(self.delta_err("loading", e)),
        }
    }

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
            .await;
        match created {
            Ok(table) => Ok(table),
            // Another writer created it first: use theirs.
            Err(_) if self.load(None).await?.is_some() => Ok(self.load(None).await?.expect("just loaded")),
            Err(e) => Err(self.delta_err("creating", e)),
        }
    }
}

/// A table version opened for reading only: its log store and its (lazy) snapshot.
#[derive(Clone)]
pub struct ReadSnapshot {
    pub log_store: deltalake::logstore::LogStoreRef,
    pub snapshot: Arc<deltalake::kernel::Snapshot>,
}

impl ReadSnapshot {
    pub fn version(&self) -> u64 {
        self.snapshot.version() as u64
    }

    /// A builder of delta-rs' table provider over this version.
    pub fn provider(&self) -> deltalake::delta_datafusion::TableProviderBuilder {
        deltalake::delta_datafusion::DeltaScanNext::builder()
            .with_log_store(self.log_store.clone())
            .with_snapshot(self.snapshot.clone())
    }
}

/// A DataFusion session that can read `table` (its object store registered).
pub fn session_for(table: &DeltaTable, ctx: &SessionContext) -> Result<()> {
    table.update_datafusion_session(&ctx.state()).map_err(|e| Error::Delta {
        action: "registering",
        table: table.table_url().to_string(),
        source: Box::new(e),
    })
}

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
    pub async fn new(table: &DeltaTable) -> Result<Self> {
        let ctx = SessionContext::new();
        session_for(table, &ctx)?;
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

/// Paths (relative to the table) of the live files in the given date partitions.
pub fn files_in_partitions(table: &DeltaTable, dates: &BTreeSet<String>) -> Result<HashSet<String>> {
    let snapshot = table.snapshot().map_err(|e| Error::Delta {
        action: "reading",
        table: table.table_url().to_string(),
        source: Box::new(e),
    })?;
    Ok(snapshot
        .log_data()
        .iter()
        .filter(|f| file_date(&f).is_some_and(|d| dates.contains(&d)))
        .map(|f| f.path().to_string())
        .collect())
}

/// Dedupe keys of the ids in the given data files (paths relative to the table), reading only
/// the `id` column.
#[allow(deprecated)] // ParquetObjectReader: its replacement is not yet in a release delta-rs uses
pub async fn ids_in_files(table: &DeltaTable, paths: &[String]) -> Result<Vec<u128>> {
    use deltalake::parquet::arrow::ProjectionMask;
    use deltalake::parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStreamBuilder};
    let store = table.object_store();
    let read_err = |e: deltalake::parquet::errors::ParquetError| Error::Delta {
        action: "reading",
        table: table.table_url().to_string(),
        source: Box::new(e.into()),
    };
    let mut out = Vec::new();
    for path in paths {
        let location =
            Path::from_url_path(path).map_err(|e| Error::Store { path: path.clone(), source: Box::new(e.into()) })?;
        let builder = ParquetRecordBatchStreamBuilder::new(ParquetObjectReader::new(store.clone(), location))
            .await
            .map_err(read_err)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_to_urls() {
        let lake = Lake::open("memory://t1").unwrap();
        assert_eq!(lake.table_url().as_str(), "memory:///t1/audit_log/");
        let lake = Lake::open("/tmp/x/lake").unwrap();
        assert_eq!(lake.table_url().as_str(), "file:///tmp/x/lake/audit_log/");
        assert_eq!(lake.path("_rejected/a.ndjson").as_ref(), "tmp/x/lake/_rejected/a.ndjson");
        let err = Lake::open("ftp://host/x").unwrap_err().to_string();
        assert!(err.contains("'ftp' scheme is not supported"), "{err}");
        if !cfg!(feature = "gcs") {
            let err = Lake::open("gs://bucket/lake").unwrap_err().to_string();
            assert!(err.contains("--features gcs"), "{err}");
        }
    }

    #[test]
    fn memory_lakes_of_one_name_share_a_store() {
        let a = Lake::open("memory://shared").unwrap();
        let b = Lake::open("memory://shared").unwrap();
        assert!(Arc::ptr_eq(&a.store, &b.store));
        let c = Lake::open("memory://other").unwrap();
        assert!(!Arc::ptr_eq(&a.store, &c.store));
    }
}
