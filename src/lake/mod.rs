//! The lake: a location (a folder, `file://`, `s3://`, `gs://`, `az://` or `memory://`), the
//! Delta table `audit_log` under it, and the lake's own side files (`_rejected/`).
//!
//! This module owns the table. Readers and writers both go through [`Lake`], so they agree on
//! where the table lives and on which object store instance backs it (which matters for
//! `memory://`, whose contents live only in this process). Every change to the table goes
//! through [`write`]: no job builds a commit itself, so the evidence and cursors that later
//! commits carry have one place to be added.
//!
//! - [`store`]: URL to object store, credentials, retries.
//! - [`keys`]: dedupe keys of ids, of a partition, of given files.
//! - [`write`]: Parquet writer settings and the only functions that commit.
//! - [`evidence`]: file hashes and the hash chain every commit leaves, for `verify`.
//! - [`stats`]: rows, files and bytes per partition, from the log.
//! - [`log`]: a version's live files for queries, read from the log directly.

pub mod evidence;
pub mod keys;
pub mod log;
pub mod resume;
pub mod stats;
pub mod store;
pub mod write;

use std::path::PathBuf;
use std::sync::Arc;

use deltalake::datafusion::prelude::SessionContext;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError, ObjectStore};
use object_store::ObjectStoreExt;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use url::Url;

use crate::error::{Error, Result};
use crate::schema::TABLE_NAME;

pub use keys::{KeySet, file_date, file_day, id_key};
pub use stats::{TableStats, table_stats};
pub use store::{cloud_schemes, cloud_store, s3_store};

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
    /// A second place for the evidence records (`--evidence-url`), e.g. a bucket under S3 Object
    /// Lock: its own `_evidence/` folder.
    evidence_copy: Option<Arc<Lake>>,
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

impl Lake {
    /// Opens a lake location: a path (`./lake`, `/data/lake`), `file:///…`, a cloud URL
    /// (`s3://bucket/prefix`, and `gs://`, `az://` in builds with those features), or
    /// `memory://NAME`.
    pub fn open(location: &str) -> Result<Lake> {
        let bad = |reason: String| Error::LakeLocation { location: location.to_string(), reason };
        if location.trim().is_empty() {
            return Err(bad("empty location".into()));
        }
        let parsed = Url::parse(location).ok().filter(|u| u.scheme().len() > 1);
        match parsed {
            Some(url) if url.scheme() == "memory" => {
                let name = format!("{}{}", url.host_str().unwrap_or(""), url.path().trim_end_matches('/'));
                let store = store::memory_stores()
                    .lock()
                    .expect("memory store registry")
                    .entry(name.clone())
                    .or_insert_with(|| Arc::new(InMemory::new()))
                    .clone();
                let root = Url::parse(&format!("memory:///{}/", name.trim_matches('/')).replace(":////", ":///"))
                    .map_err(|e| bad(e.to_string()))?;
                Ok(Lake { location: location.to_string(), root, store, local_dir: None, evidence_copy: None })
            }
            Some(url) if url.scheme() == "file" => {
                let path = url.to_file_path().map_err(|()| bad("not a local file URL".into()))?;
                Self::local(location, path)
            }
            Some(url) => {
                let store = cloud_store(&url).map_err(bad)?;
                let root = with_trailing_slash(url);
                Ok(Lake { location: location.to_string(), root, store, local_dir: None, evidence_copy: None })
            }
            None => Self::local(location, PathBuf::from(location)),
        }
    }

    fn local(location: &str, path: PathBuf) -> Result<Lake> {
        let bad = |reason: String| Error::LakeLocation { location: location.to_string(), reason };
        let abs = std::path::absolute(&path).map_err(|e| bad(e.to_string()))?;
        // Object paths cannot hold `..` (building one panicked): resolve it by the names, as
        // `cd` does without following links.
        let abs: PathBuf = abs.components().fold(PathBuf::new(), |mut p, c| {
            match c {
                std::path::Component::ParentDir => {
                    p.pop();
                }
                std::path::Component::CurDir => {}
                other => p.push(other),
            }
            p
        });
        let root = Url::from_directory_path(&abs).map_err(|()| bad("not an absolute path".into()))?;
        Ok(Lake {
            location: location.to_string(),
            root,
            store: Arc::new(LocalFileSystem::new()),
            local_dir: Some(abs),
            evidence_copy: None,
        })
    }

