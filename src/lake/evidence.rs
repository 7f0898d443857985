//! Tamper evidence: what every commit auditlake makes leaves behind, for `auditlake verify`.
//!
//! - Each data file a commit adds carries its SHA-256 in the add action's `tags`
//!   (`auditlake.sha256`; Delta readers ignore tags), next to the size Delta records anyway.
//! - Each commit gets a record `<lake>/_evidence/<version>.json`: the SHA-256 of the commit file's
//!   bytes and a hash chain `H(N) = SHA-256(H(P) ‖ N ‖ SHA-256(N.json))`, where `P` is the
//!   newest sealed version before `N` (normally `N-1`) and `H` before the first record is 32
//!   zero bytes. Editing, removing or inserting a commit breaks the chain from there on.
//!
//! Records are written right after the commit, by the writer that made it, and never
//! overwritten (create-only); with `--evidence-url`, also to a second location (a bucket under
//! S3 Object Lock, another account), where whoever can write the lake cannot rewrite them. The first commit of a lake made before evidence existed starts the
//! chain; `verify --init` starts it without a commit. Versions before the first record are
//! reported as not covered.

use object_store::{ObjectStoreExt, PutMode, PutOptions};
use serde::{Deserialize, Serialize};

use super::Lake;
use crate::error::{Error, Result};
use crate::schema::TABLE_NAME;

/// The add-action tag holding a data file's SHA-256 (hex).
pub const FILE_HASH_TAG: &str = "auditlake.sha256";

/// App metadata every auditlake commit carries (in its commitInfo): `verify` then knows that a
/// record of that commit must exist, so deleting records is not mistaken for an old lake.
pub const EVIDENCE_MARK: (&str, &str) = ("auditlake.evidence", "sha256-chain-v1");

/// Where the records live, under the lake root.
pub const EVIDENCE_DIR: &str = "_evidence/";

/// The record of one commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub version: u64,
    /// SHA-256 of the commit file's bytes, hex.
    pub commit_sha256: String,
    /// The sealed version this one chains to; `None` for the first record.
    pub previous_version: Option<u64>,
    /// `H(N)`, hex.
    pub chain: String,
    /// Ed25519 signature (hex) of [`signed_message`], when the writer held a signing key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// The environment variable naming the signing key's file (PKCS#8, PEM or DER).
pub const SIGNING_KEY_ENV: &str = "AUDITLAKE_SIGNING_KEY";

/// What a record's signature covers: its version and chain value, so a signed head pins every
/// commit before it.
pub fn signed_message(version: u64, chain: &str) -> Vec<u8> {
    let mut m = b"auditlake-evidence-v1".to_vec();
    m.extend_from_slice(&version.to_be_bytes());
    m.extend_from_slice(&unhex(chain).unwrap_or_default());
    m
}

/// Reads PEM (`-----BEGIN ...`) or DER bytes into DER.
fn der(bytes: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    let text = std::str::from_utf8(bytes).ok().map(str::trim);
    match text {
        Some(t) if t.starts_with("-----BEGIN") => {
            let body: String = t.lines().filter(|l| !l.starts_with("-----")).collect();
            base64::engine::general_purpose::STANDARD.decode(body.trim()).ok()
        }
        _ => Some(bytes.to_vec()),
    }
}

/// The signing key named by `AUDITLAKE_SIGNING_KEY`, if set.
pub fn signing_key() -> Result<Option<ring::signature::Ed25519KeyPair>> {
    let Ok(path) = std::env::var(SIGNING_KEY_ENV) else { return Ok(None) };
    let bad = |reason: String| Error::Evidence { path: path.clone(), reason };
    let bytes =
        std::fs::read(&path).map_err(|e| bad(format!("cannot read the signing key ({SIGNING_KEY_ENV}): {e}")))?;
    let der = der(&bytes).ok_or_else(|| bad("not a PEM or DER key".into()))?;
    ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
        .map(Some)
        .map_err(|e| bad(format!("not an Ed25519 PKCS#8 key ({e}); `auditlake verify --new-key FILE` makes one")))
}

