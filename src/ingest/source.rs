//! Resolves the inputs of an ingest run (files, directories, `-` for stdin, object-store URLs and
//! prefixes) and opens each as a buffered byte stream, undoing gzip when the content says so
//! (magic bytes, not the name). Objects are streamed, never downloaded whole.
//!
//! Only regular files are read: a FIFO, socket or device met in a folder (or named) is skipped
//! and reported, never opened (a FIFO would block the run; `/dev/zero` would never end). Links
//! inside a folder are not followed unless asked (`--follow`, as `find` and ripgrep do), so a
//! link in a drop folder cannot copy any file the process can read into the lake; followed
//! links are checked for loops. A path named on the command line that does not exist is an
//! error (a typo); anything found inside a folder that cannot be read is skipped and reported.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::read::MultiGzDecoder;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use tokio::runtime::Handle;
use tokio_util::io::SyncIoBridge;
use url::Url;

use crate::Error;

/// One input to read.
#[derive(Clone)]
pub enum Input {
    Stdin,
    File(PathBuf),
    /// An object in a store, e.g. `s3://raw/torq/2026/11/batch-1.json.gz`.
    Object {
        url: String,
        store: Arc<dyn ObjectStore>,
        meta: ObjectMeta,
    },
    /// Bytes already in memory, e.g. a page of Torq's API fetched by `pull`.
    Memory {
        name: String,
        bytes: Arc<[u8]>,
    },
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl PartialEq for Input {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Input {
    /// How the input is named in `source`, messages and the quarantine.
    pub fn name(&self) -> String {
        match self {
            Input::Stdin => "<stdin>".to_string(),
            Input::File(p) => p.display().to_string(),
            Input::Object { url, .. } => url.clone(),
            Input::Memory { name, .. } => name.clone(),
        }
    }

    /// Size on disk, when known, for progress.
    pub fn size(&self) -> Option<u64> {
        match self {
            Input::Stdin => None,
            Input::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
            Input::Object { meta, .. } => Some(meta.size),
            Input::Memory { bytes, .. } => Some(bytes.len() as u64),
        }
    }
}

/// An input that will not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    pub input: String,
    pub reason: String,
}

/// What [`resolve`] found: inputs to read, and inputs skipped with their reason.
#[derive(Debug, Default)]
pub struct Resolved {
    pub inputs: Vec<Input>,
    pub skipped: Vec<Skipped>,
}

/// Expands the command-line inputs: directories recursively (sorted, hidden entries skipped),
/// `-` as stdin, `s3://bucket/prefix` as every object under the prefix (sorted; an exact key is
/// one object). A path or prefix that holds nothing is an error naming it.
pub async fn resolve(args: &[String], follow_links: bool) -> Result<Resolved, Error> {
    let mut out = Resolved::default();
    for arg in args {
        if arg == "-" {
            out.inputs.push(Input::Stdin);
            continue;
        }
        if is_object_url(arg) {
            out.inputs.extend(list_objects(arg).await?);
            continue;
        }
        let path = PathBuf::from(arg);
        // A link named on the command line is what the user asked for: followed.
        let meta =
            std::fs::metadata(&path).map_err(|source| Error::Input { path: path.display().to_string(), source })?;
        if meta.is_dir() {
            let mut visited = Vec::new();
            walk(&path, follow_links, &mut visited, &mut out)?;
        } else {
            add_file(path, &meta, &mut out);
        }
    }
    Ok(out)
}

/// Adds a file if it is a regular one; anything else is skipped with the reason.
fn add_file(path: PathBuf, meta: &std::fs::Metadata, out: &mut Resolved) {
    if meta.is_file() {
        out.inputs.push(Input::File(path));
    } else {
        let reason = "not a regular file (a FIFO, socket or device): not read".to_string();
        out.skipped.push(Skipped { input: path.display().to_string(), reason });
    }
}

/// An input naming an object store rather than a local path.
fn is_object_url(arg: &str) -> bool {
    ["s3://", "s3a://", "gs://", "az://", "abfs://", "abfss://"].iter().any(|p| arg.starts_with(p))
}

async fn list_objects(arg: &str) -> Result<Vec<Input>, Error> {
    let bad = |e: String| Error::Input { path: arg.to_string(), source: io::Error::other(e) };
    let url = Url::parse(arg).map_err(|e| bad(e.to_string()))?;
    let store = crate::lake::cloud_store(&url).map_err(bad)?;
    let key = url.path().trim_start_matches('/');
    let prefix = ObjectPath::from(key.trim_end_matches('/'));
    let bucket = url.host_str().unwrap_or_default().to_string();
    let mut metas: Vec<ObjectMeta> = if key.is_empty() || key.ends_with('/') {
        store.list(Some(&prefix)).try_collect().await.map_err(|e| bad(e.to_string()))?
    } else {
        // An exact key, or else a prefix without its trailing slash.
        match store.head(&prefix).await {
            Ok(meta) => vec![meta],
            Err(_) => store.list(Some(&prefix)).try_collect().await.map_err(|e| bad(e.to_string()))?,
        }
    };
    metas.retain(|m| !m.location.filename().is_some_and(|f| f.starts_with('.')));
    metas.sort_by(|a, b| a.location.cmp(&b.location));
    if metas.is_empty() {
        return Err(bad("no objects at this URL".into()));
    }
    Ok(metas
        .into_iter()
        .map(|meta| Input::Object {
            url: format!("{}://{bucket}/{}", url.scheme(), meta.location),
            store: store.clone(),
            meta,
        })
        .collect())
}

/// Adds the files under `dir`. `visited` holds the (device, inode) of the folders on the way
/// down, so a followed link back to one of them is a loop, reported once, not walked.
fn walk(dir: &Path, follow: bool, visited: &mut Vec<(u64, u64)>, out: &mut Resolved) -> Result<(), Error> {
    let skip = |out: &mut Resolved, path: &Path, reason: String| {
        out.skipped.push(Skipped { input: path.display().to_string(), reason });
    };
    let entries = match std::fs::read_dir(dir).and_then(|d| d.collect::<Result<Vec<_>, _>>()) {
        Ok(entries) => entries,
        // The top folder was named by the user: not readable is an error. Below it, a skip.
        Err(source) if visited.is_empty() => return Err(Error::Input { path: dir.display().to_string(), source }),
        Err(e) => {
            skip(out, dir, format!("cannot read the folder: {e}"));
            return Ok(());
        }
    };
    let id = folder_id(dir);
    if let Some(id) = id {
        visited.push(id);
    }
    let mut entries = entries;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            skip(out, &path, "cannot tell what it is".into());
            continue;
        };
        let meta = if kind.is_symlink() {
            if !follow {
                skip(out, &path, "a symbolic link: not followed without --follow".into());
                continue;
            }
            match std::fs::metadata(&path) {
                Ok(meta) => meta,
                Err(e) => {
                    skip(out, &path, format!("a link that cannot be followed: {e}"));
                    continue;
                }
            }
        } else {
            match entry.metadata() {
                Ok(meta) => meta,
                Err(e) => {
                    skip(out, &path, format!("cannot read its metadata: {e}"));
                    continue;
                }
            }
        };
        if meta.is_dir() {
            if folder_id(&path).is_some_and(|id| visited.contains(&id)) {
                skip(out, &path, "a link back to a folder above it (a loop): not walked again".into());
                continue;
            }
            walk(&path, follow, visited, out)?;
        } else {
            add_file(path, &meta, out);
        }
    }
    if id.is_some() {
        visited.pop();
    }
    Ok(())
}

