//! `auditlake verify`: each tampering made for real on a lake built by ingest, compact, retention
//! and vacuum is detected and named; the untouched lake verifies clean after every job.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use assert_cmd::Command;
use serde_json::Value;

fn auditlake(lake: &Path) -> Command {
    let mut cmd = Command::cargo_bin("auditlake").unwrap();
    cmd.env_remove("AUDITLAKE_LAKE").arg("--quiet").arg("--lake").arg(lake);
    cmd
}

/// `verify --format json` (plus `extra`): the exit status and the report.
fn verify(lake: &Path, extra: &[&str]) -> (i32, Value) {
    let out = auditlake(lake).args(["verify", "--format", "json"]).args(extra).output().unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    (out.status.code().unwrap(), report)
}

fn assert_intact(lake: &Path, after: &str) {
    let (code, report) = verify(lake, &[]);
    assert_eq!(code, 0, "after {after}: {report:#}");
    assert_eq!(report["intact"], true);
}

/// The kinds of the findings, and the report, after asserting exit status 4.
fn tampered(lake: &Path, extra: &[&str]) -> (Vec<String>, Value) {
    let (code, report) = verify(lake, extra);
    assert_eq!(code, 4, "{report:#}");
    let kinds =
        report["findings"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap().to_string()).collect();
    (kinds, report)
}

/// A lake made by every job: two ingests, old partitions, a compaction (with its checkpoint),
/// retention and vacuum; checked clean after each.
fn build_lake(dir: &Path) -> PathBuf {
    let lake = dir.join("lake");
    let old = dir.join("old.ndjson");
    let recent = dir.join("recent.ndjson");
    let more = dir.join("more.ndjson");
    let feeds = [(&old, "2026-03-01", 60, 1), (&recent, "2026-10-01", 20, 2), (&more, "2026-10-01", 20, 3)];
    for (path, start, days, seed) in feeds {
        common::generate(path, 3000, days, start, seed);
    }
    auditlake(&lake).arg("ingest").arg(&old).assert().success();
    assert_intact(&lake, "ingest");
    auditlake(&lake).arg("ingest").arg(&recent).assert().success();
    // Same days again: two files a partition, for compaction to merge.
    auditlake(&lake).arg("ingest").arg(&more).assert().success();
    auditlake(&lake).arg("ingest").arg(common::sample_data()).assert().code(3);
    assert_intact(&lake, "more ingests");
    auditlake(&lake).arg("compact").assert().success();
    assert_intact(&lake, "compact");
    auditlake(&lake).args(["retention", "--keep", "150d"]).assert().success();
    assert_intact(&lake, "retention");
    auditlake(&lake).args(["vacuum", "--older-than", "0h", "--force"]).assert().success();
    let (code, report) = verify(&lake, &[]);
    assert_eq!(code, 0, "after vacuum: {report:#}");
    let kinds: Vec<&str> =
        report["maintenance"].as_array().unwrap().iter().map(|m| m["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"compaction") && kinds.contains(&"retention"), "{report:#}");
    assert_eq!(report["covered_from"], 0);
    lake
}

fn data_files(lake: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = common::files_under(&lake.join("audit_log"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet") && !p.to_string_lossy().contains("_delta_log"))
        .collect();
    out.sort();
    out
}

/// Live data files: what `verify` hashes (vacuum has removed the rest).
fn a_live_file(lake: &Path) -> PathBuf {
    data_files(lake).pop().expect("a data file")
}

fn commit(lake: &Path, version: u64) -> PathBuf {
    lake.join(format!("audit_log/_delta_log/{version:020}.json"))
}

/// Changes commit `version`'s bytes (still valid JSON, same actions); returns its new text.
fn edit_commit(lake: &Path, version: u64) -> String {
    let path = commit(lake, version);
    let text = std::fs::read_to_string(&path).unwrap().replacen("\"add\"", "\"add\" ", 1);
    std::fs::write(&path, &text).unwrap();
    text
}

fn newest_version(lake: &Path) -> u64 {
    (0..).take_while(|v| commit(lake, *v).exists()).last().unwrap()
}

#[test]
fn one_byte_changed_in_a_data_file_is_found_and_quick_checks_sizes_only() {
    let dir = tempfile::tempdir().unwrap();
    let lake = build_lake(dir.path());
    let file = a_live_file(&lake);
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&file, bytes).unwrap();
    let (kinds, report) = tampered(&lake, &[]);
    assert_eq!(kinds, ["file_altered"], "{report:#}");
    assert!(report["findings"][0]["path"].as_str().unwrap().ends_with(file.file_name().unwrap().to_str().unwrap()));
    // --quick compares sizes only: a same-size change passes it (the README says so).
    assert_eq!(verify(&lake, &["--quick"]).0, 0);
}

#[test]
fn a_file_replaced_by_a_valid_parquet_file_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let lake = build_lake(dir.path());
    let files = data_files(&lake);
    // Another valid Parquet file of the same table, under the first one's name.
    std::fs::copy(&files[1], &files[0]).unwrap();
    let (kinds, _) = tampered(&lake, &["--quick"]);
    assert_eq!(kinds, ["file_altered"]);
}

#[test]
fn a_deleted_data_file_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let lake = build_lake(dir.path());
    std::fs::remove_file(a_live_file(&lake)).unwrap();
    let (kinds, _) = tampered(&lake, &[]);
    assert_eq!(kinds, ["file_missing"]);
}

#[test]
fn a_parquet_file_added_to_a_partition_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let lake = build_lake(dir.path());
    let file = a_live_file(&lake);
    std::fs::copy(&file, file.with_file_name("part-00000-injected.snappy.parquet")).unwrap();
    let (kinds, report) = tampered(&lake, &[]);
    assert_eq!(kinds, ["file_injected"], "{report:#}");
}

#[test]
fn an_edited_commit_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let lake = build_lake(dir.path());
    // Remove one add action from the second ingest's commit.
    let path = commit(&lake, 2);
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: Vec<&str> = {
        let mut dropped = false;
        text.lines()
            .filter(|l| {
                let drop = !dropped && l.starts_with("{\"add\"");
                dropped |= drop;
                !drop
            })
            .collect()
    };
    assert!(kept.len() < text.lines().count());
    std::fs::write(&path, kept.join("\n") + "\n").unwrap();
    let (kinds, report) = tampered(&lake, &["--quick"]);
    assert!(kinds.contains(&"commit_altered".to_string()), "{report:#}");
    assert_eq!(report["findings"][0]["version"], 2);
}

