//! The S3 path end to end against a real S3-protocol server on loopback (moto, started by
//! `scripts/test.sh`): ingest from a bucket prefix into a lake in a bucket, query, concurrent
//! ingests, compaction, retention, vacuum and history, with credentials never printed.

mod common;

use std::process::{Command as Std, Stdio};

use assert_cmd::Command;
use object_store::ObjectStoreExt;

use common::s3::{bucket, run};

fn auditlake(lake: &str) -> Command {
    let mut cmd = Command::cargo_bin("auditlake").unwrap();
    cmd.arg("--lake").arg(lake);
    cmd
}

fn count(lake: &str, sql: &str) -> u64 {
    let out = run(auditlake(lake).args(["query", "--format", "csv", sql]), 0);
    out.lines().nth(1).unwrap().parse().unwrap()
}

async fn upload_sample_data(bucket: &str, prefix: &str) {
    let url = url::Url::parse(&format!("s3://{bucket}/")).unwrap();
    let store = auditlake::lake::s3_store(&url).unwrap();
    let root = common::sample_data();
    for file in common::files_under(&root) {
        let key = format!("{prefix}/{}", file.strip_prefix(&root).unwrap().display());
        store.put(&object_store::path::Path::from(key), std::fs::read(&file).unwrap().into()).await.unwrap();
    }
}