    /// Keeps a copy of every evidence record at `location` as well (any lake location).
    pub fn with_evidence_copy(mut self, location: &str) -> Result<Lake> {
        self.evidence_copy = Some(Arc::new(Lake::open(location)?));
        Ok(self)
    }

    /// Where evidence records are copied, if anywhere.
    pub fn evidence_copy(&self) -> Option<&Lake> {
        self.evidence_copy.as_deref()
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

    /// Reads a file under the lake root (a commit, an evidence record), or `None` when it does not
    /// exist.
    pub async fn get(&self, relative: &str) -> Result<Option<bytes::Bytes>> {
        let failed = |e| Error::Store { path: self.display_path(relative), source: Box::new(e) };
        match self.store.get(&self.path(relative)).await {
            Ok(got) => got.bytes().await.map(Some).map_err(failed),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(failed(e)),
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

    pub(crate) fn ensure_local_dir(&self) -> Result<()> {
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

    /// The one way a Delta failure becomes an [`Error`]: it names the table as the user sees it.
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
            self.check_version(v).await?;
            builder = builder.with_version(v);
        }
        match builder.load().await {
            Ok(table) => Ok(Some(table)),
            Err(DeltaTableError::NotATable(_)) if version.is_none() => Ok(None),
            Err(e) => Err(self.delta_err("loading", e)),
        }
    }

    /// The table's latest version (or `version`) for reading, with its live files ([`log`]).
    /// `None` when no table exists yet.
    pub async fn snapshot(&self, version: Option<u64>) -> Result<Option<ReadSnapshot>> {
        if version.is_none() && self.has_no_local_log() {
            return Ok(None);
        }
        if let Some(v) = version {
            self.check_version(v).await?;
        }
        let log_store = self.builder()?.build_storage().map_err(|e| self.delta_err("opening", e))?;
        let state = match log::read(self, version).await? {
            Some(state) => Some(state),
            None => log::read_with_kernel(self, version).await?,
        };
        Ok(state.map(|state| ReadSnapshot { log_store, state: Arc::new(state) }))
    }

    /// The table at its latest version, or [`Error::NoTable`]: for jobs that need data.
    pub async fn existing(&self) -> Result<DeltaTable> {
        self.load(None).await?.ok_or_else(|| Error::NoTable { table: self.display_path(TABLE_NAME) })
    }

    /// The position a collector (`source`, see [`write::Cursor`]) last committed in `table`:
    /// µs since the epoch before which all its events are in the table.
    pub async fn cursor(&self, table: &DeltaTable, source: &str) -> Result<Option<i64>> {
        let state = table.snapshot().map_err(|e| self.delta_err("reading", e))?;
        state.transaction_version(table.log_store().as_ref(), source).await.map_err(|e| self.delta_err("reading", e))
    }

    /// Registers the table's object store in a DataFusion session, so that it can read the
    /// table's files.
    pub fn register_store(&self, table: &DeltaTable, ctx: &SessionContext) -> Result<()> {
        table.update_datafusion_session(&ctx.state()).map_err(|e| self.delta_err("registering", e))
    }

    /// Checks that an `--as-of-version` exists before asking delta-rs for it (whose kernel
    /// panics on a version past the newest).
    async fn check_version(&self, version: u64) -> Result<()> {
        let latest = self.builder()?.build_storage().map_err(|e| self.delta_err("opening", e))?;
        let newest = latest.get_latest_version(0).await.map_err(|e| self.delta_err("loading", e))?;
        if version > newest {
            return Err(Error::NoSuchVersion { table: self.display_path(TABLE_NAME), version, newest });
        }
        Ok(())
    }
}

/// A table version opened for reading only: its log store and its live files.
#[derive(Clone)]
pub struct ReadSnapshot {
    pub log_store: deltalake::logstore::LogStoreRef,
    pub state: Arc<log::LogState>,
}

impl ReadSnapshot {
    pub fn version(&self) -> u64 {
        self.state.version
    }
}

impl std::fmt::Debug for ReadSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadSnapshot").field("version", &self.version()).finish()
    }
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

    #[test]
    fn parent_folders_in_a_lake_path_resolve_instead_of_panicking() {
        // Regression (issue 19): a lake path with `..` panicked when building object paths.
        let lake = Lake::open("/tmp/x/../lake").unwrap();
        assert_eq!(lake.table_url().as_str(), "file:///tmp/lake/audit_log/");
        assert_eq!(lake.path("_rejected/a").as_ref(), "tmp/lake/_rejected/a");
    }
}