#[test]
fn a_deleted_commit_and_a_truncated_log_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let lake = build_lake(dir.path());
    std::fs::remove_file(commit(&lake, 1)).unwrap();
    let (kinds, _) = tampered(&lake, &["--quick"]);
    assert!(kinds.contains(&"commit_missing".to_string()), "{kinds:?}");

    let dir = tempfile::tempdir().unwrap();
    let lake = build_lake(dir.path());
    let newest = newest_version(&lake);
    std::fs::remove_file(commit(&lake, newest)).unwrap();
    let (kinds, _) = tampered(&lake, &["--quick"]);
    assert_eq!(kinds, ["commits_truncated"]);
}

#[test]
fn a_commit_by_another_delta_writer_is_found() {
    let python = std::env::var("AUDITLAKE_TEST_PYTHON")
        .expect("AUDITLAKE_TEST_PYTHON is not set: run scripts/test.sh, which installs the deltalake Python package");
    let dir = tempfile::tempdir().unwrap();
    let lake = build_lake(dir.path());
    let script = "import sys\nfrom deltalake import DeltaTable, write_deltalake\n\
                  t = DeltaTable(sys.argv[1]).to_pyarrow_table().slice(0, 1)\n\
                  write_deltalake(sys.argv[1], t, mode='append')\n";
    let out = Process::new(python).args(["-c", script]).arg(lake.join("audit_log")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (kinds, report) = tampered(&lake, &[]);
    assert_eq!(kinds, ["commit_without_evidence"], "{report:#}");
    assert!(report["findings"][0]["detail"].as_str().unwrap().contains("WRITE"), "{report:#}");

    // auditlake's next commit chains past it at once (it waits only for its own kind's records),
    // and the foreign commit stays the one finding.
    let extra = dir.path().join("extra.ndjson");
    common::generate(&extra, 500, 2, "2026-11-01", 9);
    let started = std::time::Instant::now();
    let out = auditlake(&lake).args(["ingest", "--format", "json"]).arg(&extra).output().unwrap();
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["ingested"], 500, "a new commit to seal");
    assert!(started.elapsed() < std::time::Duration::from_secs(8), "the ingest waited for a record that never comes");
    let (kinds, _) = tampered(&lake, &[]);
    assert_eq!(kinds, ["commit_without_evidence"]);
}

