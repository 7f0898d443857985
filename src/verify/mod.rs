//! `verify`: was the audit log changed after the fact?
//!
//! Replays the table's log from its commit files (not from delta-rs' state, which would trust
//! them) against the evidence every auditlake commit leaves (`crate::lake::evidence`):
//!
//! 1. the commits: none missing, each one's bytes hash to its record, the chain unbroken, no
//!    commit without a record once the chain has started, no record past the newest commit;
//! 2. what the commits did: files removed only by auditlake's compaction (rows in = rows out +
//!    duplicates it reports) or retention (whole partitions before the cutoff it names);
//! 3. the live files: present, of the recorded size and (unless `--quick`) SHA-256;
//! 4. the table's folders: no data file that no commit ever added;
//! 5. the checkpoints: each lists exactly the files the commits before it leave live.
//!
//! Every problem is a [`Finding`] that names the version or file; legitimate maintenance is
//! listed apart, so an auditor sees what changed the data and why.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::lake::evidence::{self, FILE_HASH_TAG, Record};
use crate::schema::{PARTITION_COLUMN, TABLE_NAME};

#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Check the log and file sizes only, without hashing the live files.
    pub quick: bool,
    /// Check up to this version instead of the newest.
    pub version: Option<u64>,
    /// The Ed25519 public key whose signature every record must carry.
    pub public_key: Option<Vec<u8>>,
}

/// One problem found: what, where, and the details.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Finding {
    /// A stable name: `commit_missing`, `commit_altered`, `commit_without_evidence`,
    /// `evidence_altered`, `evidence_missing`, `evidence_unsigned`, `evidence_forged`, `commits_truncated`, `file_missing`, `file_altered`, `file_injected`,
    /// `data_removed`, `compaction_changed_rows`, `checkpoint_mismatch`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub detail: String,
}

/// Commit files (and evidence records) fetched at once.
const FETCH_AHEAD: usize = 16;

/// A removal the log shows as auditlake's own maintenance.
#[derive(Debug, Clone, Serialize)]
pub struct Maintenance {
    pub version: u64,
    /// `compaction`, `retention`, or `retried copy` (a commit delta-rs wrote again after its
    /// answer was lost, changing nothing).
    pub kind: &'static str,
    pub files_removed: u64,
    pub detail: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// No finding.
    pub intact: bool,
    pub newest_version: u64,
    pub checked_through: u64,
    /// The first version with evidence; earlier ones are not covered.
    pub covered_from: Option<u64>,
    /// `H(N)` of the version checked through, when it has a record.
    pub chain_head: Option<String>,
    pub commits: u64,
    pub live_files: u64,
    pub files_hashed: u64,
    pub bytes_hashed: u64,
    /// Live files added before evidence began: checked for presence and size only.
    pub files_not_covered: u64,
    pub quick: bool,
    /// Every record's signature was checked against `--public-key`.
    pub signatures_checked: bool,
    /// The second location whose records were compared (`--evidence-url`).
    pub evidence_copy: Option<String>,
    pub maintenance: Vec<Maintenance>,
    pub findings: Vec<Finding>,
    pub seconds: f64,
}

/// A live file as the log describes it.
#[derive(Debug, Clone)]
struct FileInfo {
    size: u64,
    sha256: Option<String>,
    rows: Option<u64>,
    date: Option<String>,
}

fn finding(kind: &'static str, version: Option<u64>, path: Option<String>, detail: impl Into<String>) -> Finding {
    Finding { kind, version, path, detail: detail.into() }
}