/// Writes a new Ed25519 signing key (PKCS#8 PEM, readable by its owner only) to `path`;
/// returns its public key, hex, for `verify --public-key`.
pub fn new_key(path: &std::path::Path) -> Result<String> {
    use base64::Engine;
    use ring::signature::KeyPair;
    let bad = |reason: String| Error::Evidence { path: path.display().to_string(), reason };
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
        .map_err(|e| bad(format!("generating a key failed: {e}")))?;
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|e| bad(e.to_string()))?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref());
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n");
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).map_err(|e| bad(format!("cannot create it: {e}")))?;
    file.write_all(pem.as_bytes()).map_err(|e| bad(e.to_string()))?;
    Ok(hex(pair.public_key().as_ref()))
}

/// A public key from `verify --public-key`: 64 hex digits, or a file holding those or a PEM/DER
/// SubjectPublicKeyInfo (`openssl pkey -pubout`).
pub fn parse_public_key(text: &str) -> Result<Vec<u8>, String> {
    let t = text.trim();
    if t.len() == 64
        && let Some(k) = unhex(t)
    {
        return Ok(k);
    }
    let bytes =
        std::fs::read(t).map_err(|e| format!("--public-key '{t}': neither 64 hex digits nor a readable file: {e}"))?;
    if let Ok(s) = std::str::from_utf8(&bytes)
        && s.trim().len() == 64
        && let Some(k) = unhex(s.trim())
    {
        return Ok(k);
    }
    let der = der(&bytes).ok_or_else(|| format!("--public-key '{t}': not a key"))?;
    // An Ed25519 SubjectPublicKeyInfo is a 12-byte header and the 32-byte key.
    match der.len() {
        44 => Ok(der[12..].to_vec()),
        32 => Ok(der),
        n => Err(format!("--public-key '{t}': not an Ed25519 public key ({n} bytes)")),
    }
}

/// Whether `record`'s signature is valid for `public_key`; `None` when it has none.
pub fn signature_valid(public_key: &[u8], record: &Record) -> Option<bool> {
    let sig = unhex(record.signature.as_deref()?)?;
    let key = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public_key);
    Some(key.verify(&signed_message(record.version, &record.chain), &sig).is_ok())
}

/// SHA-256 of bytes, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// SHA-256 (hex) and size of a stored object, streamed: `None` when it does not exist.
pub async fn hash_object(
    store: &dyn object_store::ObjectStore,
    location: &object_store::path::Path,
) -> Result<Option<(String, u64)>> {
    use futures::StreamExt;
    let got = match store.get(location).await {
        Ok(got) => got,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(Error::Store { path: location.to_string(), source: Box::new(e) }),
    };
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut size = 0u64;
    let mut stream = got.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::Store { path: location.to_string(), source: Box::new(e) })?;
        size += chunk.len() as u64;
        ctx.update(&chunk);
    }
    Ok(Some((hex(ctx.finish().as_ref()), size)))
}

/// `H(N)` from `H(P)` (hex; `None` for the first record) and the commit's hash (hex).
pub fn chain(previous: Option<&str>, version: u64, commit_sha256: &str) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(&previous.and_then(unhex).unwrap_or_else(|| vec![0u8; 32]));
    ctx.update(&version.to_be_bytes());
    ctx.update(&unhex(commit_sha256).unwrap_or_default());
    hex(ctx.finish().as_ref())
}

/// A commit file's path under the lake root.
pub fn commit_path(version: u64) -> String {
    format!("{TABLE_NAME}/_delta_log/{version:020}.json")
}

fn record_path(version: u64) -> String {
    format!("{EVIDENCE_DIR}{version:020}.json")
}