#[tokio::test]
async fn s3_lake_end_to_end() {
    let bucket = bucket("e2e");
    upload_sample_data(&bucket, "raw/torq/2026/09").await;
    let lake = format!("s3://{bucket}/lake");

    // Ingest straight from the bucket prefix that Torq's template writes to.
    let m: serde_json::Value = serde_json::from_str(&run(
        auditlake(&lake).args(["ingest", "--format", "json", &format!("s3://{bucket}/raw/torq/2026/09/")]),
        3,
    ))
    .unwrap();
    let expected = common::expected_entries(&common::files_under(&common::sample_data()));
    assert_eq!(m["ingested"].as_u64().unwrap() as usize, expected.len());
    assert_eq!(m["rejected"], 7);
    assert!(m["rejected_files"][0].as_str().unwrap().starts_with(&format!("s3://{bucket}/lake/_rejected/")));
    assert_eq!(count(&lake, "SELECT count(*) FROM audit_log") as usize, expected.len());
    let by_action = common::oracle_counts(&expected, |e| vec![common::field(e, "action")]);
    assert_eq!(
        count(&lake, "SELECT count(*) FROM audit_log WHERE action = 'User login failed'"),
        by_action["User login failed"]
    );

    // Again, from local files this time: nothing new.
    let again: serde_json::Value =
        serde_json::from_str(&run(auditlake(&lake).args(["ingest", "--format", "json"]).arg(common::sample_data()), 3))
            .unwrap();
    assert_eq!(again["ingested"], 0);

    // A stream of small ingests, then compaction.
    let dir = tempfile::tempdir().unwrap();
    for i in 0..12 {
        let p = dir.path().join(format!("{i}.ndjson"));
        std::fs::write(
            &p,
            format!(r#"{{"id":"s3-{i}","timestamp":"2026-09-0{}T10:00:00Z","action":"Secret updated"}}"#, 1 + i % 3),
        )
        .unwrap();
        run(auditlake(&lake).arg("ingest").arg(&p), 0);
    }
    let total = count(&lake, "SELECT count(*) FROM audit_log");
    let c: serde_json::Value =
        serde_json::from_str(&run(auditlake(&lake).args(["compact", "--format", "json"]), 0)).unwrap();
    assert!(c["files_before"].as_u64().unwrap() > c["files_after"].as_u64().unwrap());
    assert_eq!(count(&lake, "SELECT count(*) FROM audit_log"), total);
    let stats: serde_json::Value =
        serde_json::from_str(&run(auditlake(&lake).args(["stats", "--format", "json"]), 0)).unwrap();
    assert!(stats["partitions"].as_array().unwrap().iter().all(|p| p["files"] == 1), "{stats}");

    // Retention: 400 days keeps everything; a short window (forced) drops the early September
    // partitions, whatever today is, while a reader keeps querying.
    let r: serde_json::Value =
        serde_json::from_str(&run(auditlake(&lake).args(["retention", "--keep", "400d", "--format", "json"]), 0))
            .unwrap();
    assert_eq!(r["table_version"], serde_json::Value::Null);
    let days = (chrono::Utc::now().date_naive() - chrono::NaiveDate::from_ymd_opt(2026, 9, 4).unwrap()).num_days();
    let keep_from = (chrono::Utc::now().date_naive() - chrono::Duration::days(days)).to_string();
    let kept = count(&lake, &format!("SELECT count(*) FROM audit_log WHERE date >= DATE '{keep_from}'"));
    assert!(kept < total);
    let reader = {
        let lake = lake.clone();
        std::thread::spawn(move || (0..5).map(|_| count(&lake, "SELECT count(*) FROM audit_log")).collect::<Vec<_>>())
    };
    let r: serde_json::Value = serde_json::from_str(&run(
        auditlake(&lake).args(["retention", "--keep", &format!("{days}d"), "--force", "--format", "json"]),
        0,
    ))
    .unwrap();
    assert!(!r["dropped_partitions"].as_array().unwrap().is_empty());
    let seen = reader.join().unwrap();
    assert!(seen.iter().all(|n| *n == total || *n == kept), "a reader saw {seen:?}, not {total} or {kept}");
    assert_eq!(count(&lake, "SELECT count(*) FROM audit_log"), kept);
    let total = kept;
    let v: serde_json::Value = serde_json::from_str(&run(
        auditlake(&lake).args(["vacuum", "--older-than", "0h", "--force", "--format", "json"]),
        0,
    ))
    .unwrap();
    assert!(!v["files_deleted"].as_array().unwrap().is_empty());
    assert_eq!(count(&lake, "SELECT count(*) FROM audit_log"), total);
    let history = run(auditlake(&lake).args(["history", "--format", "json"]), 0);
    assert!(history.contains("OPTIMIZE") && history.contains("WRITE"), "{history}");
}

#[test]
fn concurrent_ingests_on_s3_never_double_count() {
    let bucket = bucket("race");
    let lake = format!("s3://{bucket}/lake");
    let dir = tempfile::tempdir().unwrap();
    let event = |i: usize| {
        format!(r#"{{"id":"r{i}","timestamp":"2026-09-0{}T10:00:00Z","action":"Workflow updated"}}"#, 1 + i % 4)
    };
    // Round k holds ids 100k .. 100k+150: new ones, and 50 the previous round also had.
    let files: Vec<_> = (0..3)
        .map(|k| {
            let p = dir.path().join(format!("round{k}.ndjson"));
            std::fs::write(&p, (100 * k..100 * k + 150).map(event).collect::<Vec<_>>().join("\n")).unwrap();
            p
        })
        .collect();
    run(auditlake(&lake).arg("ingest").arg(dir.path().join("round0.ndjson")), 0); // creates the table
    for f in &files[1..] {
        // Two processes ingest the same batch at the same moment.
        let spawn = || {
            Std::new(assert_cmd::cargo::cargo_bin("auditlake"))
                .args(["--lake", &lake, "--quiet", "ingest"])
                .arg(f)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        for child in [a, b] {
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            // Either it committed, or it saw the other commit the same ids and stood down.
            assert!(out.status.success() || stderr.contains("rerun to finish"), "{stderr}");
        }
    }
    // Rerunning everything finishes whatever stood down, and adds nothing twice.
    let mut cmd = auditlake(&lake);
    cmd.args(["--quiet", "ingest"]).args(&files);
    run(&mut cmd, 0);
    assert_eq!(count(&lake, "SELECT count(*) FROM audit_log"), 350);
    assert_eq!(count(&lake, "SELECT count(DISTINCT id) FROM audit_log"), 350);
}