/// Verifies the lake's table; see the module docs.
pub async fn verify(lake: &Lake, opts: &VerifyOptions) -> Result<VerifyReport> {
    let started = Instant::now();
    let mut report =
        VerifyReport { quick: opts.quick, signatures_checked: opts.public_key.is_some(), ..Default::default() };
    let log = list_log(lake).await?;
    let Some(&newest) = log.commits.iter().max() else {
        return Err(Error::NoTable { table: lake.display_path(TABLE_NAME) });
    };
    report.newest_version = newest;
    let upto = match opts.version {
        Some(v) if v > newest => {
            return Err(Error::NoSuchVersion { table: lake.display_path(TABLE_NAME), version: v, newest });
        }
        Some(v) => v,
        None => newest,
    };
    report.checked_through = upto;

    let (records, bad_records) = evidence::records(lake).await?;
    for (name, reason) in bad_records {
        report.findings.push(finding(
            "evidence_altered",
            None,
            Some(format!("{}{name}", evidence::EVIDENCE_DIR)),
            reason,
        ));
    }
    let records: BTreeMap<u64, Record> = records.into_iter().map(|r| (r.version, r)).collect();
    if let Some(copy) = lake.evidence_copy() {
        compare_copy(copy, &records, newest, &mut report).await?;
    }
    report.covered_from = records.keys().next().copied();
    // Records of versions the log no longer has: commits were removed from its end.
    let beyond: Vec<u64> = records.keys().copied().filter(|v| *v > newest).collect();
    if let (Some(first), Some(last)) = (beyond.first(), beyond.last()) {
        report.findings.push(finding(
            "commits_truncated",
            Some(*first),
            None,
            format!("evidence exists for versions {first}..={last}, but the log ends at version {newest}: commits were removed"),
        ));
    }

    let mut live: HashMap<String, FileInfo> = HashMap::new();
    let mut ever_added: HashSet<String> = HashSet::new();
    let mut live_at_checkpoint: HashMap<u64, HashSet<String>> = HashMap::new();
    // Commit files are fetched ahead, many at once (an object store answers each GET in tens of
    // milliseconds; a year of `pull --follow` is a hundred thousand commits), and checked in order.
    let mut commits = futures::stream::iter(0..=upto)
        .map(|version| async move { (version, evidence::commit_bytes(lake, version).await) })
        .buffered(FETCH_AHEAD);
    while let Some((version, fetched)) = commits.next().await {
        let Some(bytes) = fetched? else {
            report.findings.push(finding(
                "commit_missing",
                Some(version),
                Some(lake.display_path(&evidence::commit_path(version))),
                "the log skips this version: its commit file was removed (auditlake's tables forbid Delta's \
                 expired-log cleanup; another writer may have cleaned a table made without that setting)",
            ));
            continue;
        };
        report.commits += 1;
        check_commit(version, &bytes, &records, report.covered_from, &mut report.findings);
        if let (Some(key), Some(record)) = (&opts.public_key, records.get(&version)) {
            match evidence::signature_valid(key, record) {
                Some(true) => {}
                Some(false) => report.findings.push(finding(
                    "evidence_forged",
                    Some(version),
                    None,
                    "the record's signature does not verify with --public-key: it was made or changed without the key",
                )),
                None => report.findings.push(finding(
                    "evidence_unsigned",
                    Some(version),
                    None,
                    "the record has no signature, but --public-key expects one on every record",
                )),
            }
        }
        if let Some(r) = records.get(&version) {
            report.chain_head = Some(r.chain.clone());
        }
        replay(version, &bytes, &mut live, &mut ever_added, &mut report);
        if log.checkpoints.contains(&version) {
            live_at_checkpoint.insert(version, live.keys().cloned().collect());
        }
    }
    if !records.contains_key(&upto) {
        report.chain_head = None;
    }

    check_live_files(lake, &live, opts.quick, &mut report).await?;
    if opts.version.is_none() {
        check_unreferenced(lake, &ever_added, &mut report).await?;
    }
    for (version, files) in &live_at_checkpoint {
        check_checkpoint(lake, *version, files, &mut report).await?;
    }
    report.findings.sort_by(|a, b| a.version.cmp(&b.version).then(a.kind.cmp(b.kind)));
    report.intact = report.findings.is_empty();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The lake's records against the copy kept elsewhere (`--evidence-url`): the copy wins.
async fn compare_copy(
    copy: &Lake,
    records: &BTreeMap<u64, Record>,
    newest: u64,
    report: &mut VerifyReport,
) -> Result<()> {
    let (copied, bad) = evidence::records(copy).await?;
    report.evidence_copy = Some(copy.location().to_string());
    for (name, reason) in bad {
        report.findings.push(finding("evidence_altered", None, Some(format!("{}: {name}", copy.location())), reason));
    }
    for c in &copied {
        match records.get(&c.version) {
            Some(r) if r == c => {}
            Some(_) => report.findings.push(finding(
                "evidence_altered",
                Some(c.version),
                None,
                format!("the lake's evidence record differs from the copy at {}", copy.location()),
            )),
            None if c.version > newest => report.findings.push(finding(
                "commits_truncated",
                Some(c.version),
                None,
                format!(
                    "the copy at {} holds evidence of version {}, past the log's end ({newest})",
                    copy.location(),
                    c.version
                ),
            )),
            None => report.findings.push(finding(
                "evidence_altered",
                Some(c.version),
                None,
                format!("the lake's evidence record is gone; the copy at {} has it", copy.location()),
            )),
        }
    }
    Ok(())
}

/// The versions of the commit files and checkpoints in `_delta_log/`.
struct LogListing {
    commits: Vec<u64>,
    checkpoints: HashSet<u64>,
}

async fn list_log(lake: &Lake) -> Result<LogListing> {
    let prefix = format!("{TABLE_NAME}/_delta_log/");
    let listed: Vec<object_store::ObjectMeta> = match lake.store().list(Some(&lake.path(&prefix))).try_collect().await {
        Ok(l) => l,
        Err(object_store::Error::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(Error::Store { path: lake.display_path(&prefix), source: Box::new(e) }),
    };
    let mut out = LogListing { commits: Vec::new(), checkpoints: HashSet::new() };
    for meta in listed {
        let name = meta.location.filename().unwrap_or_default();
        let version = |suffix: &str| name.strip_suffix(suffix).and_then(|v| v.parse::<u64>().ok());
        if let Some(v) = version(".json") {
            out.commits.push(v);
        } else if let Some(v) = version(".checkpoint.parquet") {
            out.checkpoints.insert(v);
        }
    }
    Ok(out)
}

/// A commit against its record and the chain.
///
/// A record chains to the newest record before it, except when two writers committed at once
/// and the later one sealed first: then it chains to an older record. Either way the chain value
/// must follow from the record it names, so no record can be changed without breaking it.
fn check_commit(
    version: u64,
    bytes: &[u8],
    records: &BTreeMap<u64, Record>,
    covered_from: Option<u64>,
    findings: &mut Vec<Finding>,
) {
    let Some(record) = records.get(&version) else {
        if evidence::is_marked(bytes) {
            findings.push(finding(
                "evidence_missing",
                Some(version),
                None,
                format!("auditlake made this commit with evidence, but its record is gone ({})", commit_summary(bytes)),
            ));
        } else if covered_from.is_some_and(|c| version > c) {
            findings.push(finding(
                "commit_without_evidence",
                Some(version),
                None,
                format!("no evidence record: not written by auditlake, or injected ({})", commit_summary(bytes)),
            ));
        }
        return;
    };
    let sha = evidence::sha256_hex(bytes);
    if sha != record.commit_sha256 {
        findings.push(finding(
            "commit_altered",
            Some(version),
            None,
            format!("the commit file's SHA-256 is {sha}, its evidence says {}", record.commit_sha256),
        ));
    }
    let first = records.keys().next() == Some(&version);
    let previous = record.previous_version.filter(|p| *p < version).and_then(|p| records.get(&p));
    let linked = match record.previous_version {
        None => first,
        Some(_) => previous.is_some(),
    };
    let chained = evidence::chain(previous.map(|p| p.chain.as_str()), version, &record.commit_sha256);
    if !linked || chained != record.chain {
        findings.push(finding(
            "evidence_altered",
            Some(version),
            None,
            match (linked, record.previous_version) {
                (false, Some(p)) => format!("the record chains to version {p}, which has no record"),
                (false, None) => "the record claims to start the chain, but earlier records exist".to_string(),
                _ => format!("the hash chain breaks here: the record says {}, its inputs give {chained}", record.chain),
            },
        ));
    }
}

/// What a commit says it is, for a message: operation and engine.
fn commit_summary(bytes: &[u8]) -> String {
    let info = evidence::actions(bytes).find_map(|a| a.get("commitInfo").cloned()).unwrap_or(Value::Null);
    let op = info.get("operation").and_then(Value::as_str).unwrap_or("unknown operation");
    let engine = info.get("engineInfo").and_then(Value::as_str).unwrap_or("unknown engine");
    format!("{op} by {engine}")
}

/// A path as the log writes it (URL-encoded), in the store's form.
fn store_path(log_path: &str) -> String {
    crate::lake::log::store_path(log_path).to_string()
}

/// Applies one commit's adds and removes to the live set, judging each removal.
fn replay(
    version: u64,
    bytes: &[u8],
    live: &mut HashMap<String, FileInfo>,
    ever_added: &mut HashSet<String>,
    report: &mut VerifyReport,
) {
    let mut info = Value::Null;
    let mut added: Vec<FileInfo> = Vec::new();
    let mut removed: Vec<(String, Option<FileInfo>)> = Vec::new();
    let mut adds_were_live = true;
    for action in evidence::actions(bytes) {
        if let Some(ci) = action.get("commitInfo") {
            info = ci.clone();
        } else if let Some(add) = action.get("add") {
            let Some(path) = add.get("path").and_then(Value::as_str) else { continue };
            let file = FileInfo {
                size: add.get("size").and_then(Value::as_u64).unwrap_or(0),
                sha256: add
                    .pointer(&format!("/tags/{}", FILE_HASH_TAG.replace('/', "~1")))
                    .and_then(Value::as_str)
                    .map(str::to_string),
                rows: add
                    .get("stats")
                    .and_then(Value::as_str)
                    .and_then(|s| serde_json::from_str::<Value>(s).ok())
                    .and_then(|s| s.get("numRecords").and_then(Value::as_u64)),
                date: add
                    .pointer(&format!("/partitionValues/{PARTITION_COLUMN}"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
            };
            let path = store_path(path);
            ever_added.insert(path.clone());
            adds_were_live &= live.insert(path, file.clone()).is_some();
            added.push(file);
        } else if let Some(remove) = action.get("remove") {
            let Some(path) = remove.get("path").and_then(Value::as_str) else { continue };
            let path = store_path(path);
            let was = live.remove(&path);
            removed.push((path, was));
        }
    }
    if removed.is_empty() {
        return;
    }
    let operation = info.get("operation").and_then(Value::as_str).unwrap_or("").to_string();
    let n = removed.len() as u64;
    if removed.iter().all(|(_, was)| was.is_none()) && adds_were_live {
        // delta-rs retrying a commit whose answer was lost writes it again: the copy removes
        // files already gone and adds files already live, so it changes nothing.
        report.maintenance.push(Maintenance {
            version,
            kind: "retried copy",
            files_removed: 0,
            detail: format!("{operation} written again after its first answer was lost; it changes no file"),
        });
        return;
    }
    match operation.as_str() {
        "OPTIMIZE" => {
            let rows_in: Option<u64> = removed.iter().map(|(_, f)| f.as_ref().and_then(|f| f.rows)).sum();
            let rows_out: Option<u64> = added.iter().map(|f| f.rows).sum();
            let dups = info.get("auditlake.duplicates_removed").and_then(Value::as_u64).unwrap_or(0);
            match (rows_in, rows_out) {
                (Some(i), Some(o)) if i == o + dups => report.maintenance.push(Maintenance {
                    version,
                    kind: "compaction",
                    files_removed: n,
                    detail: format!(
                        "{n} files ({i} rows) rewritten into {} ({o} rows, {dups} duplicate ids dropped)",
                        added.len()
                    ),
                }),
                (i, o) => report.findings.push(finding(
                    "compaction_changed_rows",
                    Some(version),
                    None,
                    format!("a compaction took {i:?} rows and wrote {o:?}, but reports {dups} duplicates removed"),
                )),
            }
        }
        "DELETE" => {
            let cutoff = info
                .pointer("/operationParameters/predicate")
                .and_then(Value::as_str)
                .and_then(|p| p.strip_prefix(&format!("{PARTITION_COLUMN} < '")))
                .and_then(|p| p.strip_suffix('\''))
                .map(str::to_string);
            let whole_partitions_before = cutoff.as_ref().is_some_and(|cut| {
                removed.iter().all(|(_, f)| f.as_ref().and_then(|f| f.date.as_ref()).is_some_and(|d| d < cut))
                    && added.is_empty()
                    && live.values().all(|f| f.date.as_ref().is_none_or(|d| d >= cut))
            });
            if whole_partitions_before {
                let cut = cutoff.unwrap_or_default();
                report.maintenance.push(Maintenance {
                    version,
                    kind: "retention",
                    files_removed: n,
                    detail: format!("{n} files of partitions before {cut} dropped"),
                });
            } else {
                report.findings.push(finding(
                    "data_removed",
                    Some(version),
                    Some(removed[0].0.clone()),
                    format!("{n} files removed by a DELETE that is not auditlake's retention of whole partitions"),
                ));
            }
        }
        other => report.findings.push(finding(
            "data_removed",
            Some(version),
            Some(removed[0].0.clone()),
            format!(
                "{n} files removed by {} ({})",
                if other.is_empty() { "an unnamed operation" } else { other },
                commit_summary(bytes)
            ),
        )),
    }
}

/// A file as found on storage: its size and, when it was hashed, its SHA-256.
type Looked = (u64, Option<String>);

/// Each live file is on storage with its recorded size and, unless `quick`, its hash. Files are
/// read on every core at once (SHA-256 is the cost: about 150 MB/s a core here).
async fn check_live_files(
    lake: &Lake,
    live: &HashMap<String, FileInfo>,
    quick: bool,
    report: &mut VerifyReport,
) -> Result<()> {
    let store = lake.store();
    let mut paths: Vec<&String> = live.keys().collect();
    paths.sort();
    report.live_files = paths.len() as u64;
    report.files_not_covered = live.values().filter(|f| f.sha256.is_none()).count() as u64;
    let tasks: Vec<_> = paths
        .iter()
        .map(|path| {
            let hash = !quick && live[*path].sha256.is_some();
            let (store, location) = (store.clone(), lake.path(&format!("{TABLE_NAME}/{path}")));
            async move {
                if hash {
                    let hashed = evidence::hash_object(store.as_ref(), &location).await?;
                    return Ok(hashed.map(|(sha, size)| (size, Some(sha))));
                }
                match store.head(&location).await {
                    Ok(meta) => Ok(Some((meta.size, None))),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(Error::Store { path: location.to_string(), source: Box::new(e) }),
                }
            }
        })
        .collect();
    let looked: Vec<Result<Option<Looked>>> = evidence::on_every_core(tasks).await;
    for (path, looked) in paths.into_iter().zip(looked) {
        let file = &live[path];
        let shown = Some(lake.display_path(&format!("{TABLE_NAME}/{path}")));
        let Some((size, sha)) = looked? else {
            report.findings.push(finding("file_missing", None, shown, "a live data file is gone"));
            continue;
        };
        if sha.is_some() {
            report.files_hashed += 1;
            report.bytes_hashed += size;
        }
        if size != file.size {
            report.findings.push(finding(
                "file_altered",
                None,
                shown,
                format!("{size} bytes on storage, {} in the log", file.size),
            ));
        } else if let (Some(got), Some(want)) = (&sha, &file.sha256)
            && got != want
        {
            report.findings.push(finding("file_altered", None, shown, format!("SHA-256 {got}, the log says {want}")));
        }
    }
    Ok(())
}

/// Data files in the table's folders that no commit ever added.
async fn check_unreferenced(lake: &Lake, ever_added: &HashSet<String>, report: &mut VerifyReport) -> Result<()> {
    let prefix = format!("{TABLE_NAME}/");
    let root = lake.path(&prefix);
    let listed: Vec<object_store::ObjectMeta> = lake
        .store()
        .list(Some(&root))
        .try_collect()
        .await
        .map_err(|e| Error::Store { path: lake.display_path(&prefix), source: Box::new(e) })?;
    let root_text = format!("{}/", root.as_ref());
    for meta in listed {
        let full = meta.location.as_ref();
        let Some(relative) = full.strip_prefix(&root_text) else { continue };
        if relative.starts_with("_delta_log/") || !relative.ends_with(".parquet") {
            continue;
        }
        if !ever_added.contains(relative) {
            report.findings.push(finding(
                "file_injected",
                None,
                Some(lake.display_path(&format!("{prefix}{relative}"))),
                "a data file no commit ever added (injected, or left by a writer killed before its commit: `vacuum` removes those)",
            ));
        }
    }
    Ok(())
}

/// A checkpoint lists exactly the live files of its version.
async fn check_checkpoint(lake: &Lake, version: u64, live: &HashSet<String>, report: &mut VerifyReport) -> Result<()> {
    use deltalake::arrow::array::{Array, AsArray, StructArray};
    use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let relative = format!("{TABLE_NAME}/_delta_log/{version:020}.checkpoint.parquet");
    let bytes = lake.get(&relative).await?.ok_or_else(|| evidence::gone(lake, &relative))?;
    let bad =
        |reason: String| finding("checkpoint_mismatch", Some(version), Some(lake.display_path(&relative)), reason);
    let reader = match ParquetRecordBatchReaderBuilder::try_new(bytes).and_then(|b| b.build()) {
        Ok(r) => r,
        Err(e) => {
            report.findings.push(bad(format!("not a readable checkpoint: {e}")));
            return Ok(());
        }
    };
    let mut listed: HashSet<String> = HashSet::new();
    for batch in reader {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                report.findings.push(bad(format!("not a readable checkpoint: {e}")));
                return Ok(());
            }
        };
        let Some(add) = batch.column_by_name("add") else { continue };
        let add: &StructArray = add.as_struct();
        let Some(paths) = add.column_by_name("path") else { continue };
        let paths = paths.as_string::<i32>();
        for i in 0..add.len() {
            if add.is_valid(i) && paths.is_valid(i) {
                listed.insert(store_path(paths.value(i)));
            }
        }
    }
    if &listed != live {
        let extra = listed.difference(live).count();
        let missing = live.difference(&listed).count();
        report.findings.push(bad(format!(
            "the checkpoint lists {extra} file(s) the commits do not leave live and misses {missing} they do"
        )));
    }
    Ok(())
}