/// Every record, oldest first, and the records that could not be read (path, reason).
pub async fn records(lake: &Lake) -> Result<(Vec<Record>, Vec<(String, String)>)> {
    use futures::TryStreamExt;
    let store = lake.store();
    let listed: Vec<object_store::ObjectMeta> = match store.list(Some(&lake.path(EVIDENCE_DIR))).try_collect().await {
        Ok(l) => l,
        Err(object_store::Error::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(Error::Store { path: lake.display_path(EVIDENCE_DIR), source: Box::new(e) }),
    };
    let mut out = Vec::new();
    let mut bad = Vec::new();
    use futures::StreamExt;
    let mut fetched = futures::stream::iter(listed)
        .map(|meta| async move {
            let name = meta.location.filename().unwrap_or_default().to_string();
            lake.get(&format!("{EVIDENCE_DIR}{name}")).await.map(|bytes| (name, bytes))
        })
        .buffer_unordered(16);
    while let Some(got) = fetched.next().await {
        let (name, bytes) = got?;
        let bytes = bytes.ok_or_else(|| gone(lake, &format!("{EVIDENCE_DIR}{name}")))?;
        match serde_json::from_slice::<Record>(&bytes) {
            Ok(r) if name == format!("{:020}.json", r.version) => out.push(r),
            Ok(r) => bad.push((name, format!("holds the record of version {}", r.version))),
            Err(e) => bad.push((name, format!("not an evidence record: {e}"))),
        }
    }
    out.sort_by_key(|r| r.version);
    Ok((out, bad))
}

/// A file that was there a moment ago (listed, or refused as existing) and is not now.
pub fn gone(lake: &Lake, relative: &str) -> Error {
    Error::Evidence { path: lake.display_path(relative), reason: "it existed a moment ago and is gone now".into() }
}

/// The bytes of commit `version`, or `None` when it does not exist.
pub async fn commit_bytes(lake: &Lake, version: u64) -> Result<Option<bytes::Bytes>> {
    lake.get(&commit_path(version)).await
}

/// Seals the versions this writer just committed: one record each, chained to the newest record
/// below it. A record of a concurrent writer's version just below is waited for briefly, so
/// that the chain stays unbroken when writers interleave.
pub(crate) async fn seal(lake: &Lake, versions: impl IntoIterator<Item = u64>) -> Result<()> {
    let key = signing_key()?;
    for version in versions {
        let Some(commit) = commit_bytes(lake, version).await? else {
            return Err(Error::Evidence {
                path: lake.display_path(&commit_path(version)),
                reason: "the commit just made is gone".into(),
            });
        };
        let mut previous = newest_below(lake, version).await?;
        let unsealed_below = version > 0 && previous.as_ref().is_some_and(|p| p.version + 1 < version);
        if unsealed_below && commit_bytes(lake, version - 1).await?.is_some_and(|c| is_marked(&c)) {
            // A concurrent auditlake writer's commit just below, not sealed yet: give it ten
            // seconds. (Another tool's commit is never sealed: no wait for those.)
            for _ in 0..100 {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                if let Some(record) = record_at(lake, version - 1).await {
                    previous = Some(record);
                    break;
                }
            }
        }
        let commit_sha256 = sha256_hex(&commit);
        let chain = chain(previous.as_ref().map(|p| p.chain.as_str()), version, &commit_sha256);
        let signature = key.as_ref().map(|k| hex(k.sign(&signed_message(version, &chain)).as_ref()));
        let record = Record { version, chain, commit_sha256, previous_version: previous.map(|p| p.version), signature };
        write_record(lake, &record).await?;
    }
    Ok(())
}

/// Starts the chain at the table's newest version (`verify --init`); a no-op when records exist.
pub async fn init(lake: &Lake, newest: u64) -> Result<Option<u64>> {
    if !records(lake).await?.0.is_empty() {
        return Ok(None);
    }
    seal(lake, [newest]).await?;
    Ok(Some(newest))
}

async fn newest_below(lake: &Lake, version: u64) -> Result<Option<Record>> {
    // Most often the record just below exists: one GET instead of a listing.
    if version > 0
        && let Some(record) = record_at(lake, version - 1).await
    {
        return Ok(Some(record));
    }
    Ok(records(lake).await?.0.into_iter().rfind(|r| r.version < version))
}

/// The record of `version`, when it exists and reads.
async fn record_at(lake: &Lake, version: u64) -> Option<Record> {
    serde_json::from_slice::<Record>(&lake.get(&record_path(version)).await.ok()??).ok()
}

/// Whether a commit carries [`EVIDENCE_MARK`] in its commitInfo (auditlake made it, with a record).
pub fn is_marked(commit: &[u8]) -> bool {
    let (key, value) = EVIDENCE_MARK;
    actions(commit)
        .any(|a| a.get("commitInfo").and_then(|c| c.get(key)).and_then(serde_json::Value::as_str) == Some(value))
}

/// A commit file's actions, one JSON object a line (lines that do not parse are skipped).
pub fn actions(commit: &[u8]) -> impl Iterator<Item = serde_json::Value> + '_ {
    commit.split(|b| *b == b'\n').filter(|l| !l.is_empty()).filter_map(|l| serde_json::from_slice(l).ok())
}