/// A folder's (device, inode), to recognise it behind another path.
fn folder_id(dir: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(dir).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// Counts bytes as they are read, for progress and metrics, shared with another thread.
pub struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

const BUF: usize = 1 << 20;

/// Opens an input, decompressing gzip when the first two bytes are its magic number.
/// Bytes read from the underlying file (compressed size) are added to `count`.
/// `runtime` drives object-store reads from the (synchronous) reader thread.
pub fn open(input: &Input, count: Arc<AtomicU64>, runtime: &Handle) -> Result<Box<dyn BufRead + Send>, Error> {
    let raw: Box<dyn Read + Send> = match input {
        Input::Stdin => Box::new(io::stdin()),
        Input::File(p) => {
            Box::new(File::open(p).map_err(|source| Error::Input { path: p.display().to_string(), source })?)
        }
        Input::Object { store, meta, .. } => {
            let reader = object_store::buffered::BufReader::with_capacity(store.clone(), meta, BUF);
            Box::new(SyncIoBridge::new_with_handle(reader, runtime.clone()))
        }
        Input::Memory { bytes, .. } => Box::new(io::Cursor::new(bytes.clone())),
    };
    let mut reader = BufReader::with_capacity(BUF, Counting { inner: raw, count });
    let head = reader.fill_buf().map_err(|source| Error::Input { path: input.name(), source })?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::with_capacity(BUF, MultiGzDecoder::new(reader))))
    } else {
        Ok(Box::new(reader))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    #[test]
    fn gzip_is_detected_by_content_not_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("batch.json"); // no .gz suffix
        let mut gz = GzEncoder::new(File::create(&path).unwrap(), Compression::default());
        gz.write_all(b"{\"id\":\"a\"}\n").unwrap();
        gz.finish().unwrap();
        let count = Arc::new(AtomicU64::new(0));
        let mut text = String::new();
        let rt = tokio::runtime::Runtime::new().unwrap();
        open(&Input::File(path.clone()), count.clone(), rt.handle()).unwrap().read_to_string(&mut text).unwrap();
        assert_eq!(text, "{\"id\":\"a\"}\n");
        assert_eq!(count.load(Ordering::Relaxed), std::fs::metadata(&path).unwrap().len());
    }

    #[tokio::test]
    async fn directories_expand_recursively_in_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("b/c")).unwrap();
        for f in ["b/c/3.json", "a.json", "b/2.ndjson", ".hidden"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        let got = resolve(&[dir.path().display().to_string(), "-".into()], false).await.unwrap();
        assert!(got.skipped.is_empty());
        let names: Vec<_> = got
            .inputs
            .iter()
            .map(|i| match i {
                Input::File(p) => p.strip_prefix(dir.path()).unwrap().display().to_string(),
                Input::Stdin => "-".into(),
                other => other.name(),
            })
            .collect();
        assert_eq!(names, vec!["a.json", "b/2.ndjson", "b/c/3.json", "-"]);
    }

    #[tokio::test]
    async fn missing_input_names_the_path() {
        let err = resolve(&["/no/such/file.json".into()], false).await.unwrap_err();
        assert!(err.to_string().contains("/no/such/file.json"), "{err}");
    }

    fn names(r: &Resolved, root: &Path) -> (Vec<String>, Vec<String>) {
        let rel = |p: &str| Path::new(p).strip_prefix(root).unwrap().display().to_string();
        (r.inputs.iter().map(|i| rel(&i.name())).collect(), r.skipped.iter().map(|s| rel(&s.input)).collect())
    }

    /// Regression (issue 19): links in a drop folder were followed (copying any readable file into
    /// the quarantine), a loop of links was walked ~40 levels deep, and a FIFO blocked the run.
    #[cfg(unix)]
    #[tokio::test]
    async fn links_fifos_and_loops_in_a_folder_are_skipped_and_reported() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("drop");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("a.json"), "").unwrap();
        std::fs::write(dir.path().join("outside.json"), "").unwrap();
        symlink(dir.path().join("outside.json"), root.join("link.json")).unwrap();
        symlink(root.join("nowhere"), root.join("dangling.json")).unwrap();
        symlink(&root, root.join("sub/loop")).unwrap();
        symlink(&root, root.join("sub/loop2")).unwrap();
        let fifo = root.join("pipe.json");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let arg = root.display().to_string();

        let got = resolve(std::slice::from_ref(&arg), false).await.unwrap();
        let (read, skipped) = names(&got, &root);
        assert_eq!(read, vec!["a.json"]);
        assert_eq!(skipped, vec!["dangling.json", "link.json", "pipe.json", "sub/loop", "sub/loop2"]);
        assert!(got.skipped.iter().all(|s| !s.reason.is_empty()));

        let got = resolve(&[arg], true).await.unwrap();
        let (read, skipped) = names(&got, &root);
        assert_eq!(read, vec!["a.json", "link.json"]);
        assert_eq!(skipped, vec!["dangling.json", "pipe.json", "sub/loop", "sub/loop2"]);
        assert!(got.skipped[2].reason.contains("loop"), "{:?}", got.skipped);

        // Named on the command line, a FIFO is still not opened.
        let got = resolve(&[fifo.display().to_string()], false).await.unwrap();
        assert!(got.inputs.is_empty() && got.skipped.len() == 1);
    }
}
