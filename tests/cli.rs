//! The binary end to end: what a person types, what they see, and the exit status.

mod common;

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::Path;

fn auditlake(lake: &Path) -> Command {
    let mut cmd = Command::cargo_bin("auditlake").unwrap();
    cmd.arg("--lake").arg(lake).env_remove("AUDITLAKE_LAKE").env_remove("AUDITLAKE_QUERIES");
    cmd
}

/// A lake with sample-data/ ingested.
fn sample_lake() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    auditlake(&dir.path().join("lake")).arg("ingest").arg(common::sample_data()).assert().code(3);
    dir
}

fn stdout(cmd: &mut Command) -> String {
    let out = cmd.assert().success().get_output().stdout.clone();
    String::from_utf8(out).unwrap()
}

#[test]
fn ingest_summarises_and_exits_3_on_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let out = auditlake(&lake)
        .args(["ingest", "--format", "json"])
        .arg(common::sample_data())
        .assert()
        .code(3)
        .get_output()
        .stdout
        .clone();
    let m: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(m["rejected"], 7);
    assert_eq!(m["table_version"], 1);
    assert!(m["rejected_files"][0].as_str().unwrap().contains("_rejected/ingest-"));
    assert!(m["rows_per_sec"].as_f64().unwrap() > 0.0);

    // Only good input: exit 0, a text summary on stderr, nothing on stdout.
    auditlake(&lake)
        .arg("ingest")
        .arg(common::sample_data().join("cases.ndjson"))
        .assert()
        .success()
        .stdout("")
        .stderr(predicate::str::contains("ingested 0 of").and(predicate::str::contains("nothing new to commit")));
}

#[test]
fn ingest_reads_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    auditlake(&lake)
        .args(["ingest", "-"])
        .write_stdin("{\"id\":\"s1\",\"timestamp\":\"2026-09-01T00:00:00Z\",\"action\":\"Runner created\"}\n")
        .assert()
        .success()
        .stderr(predicate::str::contains("ingested 1 of 1 records from 1 input"));
    let out = stdout(auditlake(&lake).args(["query", "--format", "csv", "SELECT id, source FROM audit_log"]));
    assert_eq!(out, "id,source\ns1,<stdin>:1\n");
}

#[test]
fn missing_input_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    auditlake(&dir.path().join("lake"))
        .args(["ingest", "/no/such/batch.json"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("error: ingest failed: cannot read input '/no/such/batch.json'"));
}

#[test]
fn named_queries_snapshot() {
    let dir = sample_lake();
    let lake = dir.path().join("lake");
    for name in ["by_action", "by_family", "by_actor_type", "by_scenario", "by_tag", "by_day"] {
        let out = stdout(auditlake(&lake).args(["query", "--name", name, "--format", "csv"]));
        insta::assert_snapshot!(name, out);
    }
}

#[test]
fn query_formats() {
    let dir = sample_lake();
    let lake = dir.path().join("lake");
    let sql = "SELECT action, count(*) AS n FROM audit_log WHERE action LIKE 'Secret%' GROUP BY action ORDER BY action";
    insta::assert_snapshot!("format_table", stdout(auditlake(&lake).args(["query", sql])));
    insta::assert_snapshot!("format_csv", stdout(auditlake(&lake).args(["query", "--format", "csv", sql])));
    let json: serde_json::Value =
        serde_json::from_str(&stdout(auditlake(&lake).args(["query", "--format", "json", sql]))).unwrap();
    assert!(json.is_array());
    assert_eq!(json[0]["action"], "Secret created");
    let nd = stdout(auditlake(&lake).args(["query", "--format", "ndjson", sql]));
    assert_eq!(nd.lines().count(), json.as_array().unwrap().len());
    let empty = stdout(auditlake(&lake).args(["query", "--format", "json", "SELECT * FROM audit_log WHERE false"]));
    assert_eq!(empty.trim(), "[]");
    let pq = dir.path().join("out.parquet");
    auditlake(&lake).args(["query", "--format", "parquet", "--out"]).arg(&pq).arg(sql).assert().success();
    assert!(std::fs::read(&pq).unwrap().starts_with(b"PAR1"));
    auditlake(&lake)
        .args(["query", "--format", "parquet", sql])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("needs --out"));
}

