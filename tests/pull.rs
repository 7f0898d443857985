//! `auditlake pull` against a real HTTP server on loopback standing in for Torq's API
//! (`tests/torq_api/server.py`): paging, tokens, time windows, and faults switched on. Counts in
//! the lake are checked against the served feed, read independently with serde_json.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use auditlake::Lake;
use common::rows;
use serde_json::Value;

const CLIENT_ID: &str = "pull-test-client";
const SECRET: &str = "pull-test-secret-0f9e8d7c";

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("auditlake")
}

/// A feed of `events` distinct entries over `days` days from 2026-10-01.
fn generate(dir: &Path, events: u64, days: u32, seed: u64) -> PathBuf {
    let path = dir.join(format!("feed-{seed}.ndjson"));
    common::generate(&path, events, days, "2026-10-01", seed);
    path
}

/// The stand-in API, stopped when dropped.
struct Api {
    child: Child,
    port: u16,
}

impl Api {
    fn start(feed: &Path, faults: &[&str]) -> Api {
        Api::start_as(feed, CLIENT_ID, SECRET, faults)
    }

    fn start_as(feed: &Path, id: &str, secret: &str, faults: &[&str]) -> Api {
        let python = std::env::var("AUDITLAKE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/torq_api/server.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg("--feed")
            .arg(feed)
            .args(["--client-id", id, "--client-secret", secret])
            .args(faults)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tests/torq_api/server.py");
        let mut line = String::new();
        let mut out = child.stdout.take().unwrap();
        let mut byte = [0u8; 1];
        while out.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
            line.push(byte[0] as char);
        }
        let port = line.strip_prefix("PORT ").unwrap_or_else(|| panic!("server said {line:?}")).parse().unwrap();
        Api { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn call(&self, method: &str, path: &str) -> Value {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(s, "{method} {path} HTTP/1.0\r\nContent-Length: 0\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let body = text.split_once("\r\n\r\n").unwrap().1;
        serde_json::from_str(body).unwrap()
    }

    fn stats(&self) -> Value {
        self.call("GET", "/_control/stats")
    }

    /// Makes the late entries visible.
    fn release(&self) {
        self.call("POST", "/_control/release");
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `auditlake --lake LAKE pull ARGS` against `api`, with credentials in the environment.
fn pull_cmd(lake: &Path, api: &Api, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.arg("--lake")
        .arg(lake)
        .arg("pull")
        .args(args)
        .env("TORQ_CLIENT_ID", CLIENT_ID)
        .env("TORQ_CLIENT_SECRET", SECRET)
        .env("TORQ_API_URL", api.url())
        .env("TORQ_AUTH_URL", api.url())
        .env_remove("TORQ_WORKSPACE")
        .env_remove("TORQ_CLIENT_SECRET_FILE");
    cmd
}

fn pull(lake: &Path, api: &Api, args: &[&str], code: i32) -> Output {
    let out = pull_cmd(lake, api, args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "pull {args:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn summary(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn lake_of(path: &Path) -> Lake {
    Lake::open(&path.display().to_string()).unwrap()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Runtime::new().unwrap().block_on(f)
}

fn feed_entries(feeds: &[&Path]) -> Vec<Value> {
    common::expected_entries(&feeds.iter().map(|p| p.to_path_buf()).collect::<Vec<_>>())
}

/// The lake holds exactly the feed's events (see `common::assert_counts_match`).
fn assert_matches(lake: &Path, expected: &[Value]) {
    block_on(common::assert_counts_match(&lake_of(lake), expected));
}

fn version(lake: &Path) -> u64 {
    block_on(async { lake_of(lake).existing().await.unwrap().version().unwrap() as u64 })
}

fn cursor(lake: &Path, workspace: &str) -> Option<i64> {
    block_on(async {
        let lake = lake_of(lake);
        let table = lake.existing().await.unwrap();
        lake.cursor(&table, &auditlake::ingest::pull::cursor_source(workspace)).await.unwrap()
    })
}

/// Every byte the lake holds and the commands printed must be free of the secret and tokens.
fn assert_no_secrets(lake: &Path, outputs: &[&Output], api: &Api) {
    let mut secrets = vec![SECRET.to_string()];
    secrets.extend(api.stats()["tokens_issued"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()));
    assert!(secrets.len() > 1, "no token was issued");
    let mut texts: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, out) in outputs.iter().enumerate() {
        texts.push((format!("stdout of run {i}"), out.stdout.clone()));
        texts.push((format!("stderr of run {i}"), out.stderr.clone()));
    }
    for file in walk(lake) {
        texts.push((file.display().to_string(), std::fs::read(&file).unwrap()));
    }
    for (name, bytes) in texts {
        for s in &secrets {
            assert!(!bytes.windows(s.len()).any(|w| w == s.as_bytes()), "{name} holds a credential");
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

#[test]
fn backfill_through_every_fault_matches_the_feed_and_a_repeat_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let feed = generate(dir.path(), 6000, 3, 11);
    let faults = [
        "--fail-every",
        "5",
        "--throttle-every",
        "7",
        "--reset-every",
        "13",
        "--slow-every",
        "9",
        "--slow-seconds",
        "0.2",
        "--repeat-boundary",
        "--token-uses",
        "8",
    ];
    let api = Api::start(&feed, &faults);
    let lake = dir.path().join("lake");
    let window = ["--since", "2026-10-01T00:00:00Z", "--until", "2026-10-04T00:00:00Z"];
    let args = [&window[..], &["--page-size", "200", "--commit-pages", "5", "--format", "json"]].concat();
    let first = pull(&lake, &api, &args, 0);
    let m = summary(&first);
    let expected = feed_entries(&[&feed]);
    assert_eq!(m["ingested"], expected.len());
    assert!(m["duplicates"].as_u64().unwrap() > 0, "repeated page boundaries are counted as duplicates");
    assert!(m["commits"].as_u64().unwrap() > 1, "a backfill commits as it goes: {m}");
    assert_eq!(m["cursor"], "2026-10-04T00:00:00Z");
    assert_matches(&lake, &expected);

    let stats = api.stats();
    for fault in ["failed", "throttled", "resets", "slow", "unauthorized"] {
        assert!(stats[fault].as_u64().unwrap() > 0, "the {fault} fault never fired: {stats}");
    }
    assert!(m["retries"].as_u64().unwrap() >= stats["failed"].as_u64().unwrap());
    assert!(m["tokens"].as_u64().unwrap() > 1, "tokens that died mid-backfill were renewed");
    assert_eq!(stats["rate_limited"], 0, "the client stays under 50 requests a second");
    assert_eq!(stats["bad_requests"], 0);
    assert!(stats["orders"]["desc"].is_null(), "pages are asked oldest first");

    let before = version(&lake);
    let again = pull(&lake, &api, &args, 0);
    assert_eq!(summary(&again)["ingested"], 0);
    assert_eq!(version(&lake), before, "a repeated pull commits nothing");
    assert_matches(&lake, &expected);
    assert_no_secrets(&lake, &[&first, &again], &api);
    // Pull's commits, cursors and all, leave the same evidence as ingest's.
    let verified = Command::new(bin()).arg("--lake").arg(&lake).args(["verify", "--quick"]).output().unwrap();
    assert_eq!(verified.status.code(), Some(0), "{}", String::from_utf8_lossy(&verified.stdout));
}

#[test]
fn late_entries_are_picked_up_by_the_next_pull() {
    let dir = tempfile::tempdir().unwrap();
    let feed = generate(dir.path(), 4000, 3, 12);
    let late_after = "2026-10-03T16:00:00Z";
    let api = Api::start(&feed, &["--late-after", late_after, "--late-every", "2"]);
    let expected = feed_entries(&[&feed]);
    let cut = chrono::DateTime::parse_from_rfc3339(late_after).unwrap();
    let tail = expected
        .iter()
        .filter(|e| chrono::DateTime::parse_from_rfc3339(e["timestamp"].as_str().unwrap()).unwrap() >= cut)
        .count();
    let hidden = tail.div_ceil(2);
    assert!(hidden > 5, "the feed's last hours hold too few entries: {tail}");

    let lake = dir.path().join("lake");
    let until = "2026-10-04T00:00:00Z";
    let first = summary(&pull(&lake, &api, &["--since", "2026-10-01", "--until", until, "--format", "json"], 0));
    assert_eq!(first["ingested"].as_u64().unwrap() as usize, expected.len() - hidden);

    api.release();
    // The next run starts at the cursor minus --overlap: 8 hours covers the late entries.
    let second = summary(&pull(&lake, &api, &["--until", until, "--overlap", "8h", "--format", "json"], 0));
    assert_eq!(second["window_start"], "2026-10-03T16:00:00Z");
    assert_eq!(second["ingested"].as_u64().unwrap() as usize, hidden);
    assert_eq!(second["duplicates"].as_u64().unwrap() as usize, tail - hidden, "the overlap is re-read, not doubled");
    assert_matches(&lake, &expected);
}

#[test]
fn a_backfill_killed_mid_way_resumes_from_its_last_commit() {
    let dir = tempfile::tempdir().unwrap();
    let feed = generate(dir.path(), 30_000, 10, 13);
    // Every page takes 100 ms: 150 pages of 200 entries, committed every 3 pages.
    let api = Api::start(&feed, &["--slow-every", "1", "--slow-seconds", "0.1"]);
    let lake = dir.path().join("lake");
    let since = "2026-10-01T00:00:00Z";
    let until = "2026-10-11T00:00:00Z";
    let args = ["--since", since, "--until", until, "--page-size", "200", "--commit-pages", "3", "--quiet"];

    let mut child = pull_cmd(&lake, &api, &args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    // Kill once the cursor has moved: a commit landed, and the window is far from done.
    let started = Instant::now();
    let mut killed_at = None;
    while started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if lake.join("audit_log/_delta_log").is_dir() && cursor_if_any(&lake).is_some() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
            killed_at = cursor_if_any(&lake);
            break;
        }
    }
    let _ = child.wait();
    let killed_at = killed_at.expect("the pull was not killed mid-way (it finished, or never committed)");
    let end_us = chrono::DateTime::parse_from_rfc3339(until).unwrap().timestamp_micros();
    assert!(killed_at < end_us, "killed after the window was done");
    // Rows committed so far are exactly those before the cursor (oldest first, committed in order).
    let expected = feed_entries(&[&feed]);
    let committed = block_on(async { rows(&lake_of(&lake), "SELECT count(*) FROM audit_log").await })[0][0].clone();
    let before_cursor = expected
        .iter()
        .filter(|e| {
            chrono::DateTime::parse_from_rfc3339(e["timestamp"].as_str().unwrap()).unwrap().timestamp_micros()
                <= killed_at
        })
        .count();
    assert_eq!(committed, before_cursor.to_string(), "the cursor covers exactly the rows committed with it");

    // The same command again starts from the cursor (minus the overlap), not from --since.
    let rerun = ["--since", since, "--until", until, "--page-size", "200", "--format", "json"];
    let m = summary(&pull(&lake, &api, &rerun, 0));
    assert_eq!(m["since_ignored"], true);
    let start = chrono::DateTime::parse_from_rfc3339(m["window_start"].as_str().unwrap()).unwrap();
    assert!(start > chrono::DateTime::parse_from_rfc3339(since).unwrap(), "resumed from the cursor: {m}");
    assert_matches(&lake, &expected);
}

fn cursor_if_any(lake: &Path) -> Option<i64> {
    block_on(async {
        let lake = lake_of(lake);
        let table = lake.load(None).await.ok()??;
        lake.cursor(&table, &auditlake::ingest::pull::cursor_source("default")).await.ok()?
    })
}

#[test]
fn follow_pulls_until_sigterm_and_finishes_the_commit_in_hand() {
    let dir = tempfile::tempdir().unwrap();
    let feed = generate(dir.path(), 3000, 2, 14);
    let api = Api::start(&feed, &["--slow-every", "1", "--slow-seconds", "0.05"]);
    let lake = dir.path().join("lake");
    let args = ["--since", "2026-10-01", "--until", "2026-10-03T00:00:00Z", "--follow", "--every", "1s"];
    let mut child =
        pull_cmd(&lake, &api, &[&args[..], &["--format", "json"]].concat()).stdout(Stdio::piped()).spawn().unwrap();
    // Two runs at least: the backfill, then a follow-up that finds nothing new.
    let started = Instant::now();
    while api.stats()["log_requests"].as_u64().unwrap() < 17 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(child.try_wait().unwrap().is_none(), "--follow exited by itself");
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let text = String::from_utf8(out.stdout).unwrap();
    let runs: Vec<Value> = serde_json::Deserializer::from_str(&text).into_iter().map(Result::unwrap).collect();
    assert!(runs.len() >= 2, "one summary a run: {text}");
    assert_eq!(text.lines().count(), runs.len(), "--follow writes one summary a line");
    assert_matches(&lake, &feed_entries(&[&feed]));
}

#[test]
fn workspaces_keep_their_own_cursors_in_one_lake() {
    let dir = tempfile::tempdir().unwrap();
    let (feed_a, feed_b) = (generate(dir.path(), 2000, 2, 21), generate(dir.path(), 1500, 3, 22));
    let (api_a, api_b) = (Api::start(&feed_a, &[]), Api::start(&feed_b, &[]));
    let lake = dir.path().join("lake");
    pull(&lake, &api_a, &["--workspace", "prod", "--since", "2026-10-01", "--until", "2026-10-02T12:00:00Z"], 0);
    pull(&lake, &api_b, &["--workspace", "emea", "--since", "2026-10-01", "--until", "2026-10-05T00:00:00Z"], 0);
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros();
    assert_eq!(cursor(&lake, "prod"), Some(at("2026-10-02T12:00:00Z")));
    assert_eq!(cursor(&lake, "emea"), Some(at("2026-10-05T00:00:00Z")));
    // prod continues from its own cursor.
    let m = summary(&pull(
        &lake,
        &api_a,
        &["--workspace", "prod", "--until", "2026-10-05T00:00:00Z", "--format", "json"],
        0,
    ));
    assert_eq!(m["window_start"], "2026-10-02T11:50:00Z");
    assert_matches(&lake, &feed_entries(&[&feed_a, &feed_b]));
}

#[test]
fn credentials_are_checked_and_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let feed = generate(dir.path(), 300, 1, 15);
    let api = Api::start(&feed, &[]);
    let lake = dir.path().join("lake");

    // A wrong secret: refused by the token service, a clear error, no secret in it.
    let out = pull_cmd(&lake, &api, &["--since", "2026-10-01"])
        .env("TORQ_CLIENT_SECRET", "wrong-secret-123")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused the client id and secret"), "{err}");
    assert!(!err.contains("wrong-secret-123") && !err.contains(SECRET), "{err}");

    // No secret at all: a usage error naming what to set.
    let out = pull_cmd(&lake, &api, &[]).env_remove("TORQ_CLIENT_SECRET").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TORQ_CLIENT_SECRET"));

    // The secret from a file (a Kubernetes secret mount ends it with a newline).
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let out = pull_cmd(&lake, &api, &["--since", "2026-10-01", "--until", "2026-10-02", "--format", "json"])
        .env_remove("TORQ_CLIENT_SECRET")
        .arg("--client-secret-file")
        .arg(&secret_file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(summary(&out)["ingested"], 300);

    // Plain http to anything but loopback is refused before any request.
    let out = pull_cmd(&lake, &api, &[]).env("TORQ_API_URL", "http://torq.example.com").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only on loopback"));
}

#[test]
fn pages_slower_than_the_request_timeout_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let feed = generate(dir.path(), 800, 1, 16);
    // Every second request answers after 3 s; the client gives up on each after 1 s and retries.
    let api = Api::start(&feed, &["--slow-every", "2", "--slow-seconds", "3"]);
    let lake = dir.path().join("lake");
    let args = ["--since", "2026-10-01", "--until", "2026-10-02", "--page-size", "100", "--request-timeout", "1s"];
    let m = summary(&pull(&lake, &api, &[&args[..], &["--format", "json"]].concat(), 0));
    assert!(m["retries"].as_u64().unwrap() > 0, "{m}");
    assert_matches(&lake, &feed_entries(&[&feed]));
}

#[test]
fn pull_into_an_s3_lake_and_verify_it() {
    let dir = tempfile::tempdir().unwrap();
    let feed = generate(dir.path(), 1500, 2, 17);
    let api = Api::start(&feed, &["--fail-every", "4"]);
    let bucket = common::s3::bucket("pull");
    let lake = format!("s3://{bucket}/lake");
    let args =
        ["--since", "2026-10-01", "--until", "2026-10-03T00:00:00Z", "--page-size", "200", "--commit-pages", "3"];
    let out = pull_cmd(Path::new(&lake), &api, &[&args[..], &["--format", "json"]].concat()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(summary(&out)["ingested"], 1500);
    let s3_lake = Lake::open(&lake).unwrap();
    block_on(common::assert_counts_match(&s3_lake, &feed_entries(&[&feed])));
    let verified = Command::new(bin()).args(["--lake", &lake, "verify"]).output().unwrap();
    assert_eq!(verified.status.code(), Some(0), "{}", String::from_utf8_lossy(&verified.stdout));
}
