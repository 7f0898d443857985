//! The same SQL through a Ballista cluster as locally. A scheduler and an executor start inside
//! this test process, on loopback; the lake lives on the S3-protocol test server; the CLI runs
//! as a real process with `--cluster`. Every named query, a search, `SELECT *` and a whole report
//! must agree with the local answers, also after a compaction that leaves replaced files in
//! place (a cluster that read them would count those rows twice).

#![cfg(feature = "cluster")]

mod common;

use assert_cmd::Command;
use common::s3::bucket;

fn auditlake(lake: &str) -> Command {
    let mut cmd = Command::cargo_bin("auditlake").unwrap();
    cmd.arg("--lake").arg(lake).env("SOURCE_DATE_EPOCH", "1790000000");
    cmd
}

fn run(cmd: &mut Command) -> String {
    common::s3::run(cmd, 0)
}

/// Starts the cluster on its own runtime thread (it lives until the test process ends), with the
/// binary's thread stacks: with the default 2 MiB, Ballista's recursive planning overflowed in
/// the dev profile.
fn start_cluster() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_stack_size(auditlake::engine::THREAD_STACK_BYTES)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let addr = auditlake::engine::cluster::start_standalone(2, auditlake::engine::session_config().unwrap())
                .await
                .unwrap();
            tx.send(format!("df://localhost:{}", addr.port())).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}

/// CSV output as (header, sorted rows): engines may order ties differently.
fn rows(csv: &str) -> (String, Vec<String>) {
    let mut lines = csv.lines().map(str::to_string);
    let header = lines.next().unwrap_or_default();
    let mut rest: Vec<String> = lines.collect();
    rest.sort();
    (header, rest)
}

/// Runs `args` locally and on the cluster and checks both give the same rows.
fn agree(lake: &str, cluster: &str, args: &[&str]) -> (String, Vec<String>) {
    let local = rows(&run(auditlake(lake).args(args)));
    let remote = rows(&run(auditlake(lake).args(args).args(["--cluster", cluster])));
    assert_eq!(local, remote, "{args:?} differs on the cluster");
    local
}

#[test]
fn named_queries_search_and_report_agree_on_a_cluster() {
    let bucket = bucket("cluster");
    let lake = format!("s3://{bucket}/lake");
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("feed.ndjson");
    run(auditlake(&lake).args(["generate", "--events", "6000", "--days", "6", "--seed", "7", "--out"]).arg(&feed));
    // Two overlapping ingests give each day two files; then the sample data's odd shapes.
    let text = std::fs::read_to_string(&feed).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let first = dir.path().join("first.ndjson");
    std::fs::write(&first, lines[..lines.len() * 2 / 3].join("\n")).unwrap();
    run(auditlake(&lake).args(["--quiet", "ingest"]).arg(&first));
    run(auditlake(&lake).args(["--quiet", "ingest"]).arg(&feed));
    auditlake(&lake).args(["--quiet", "ingest"]).arg(common::sample_data()).assert().code(3);

    let cluster = start_cluster();
    let check_all = |stage: &str| {
        let (_, n) =
            agree(&lake, &cluster, &["query", "--format", "csv", "SELECT count(*), count(DISTINCT id) FROM audit_log"]);
        let counts: Vec<u64> = n[0].split(',').map(|v| v.parse().unwrap()).collect();
        assert_eq!(counts[0], counts[1], "{stage}: an event counted twice");
        for (name, q) in auditlake::query::named::catalog(None).unwrap() {
            let mut args = vec!["query".to_string(), "--format".into(), "csv".into(), "--name".into(), name.clone()];
            for p in &q.params {
                let value = match p.as_str() {
                    "email" => "dana@acme.example",
                    "resource" => "wf-1",
                    other => panic!("no test value for --param {other}"),
                };
                args.extend(["--param".into(), format!("{p}={value}")]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (header, body) = agree(&lake, &cluster, &args);
            assert!(!header.is_empty(), "{stage}: {name} returned no header");
            if q.params.is_empty() {
                assert!(!body.is_empty(), "{stage}: {name} returned no rows, so the comparison proves nothing");
            }
        }
        agree(&lake, &cluster, &["query", "--format", "csv", "SELECT * FROM audit_log ORDER BY id LIMIT 50"]);
        agree(&lake, &cluster, &["query", "--format", "csv", "--since", "2026-09-02", "--name", "by_day"]);
        agree(&lake, &cluster, &["search", "--format", "csv", "--action", "User login failed", "--limit", "0"]);
        counts[0]
    };
    let before = check_all("before compaction");

    run(auditlake(&lake).args(["--quiet", "compact"]));
    assert_eq!(check_all("after compaction"), before);

    // A filter on `date` prunes whole days before the plan reaches the cluster.
    let plan = run(auditlake(&lake).args([
        "query",
        "--format",
        "csv",
        "EXPLAIN SELECT count(*) FROM audit_log WHERE date = DATE '2026-10-02'",
        "--cluster",
        &cluster,
    ]));
    let days: std::collections::BTreeSet<&str> = plan.match_indices("date=").map(|(i, _)| &plan[i..i + 15]).collect();
    assert_eq!(days.into_iter().collect::<Vec<_>>(), ["date=2026-10-02"], "{plan}");

    // A whole report, every section, byte for byte.
    let report = ["report", "--from", "2026-08-01", "--to", "2026-12-31", "--format", "json", "--tz", "Europe/Berlin"];
    let local = run(auditlake(&lake).args(report));
    let remote = run(auditlake(&lake).args(report).args(["--cluster", &cluster]));
    assert!(local.contains("\"sections\""), "{local}");
    assert_eq!(local, remote, "the report differs on the cluster");
}

#[test]
fn an_unreachable_scheduler_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake = lake.to_str().unwrap();
    run(auditlake(lake).args(["--quiet", "ingest"]).arg(common::sample_data().join("cases.ndjson")));
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = auditlake(lake)
        .args(["query", "--name", "by_action", "--cluster", &format!("df://127.0.0.1:{port}")])
        .timeout(std::time::Duration::from_secs(120))
        .assert()
        .failure()
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!("cannot reach the Ballista scheduler at df://127.0.0.1:{port}: Connection refused");
    assert!(stderr.contains(&expected), "the error should name the scheduler and the reason: {stderr}");

    let out = auditlake(lake).args(["query", "--name", "by_action", "--cluster", "http://x:1"]).assert().failure();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("df://HOST:PORT"), "{stderr}");
}
