//! Store faults, injected for real: `tests/faults/proxy.py` sits on loopback between the binary and
//! the S3 test server and answers a seeded share of requests with 503 SlowDown, 500, a reset, a
//! request that took effect but lost its answer, a truncated body, or an answer slower than the
//! client's timeout. Through it, every job either finishes or fails with a clear error (never a
//! panic), a rerun finishes it, and the lake, read directly from the server, holds exactly the
//! feed: nothing lost, nothing twice. After vacuum the table's folders hold exactly the live files.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use auditlake::Lake;

/// The proxy, stopped when dropped.
struct Proxy {
    child: Child,
    endpoint: String,
}

impl Proxy {
    fn start(seed: u64, rates: &[(&str, f64)], only: Option<&str>) -> Proxy {
        let python = std::env::var("AUDITLAKE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/faults/proxy.py");
        let mut cmd = Command::new(python);
        cmd.arg(script).args([
            "--upstream",
            &common::s3::endpoint(),
            "--seed",
            &seed.to_string(),
            "--slow-seconds",
            "3",
        ]);
        for (fault, p) in rates {
            cmd.args(["--rate", &format!("{fault}={p}")]);
        }
        if let Some(only) = only {
            cmd.args(["--only", only]);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("start the proxy");
        let mut out = child.stdout.take().unwrap();
        let (mut line, mut byte) = (String::new(), [0u8; 1]);
        while out.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
            line.push(byte[0] as char);
        }
        let port = line.strip_prefix("PORT ").unwrap_or_else(|| panic!("proxy said {line:?}"));
        Proxy { child, endpoint: format!("http://127.0.0.1:{port}") }
    }

