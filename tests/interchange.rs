//! The table as an interchange format: an independent Delta reader (delta-rs' Python package,
//! installed by scripts/test.sh) reads what auditlake wrote, after ingests, a compaction with its
//! checkpoint, and a retention drop, and agrees with auditlake row for row.

mod common;

use std::path::Path;
use std::process::Command as Process;

use assert_cmd::Command;
use serde_json::Value;

fn python() -> String {
    std::env::var("AUDITLAKE_TEST_PYTHON")
        .expect("AUDITLAKE_TEST_PYTHON is not set: run scripts/test.sh, which installs the deltalake Python package")
}

fn auditlake(lake: &Path) -> Command {
    let mut cmd = Command::cargo_bin("auditlake").unwrap();
    cmd.env_remove("AUDITLAKE_LAKE").arg("--quiet").arg("--lake").arg(lake);
    cmd
}

fn read_with_deltalake(table: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interchange/read_delta.py");
    let out = Process::new(python()).arg(script).arg(table).output().unwrap();
    assert!(out.status.success(), "the deltalake reader failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn an_independent_delta_reader_agrees_with_auditlake() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    // One ingest per file, so partitions hold several small files for compaction to merge.
    for f in common::files_under(&common::sample_data()) {
        auditlake(&lake).arg("ingest").arg(&f).assert().code(predicates::ord::lt(4));
    }
    auditlake(&lake).arg("compact").assert().success();

    let seen = read_with_deltalake(&lake.join("audit_log"));
    let handle = auditlake::Lake::open(&lake.display().to_string()).unwrap();
    let total = common::rows(&handle, "SELECT count(*) FROM audit_log").await[0][0].parse::<u64>().unwrap();
    assert_eq!(seen["rows"], total);
    assert_eq!(total as usize, common::expected_entries(&common::files_under(&common::sample_data())).len());
    let by_action: serde_json::Map<String, Value> =
        common::counts_by(&handle, "action").await.into_iter().map(|(k, v)| (k, v.into())).collect();
    assert_eq!(seen["by_action"], Value::Object(by_action));

    // What other engines need to know: plain protocol 1/2, no table features, partitioned by
    // date, UTC microsecond timestamps and a list of strings for tags.
    assert_eq!((seen["min_reader_version"].as_i64(), seen["min_writer_version"].as_i64()), (Some(1), Some(2)));
    assert_eq!(seen["reader_features"], serde_json::json!([]));
    assert_eq!(seen["writer_features"], serde_json::json!([]));
    assert_eq!(seen["partition_columns"], serde_json::json!(["date"]));
    let columns = &seen["columns"];
    assert_eq!(columns["timestamp"], "timestamp[us, tz=UTC]");
    assert_eq!(columns["date"], "date32[day]");
    assert_eq!(columns["tags"], "list<element: string>");
    assert_eq!(columns["id"], "string");
    assert_eq!(columns.as_object().unwrap().len(), auditlake::schema::arrow_schema().fields().len());

    // After a retention drop (as of a fixed day) the reader sees exactly the remaining partitions.
    let opts = auditlake::maintain::RetentionOptions {
        keep: chrono::Duration::days(5),
        dry_run: false,
        force: true,
        today: chrono::NaiveDate::from_ymd_opt(2026, 9, 12).unwrap(),
    };
    let dropped = auditlake::maintain::retention(&handle, &opts).await.unwrap();
    assert!(!dropped.dropped_partitions.is_empty());
    let after = read_with_deltalake(&lake.join("audit_log"));
    let total = common::rows(&handle, "SELECT count(*) FROM audit_log").await[0][0].parse::<u64>().unwrap();
    assert!(total > 0 && total < seen["rows"].as_u64().unwrap());
    assert_eq!(after["rows"], total);
    let dates = common::counts_by(&handle, "date").await;
    let dates: serde_json::Map<String, Value> = dates.into_iter().map(|(k, v)| (k, v.into())).collect();
    assert_eq!(after["by_date"], Value::Object(dates));
    assert_eq!(after["version"].as_u64(), seen["version"].as_u64().map(|v| v + 1));
}