#[test]
fn rewritten_evidence_breaks_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let lake = build_lake(dir.path());
    // An attacker edits commit 1 and rewrites its record's commit hash to match (no key).
    let text = edit_commit(&lake, 1);
    let record = lake.join(format!("_evidence/{:020}.json", 1));
    let mut r: Value = serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    r["commit_sha256"] = auditlake::lake::evidence::sha256_hex(text.as_bytes()).into();
    std::fs::write(&record, serde_json::to_string(&r).unwrap()).unwrap();
    let (kinds, _) = tampered(&lake, &["--quick"]);
    assert!(kinds.contains(&"evidence_altered".to_string()), "{kinds:?}");
}

#[test]
fn a_checkpoint_that_disagrees_with_the_commits_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let lake = build_lake(dir.path());
    let checkpoint = common::files_under(&lake.join("audit_log/_delta_log"))
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(".checkpoint.parquet"))
        .expect("compaction writes a checkpoint");
    std::fs::write(&checkpoint, b"not parquet").unwrap();
    let (kinds, _) = tampered(&lake, &["--quick"]);
    assert_eq!(kinds, ["checkpoint_mismatch"]);
}

#[test]
fn deleted_evidence_is_found_and_a_lake_from_before_evidence_is_covered_from_init() {
    let dir = tempfile::tempdir().unwrap();
    let lake = build_lake(dir.path());
    // Every auditlake commit is marked: deleting the records does not make a lake look old.
    std::fs::remove_dir_all(lake.join("_evidence")).unwrap();
    let (kinds, _) = tampered(&lake, &["--quick"]);
    assert_eq!(kinds.len() as u64, newest_version(&lake) + 1, "{kinds:?}");
    assert!(kinds.iter().all(|k| k == "evidence_missing"), "{kinds:?}");

    // A table written by something else first (here the deltalake package, with auditlake's
    // schema): `--init` covers it from its newest version, and auditlake's commits carry on.
    let python = std::env::var("AUDITLAKE_TEST_PYTHON")
        .expect("AUDITLAKE_TEST_PYTHON is not set: run scripts/test.sh, which installs the deltalake Python package");
    let old = dir.path().join("old-lake");
    let script = "import sys\nfrom deltalake import DeltaTable, write_deltalake\n\
                  t = DeltaTable(sys.argv[1]).to_pyarrow_table()\n\
                  write_deltalake(sys.argv[2], t, partition_by=['date'])\n";
    let out = Process::new(python)
        .args(["-c", script])
        .arg(lake.join("audit_log"))
        .arg(old.join("audit_log"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (code, report) = verify(&old, &["--init"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["covered_from"], 0);
    assert_eq!(report["files_not_covered"], report["live_files"]);
    auditlake(&old).arg("ingest").arg(common::sample_data()).assert().code(3);
    assert_intact(&old, "an ingest into an initialised lake");
}

#[test]
fn with_a_signing_key_evidence_rewritten_without_it_is_forged() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("signing.pem");
    let out = auditlake(dir.path()).args(["verify", "--new-key"]).arg(&key).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let public = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(public.len(), 64);

    let lake = dir.path().join("lake");
    for f in common::files_under(&common::sample_data()).iter().take(3) {
        auditlake(&lake).env("AUDITLAKE_SIGNING_KEY", &key).arg("ingest").arg(f).assert().code(predicates::ord::lt(4));
    }
    let (code, report) = verify(&lake, &["--public-key", &public]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["signatures_checked"], true);

    // Without the key, an attacker edits commit 1 and rewrites every record from there so the
    // chain is consistent again: only the signatures give it away.
    edit_commit(&lake, 1);
    let mut previous: Option<String> = None;
    for v in 0..=newest_version(&lake) {
        let record_path = lake.join(format!("_evidence/{v:020}.json"));
        let mut r: Value = serde_json::from_str(&std::fs::read_to_string(&record_path).unwrap()).unwrap();
        let sha = auditlake::lake::evidence::sha256_hex(&std::fs::read(commit(&lake, v)).unwrap());
        let chain = auditlake::lake::evidence::chain(previous.as_deref(), v, &sha);
        r["commit_sha256"] = sha.into();
        r["chain"] = chain.clone().into();
        std::fs::write(&record_path, serde_json::to_string(&r).unwrap()).unwrap();
        previous = Some(chain);
    }
    assert_eq!(verify(&lake, &["--quick"]).0, 0, "without the key the rewrite is consistent");
    let (kinds, _) = tampered(&lake, &["--quick", "--public-key", &public]);
    assert!(kinds.iter().all(|k| k == "evidence_forged") && !kinds.is_empty(), "{kinds:?}");

    // A lake written without the key fails a check that requires signatures.
    let unsigned = dir.path().join("unsigned");
    auditlake(&unsigned).arg("ingest").arg(common::sample_data()).assert().code(3);
    let (kinds, _) = tampered(&unsigned, &["--public-key", &public]);
    assert!(kinds.iter().all(|k| k == "evidence_unsigned") && !kinds.is_empty(), "{kinds:?}");
}

#[test]
fn a_truncation_that_also_removes_its_evidence_is_found_only_with_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let copy = dir.path().join("locked-bucket");
    for f in common::files_under(&common::sample_data()).iter().take(4) {
        auditlake(&lake).arg("--evidence-url").arg(&copy).arg("ingest").arg(f).assert().code(predicates::ord::lt(4));
    }
    assert_eq!(verify(&lake, &["--evidence-url", copy.to_str().unwrap()]).0, 0);
    // The newest commit and its record both go: the lake alone looks intact.
    let newest = newest_version(&lake);
    std::fs::remove_file(commit(&lake, newest)).unwrap();
    std::fs::remove_file(lake.join(format!("_evidence/{newest:020}.json"))).unwrap();
    // The lake alone shows only the commit's files left behind, not that a commit is gone (and
    // nothing at all once those are deleted too: the README says so).
    let (kinds, _) = tampered(&lake, &[]);
    assert!(kinds.iter().all(|k| k == "file_injected"), "{kinds:?}");
    let (kinds, _) = tampered(&lake, &["--evidence-url", copy.to_str().unwrap()]);
    assert!(kinds.contains(&"commits_truncated".to_string()), "{kinds:?}");
}

#[tokio::test]
async fn tampering_on_the_s3_test_server_is_found() {
    use object_store::ObjectStoreExt;
    let bucket = common::s3::bucket("verify");
    let lake = format!("s3://{bucket}/lake");
    let cmd = |args: &[&str]| {
        let mut c = Command::cargo_bin("auditlake").unwrap();
        c.arg("--lake").arg(&lake).args(args);
        c
    };
    common::s3::run(cmd(&["ingest"]).arg(common::sample_data()), 3);
    common::s3::run(&mut cmd(&["verify"]), 0);

    let store = auditlake::lake::s3_store(&url::Url::parse(&format!("s3://{bucket}/")).unwrap()).unwrap();
    let files: Vec<object_store::ObjectMeta> = {
        use futures::TryStreamExt;
        store.list(Some(&object_store::path::Path::from("lake/audit_log"))).try_collect().await.unwrap()
    };
    let file = files
        .iter()
        .find(|m| m.location.as_ref().ends_with(".parquet") && !m.location.as_ref().contains("_delta_log"))
        .unwrap();
    let mut bytes = store.get(&file.location).await.unwrap().bytes().await.unwrap().to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    store.put(&file.location, bytes.into()).await.unwrap();
    let out = common::s3::run(&mut cmd(&["verify", "--format", "json"]), 4);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["findings"][0]["kind"], "file_altered", "{report:#}");
}