#[test]
fn writes_through_sql_are_refused() {
    let dir = sample_lake();
    let lake = dir.path().join("lake");
    for sql in
        ["DROP TABLE audit_log", "INSERT INTO audit_log (id) VALUES ('x')", "COPY (SELECT 1) TO '/tmp/auditlake-x.csv'"]
    {
        auditlake(&lake).args(["query", sql]).assert().code(1).stderr(predicate::str::contains("read-only"));
    }
    let n = stdout(auditlake(&lake).args(["query", "--format", "csv", "SELECT count(*) AS n FROM audit_log"]));
    assert_ne!(n, "n\n0\n");
}

#[test]
fn datafusion_settings_come_from_the_environment() {
    let dir = sample_lake();
    let lake = dir.path().join("lake");
    let sql = "SELECT value FROM information_schema.df_settings WHERE name = 'datafusion.execution.batch_size'";
    let set =
        stdout(auditlake(&lake).env("DATAFUSION_EXECUTION_BATCH_SIZE", "1234").args(["query", "--format", "csv", sql]));
    assert_eq!(set, "value\n1234\n");
    auditlake(&lake)
        .env("DATAFUSION_EXECUTION_BATCH_SIZE", "lots")
        .args(["query", "SELECT 1"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("DATAFUSION_EXECUTION_BATCH_SIZE=lots"));
}

#[test]
fn since_until_window_and_params() {
    let dir = sample_lake();
    let lake = dir.path().join("lake");
    let out = stdout(auditlake(&lake).args([
        "query",
        "--name",
        "by_day",
        "--format",
        "csv",
        "--since",
        "2026-09-04",
        "--until",
        "2026-09-05",
    ]));
    let days: Vec<&str> = out.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(days, vec!["2026-09-04", "2026-09-05"]);
    let out = stdout(auditlake(&lake).args([
        "query",
        "--name",
        "actor_timeline",
        "--param",
        "email=NOA.KATZ@acme.example",
        "--format",
        "csv",
    ]));
    assert!(out.lines().count() > 6, "{out}");
    auditlake(&lake)
        .args(["query", "--name", "actor_timeline"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("needs --param email=VALUE"));
    auditlake(&lake)
        .args(["query", "--name", "by_action", "--since", "40x"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("invalid duration '40x'"));
}

#[test]
fn list_and_user_queries() {
    let dir = sample_lake();
    let lake = dir.path().join("lake");
    let qdir = dir.path().join("q");
    std::fs::create_dir(&qdir).unwrap();
    std::fs::write(
        qdir.join("secrets_only.sql"),
        "-- Secret events.\nSELECT count(*) AS n FROM audit_log WHERE action LIKE 'Secret %'",
    )
    .unwrap();
    let list = stdout(auditlake(&lake).args(["query", "--list", "--queries"]).arg(&qdir));
    assert!(
        list.contains("by_action") && list.contains("secrets_only") && list.contains("[--param email=...]"),
        "{list}"
    );
    let out =
        stdout(auditlake(&lake).args(["query", "--format", "csv", "--name", "secrets_only", "--queries"]).arg(&qdir));
    assert_eq!(out, "n\n4\n");
}

#[test]
fn search_filters() {
    let dir = sample_lake();
    let lake = dir.path().join("lake");
    let out = stdout(auditlake(&lake).args(["search", "--action", "user login failed", "--format", "csv"]));
    assert_eq!(out.lines().count(), 1 + 7, "{out}");
    let out = stdout(auditlake(&lake).args(["search", "--tag", "phishing", "--format", "ndjson"]));
    assert!(out.lines().all(|l| l.contains("phishing")));
    assert!(out.lines().count() > 0);
    let out = stdout(auditlake(&lake).args(["search", "--actor-type", "none", "--format", "csv", "--limit", "0"]));
    assert!(out.lines().skip(1).all(|l| l.contains("Socrates")), "{out}");
    let out = stdout(auditlake(&lake).args([
        "search",
        "--scenario",
        "case_created",
        "--email",
        "socrates@torq.io",
        "--format",
        "csv",
    ]));
    assert!(out.lines().skip(1).all(|l| l.contains("CASE_CREATED")), "{out}");
}

#[test]
fn schema_and_stats() {
    let dir = sample_lake();
    let lake = dir.path().join("lake");
    insta::assert_snapshot!("schema", stdout(auditlake(&lake).arg("schema")));
    let stats: serde_json::Value =
        serde_json::from_str(&stdout(auditlake(&lake).args(["stats", "--format", "json"]))).unwrap();
    assert_eq!(stats["version"], 1);
    let rows = stats["rows"].as_u64().unwrap();
    let parts: u64 = stats["partitions"].as_array().unwrap().iter().map(|p| p["rows"].as_u64().unwrap()).sum();
    assert_eq!(rows, parts);
    let counted = stdout(auditlake(&lake).args(["query", "--format", "csv", "SELECT count(*) AS n FROM audit_log"]));
    assert_eq!(counted, format!("n\n{rows}\n"));
    let empty = tempfile::tempdir().unwrap();
    auditlake(&empty.path().join("none"))
        .arg("stats")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("run `auditlake ingest` first"));
}

#[test]
fn generator_feeds_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("feed.json.gz");
    let lake = dir.path().join("lake");
    let out = Command::cargo_bin("auditlake")
        .unwrap()
        .args(["generate", "--events", "3000", "--days", "5", "--duplicates", "0.1", "--format", "pages"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&feed).unwrap(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &out.stdout).unwrap();
    gz.finish().unwrap();
    let m: serde_json::Value = serde_json::from_slice(
        &auditlake(&lake).args(["ingest", "--format", "json"]).arg(&feed).assert().success().get_output().stdout,
    )
    .unwrap();
    assert_eq!(m["ingested"], 3000);
    assert_eq!(m["partitions"].as_array().unwrap().len(), 5);
}

#[test]
fn help_teaches() {
    let dir = tempfile::tempdir().unwrap();
    auditlake(dir.path()).arg("--help").assert().success().stdout(predicate::str::contains("Exit status"));
    auditlake(dir.path()).args(["ingest", "--help"]).assert().success().stdout(predicate::str::contains("_rejected"));
    auditlake(dir.path()).args(["query", "--help"]).assert().success().stdout(predicate::str::contains("--since"));
    auditlake(dir.path()).args(["query"]).assert().code(2);
}

#[test]
fn errors_are_said_once_and_flag_mistakes_exit_2() {
    let dir = sample_lake();
    let lake = dir.path().join("lake");
    // A SQL typo: DataFusion's message once, not once per layer of the error chain (issue 20).
    let out = auditlake(&lake).args(["query", "SELECT actoin FROM audit_log"]).assert().code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert_eq!(stderr.matches("No field named actoin").count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: query failed: "), "{stderr}");
    // Mistakes in flags found after parsing are usage errors, like clap's own (issue 13).
    auditlake(&lake)
        .args(["query", "--param", "email=x", "SELECT 1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--param applies to named queries"));
    auditlake(&lake)
        .args(["query", "--as-of-version", "999", "SELECT 1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("has no version 999"));
    // Out-of-range values are errors, not panics (issue 19).
    auditlake(&lake)
        .args(["query", "--since", "100000000w", "SELECT 1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("out of range"));
    auditlake(&lake).args(["retention", "--keep", "99999999d", "--dry-run"]).assert().success();
    let dotted = dir.path().join("x").join("..").join("lake");
    auditlake(&dotted)
        .args(["query", "--format", "csv", "SELECT count(*) > 0 AS some FROM audit_log"])
        .assert()
        .success();
}