/// Runs `tasks` on every core at once (each on a runtime worker) and returns their results in
/// order. Hashing is the cost of evidence: SHA-256 runs at about 150 MB/s a core here
/// (measured, as fast as `sha256sum`).
pub async fn on_every_core<T, F>(tasks: Vec<F>) -> Vec<Result<T>>
where
    T: Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
{
    use futures::StreamExt;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    futures::stream::iter(tasks)
        .map(|task| async move {
            tokio::spawn(task).await.unwrap_or_else(|e| {
                Err(Error::Evidence { path: String::new(), reason: format!("a hashing task failed: {e}") })
            })
        })
        .buffered(cores)
        .collect()
        .await
}

async fn write_record(lake: &Lake, record: &Record) -> Result<()> {
    write_record_at(lake, record).await?;
    if let Some(copy) = lake.evidence_copy() {
        copy.ensure_local_dir()?;
        write_record_at(copy, record).await?;
    }
    Ok(())
}

async fn write_record_at(lake: &Lake, record: &Record) -> Result<()> {
    let path = record_path(record.version);
    let body = serde_json::to_vec_pretty(record).expect("a record serialises");
    let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
    let location = lake.path(&path);
    let store = lake.store();
    let put = match store.put_opts(&location, body.clone().into(), opts).await {
        // A store without create-only writes: a plain one (the version is new anyway).
        Err(object_store::Error::NotImplemented { .. }) => store.put(&location, body.into()).await,
        other => other,
    };
    match put {
        Ok(_) => Ok(()),
        // Another writer sealed the same commit first (a vacuum's versions interleaved with an
        // ingest's): its record stands. A record of a different commit is never replaced.
        Err(object_store::Error::AlreadyExists { .. }) => {
            let existing = lake.get(&path).await?.ok_or_else(|| gone(lake, &path))?;
            match serde_json::from_slice::<Record>(&existing) {
                Ok(r) if r.commit_sha256 == record.commit_sha256 => Ok(()),
                _ => Err(Error::Evidence {
                    path: lake.display_path(&path),
                    reason: "a different record for this version already exists; records are never overwritten".into(),
                }),
            }
        }
        Err(e) => Err(Error::Store { path: lake.display_path(&path), source: Box::new(e) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_depends_on_every_input() {
        let c = sha256_hex(b"commit");
        let first = chain(None, 0, &c);
        assert_eq!(first, chain(Some(&"00".repeat(32)), 0, &c));
        assert_ne!(first, chain(None, 1, &c));
        assert_ne!(first, chain(None, 0, &sha256_hex(b"commit!")));
        assert_ne!(chain(Some(&first), 1, &c), chain(Some(&sha256_hex(b"x")), 1, &c));
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