    fn stats(&self) -> String {
        let out = Command::new("curl").args(["-fsS", &format!("{}/_faults/stats", self.endpoint)]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `auditlake` through the proxy until it succeeds (at most `tries` runs). Every failure
/// must be a clear error, never a panic. Returns the failures' messages.
fn until_done(proxy: &Proxy, lake: &str, args: &[&str], tries: usize) -> Vec<String> {
    let mut failures = Vec::new();
    for _ in 0..tries {
        let out = Command::new(assert_cmd::cargo::cargo_bin("auditlake"))
            .args(["--quiet", "--lake", lake])
            .args(args)
            .env("AWS_ENDPOINT_URL", &proxy.endpoint)
            // Past the client's timeout, a slow answer is a timeout, retried.
            .env("AWS_TIMEOUT", "2s")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!stderr.contains("panicked"), "auditlake {args:?} panicked: {stderr}");
        match out.status.code() {
            Some(0) => return failures,
            Some(1) => {
                assert!(stderr.starts_with("error: "), "not a clear error: {stderr}");
                failures.push(stderr);
            }
            other => panic!("auditlake {args:?} exited {other:?}: {}{stderr}", String::from_utf8_lossy(&out.stdout)),
        }
    }
    panic!("auditlake {args:?} did not finish in {tries} runs through the faults: {failures:#?}");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

#[test]
fn every_job_through_store_faults_finishes_on_rerun_with_exact_counts() {
    let rates = [("503", 0.04), ("500", 0.02), ("reset", 0.02), ("lost", 0.02), ("truncate", 0.02), ("slow", 0.005)];
    every_job_through(5, &rates, None);
}

/// Half the commits' answers lost after the store wrote them: a commit that happened although its
/// writer saw a failure must be recognised as the writer's own (no false conflict, no second copy
/// without evidence), so the jobs succeed and the lake verifies intact afterwards.
#[test]
fn commits_whose_answers_are_lost_are_recognised_and_sealed() {
    every_job_through(11, &[("lost", 0.5)], Some("PUT .*/_delta_log/[0-9]+[.]json"));
}

fn every_job_through(seed: u64, rates: &[(&str, f64)], only: Option<&str>) {
    let bucket = common::s3::bucket("faults"); // this process reads the server directly
    let lake_url = format!("s3://{bucket}/lake");
    let dir = tempfile::tempdir().unwrap();
    // Ten days either side of retention's cutoff (--keep 90d from today).
    let today = chrono::Utc::now().date_naive();
    let start = (today - chrono::Duration::days(95)).format("%Y-%m-%d").to_string();
    let (a, b) = (dir.path().join("a.ndjson"), dir.path().join("b.ndjson"));
    common::generate(&a, 6_000, 10, &start, 21);
    common::generate(&b, 6_000, 10, &start, 22);
    let proxy = Proxy::start(seed, rates, only);
    let lake = Lake::open(&lake_url).unwrap();
    let mut failures = Vec::new();

    // Two ingests (b overlaps nothing but is a second commit), then the first again: all dupes.
    for feed in [&a, &b, &a] {
        failures.extend(until_done(&proxy, &lake_url, &["ingest", feed.to_str().unwrap()], 8));
    }
    let expected = common::expected_entries(&[a.clone(), b.clone()]);
    runtime().block_on(common::assert_counts_match(&lake, &expected));

    failures.extend(until_done(&proxy, &lake_url, &["compact"], 8));
    runtime().block_on(common::assert_counts_match(&lake, &expected));

    failures.extend(until_done(&proxy, &lake_url, &["retention", "--keep", "90d"], 8));
    let cutoff = (today - chrono::Duration::days(90)).format("%Y-%m-%d").to_string();
    let kept: Vec<_> = expected.iter().filter(|e| common::field(e, "timestamp")[..10] >= *cutoff).cloned().collect();
    assert!(kept.len() < expected.len() && !kept.is_empty(), "retention must drop some days and keep some");
    runtime().block_on(common::assert_counts_match(&lake, &kept));

    failures.extend(until_done(&proxy, &lake_url, &["vacuum", "--older-than", "0s", "--force"], 8));
    // The table's folders hold exactly the live files: nothing a failed attempt left behind.
    runtime().block_on(async {
        use futures::TryStreamExt;
        let table = lake.existing().await.unwrap();
        let mut live: Vec<String> =
            table.snapshot().unwrap().log_data().iter().map(|f| format!("lake/audit_log/{}", f.path())).collect();
        live.sort();
        let store = auditlake::lake::s3_store(&url::Url::parse(&format!("s3://{bucket}")).unwrap()).unwrap();
        let mut data: Vec<String> = store
            .list(Some(&"lake/audit_log".into()))
            .map_ok(|m| m.location.to_string())
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .into_iter()
            .filter(|p| !p.starts_with("lake/audit_log/_delta_log/"))
            .collect();
        data.sort();
        assert_eq!(data, live, "after vacuum, data files other than the live ones");
    });

    // Reads: an answer is the right one; verify never calls a fault tampering.
    let count = kept.len().to_string();
    failures.extend(until_done(
        &proxy,
        &lake_url,
        &["query", "SELECT count(*) AS n FROM audit_log", "--format", "csv"],
        8,
    ));
    for _ in 0..3 {
        let out = Command::new(assert_cmd::cargo::cargo_bin("auditlake"))
            .args(["--quiet", "--lake", &lake_url, "query", "SELECT count(*) AS n FROM audit_log", "--format", "csv"])
            .env("AWS_ENDPOINT_URL", &proxy.endpoint)
            .env("AWS_TIMEOUT", "2s")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        if out.status.success() {
            assert_eq!(String::from_utf8_lossy(&out.stdout).lines().nth(1), Some(count.as_str()));
        } else {
            assert!(stderr.starts_with("error: "), "{stderr}");
        }
    }
    failures.extend(until_done(&proxy, &lake_url, &["verify"], 8));
    // And read straight from the server: every commit made through the faults has its evidence.
    let verified =
        Command::new(assert_cmd::cargo::cargo_bin("auditlake")).args(["--lake", &lake_url, "verify"]).output().unwrap();
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stdout));
    let stats = proxy.stats();
    eprintln!("faults injected: {stats}\nfailed runs, each rerun: {failures:#?}");
    let injected: serde_json::Value = serde_json::from_str(&stats).unwrap();
    // Each fault drawn often enough to be sure of (a rare one, like `slow`, may not come up).
    for (fault, _) in rates.iter().filter(|(_, p)| *p >= 0.02) {
        assert!(injected[*fault].as_u64().unwrap() > 0, "no {fault} was injected: {stats}");
    }
}
