//! `auditlake serve` with real PostgreSQL clients: psql (Debian's postgresql-client) and psycopg
//! (`tests/serve/client.py`). The named queries give the CLI's rows; passwords are checked by
//! SCRAM; TLS is required when configured; writes are refused and the lake stays byte for byte
//! the same; 20 clients see only committed counts while ingest and compact commit; an abusive
//! query fails alone; SIGTERM stops the server within its grace period.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("auditlake")
}

fn run(lake: &Path, args: &[&str]) -> Output {
    let out = Command::new(bin()).arg("--lake").arg(lake).args(args).output().unwrap();
    assert!(out.status.success(), "auditlake {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

const USER: &str = "analyst";
const PASSWORD: &str = "correct horse battery staple";

/// A lake of a generated feed, and a users file with `analyst` (plain) and `auditor` (hashed).
fn lake_with_users(dir: &Path, events: u64) -> (PathBuf, PathBuf) {
    let feed = dir.join("feed.ndjson");
    common::generate(&feed, events, 10, "2026-09-01", 7);
    let lake = dir.join("lake");
    run(&lake, &["ingest", feed.to_str().unwrap()]);
    let hashed = Command::new(bin())
        .args(["serve", "--hash-password"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"auditor's password\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(hashed.status.success());
    let hashed = String::from_utf8(hashed.stdout).unwrap();
    assert!(hashed.starts_with("scram-sha-256:4096:") && !hashed.contains("auditor's"), "{hashed}");
    let users = dir.join("users");
    std::fs::write(&users, format!("# who may connect\n{USER}:{PASSWORD}\nauditor:{}", hashed.trim())).unwrap();
    (lake, users)
}

/// A running `auditlake serve`, killed when dropped.
struct Served {
    child: Child,
    port: u16,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Served {
    fn start(lake: &Path, users: &Path, extra: &[&str]) -> Served {
        let mut child = Command::new(bin())
            .arg("--lake")
            .arg(lake)
            .args(["serve", "--listen", "127.0.0.1:0", "--users"])
            .arg(users)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = BufReader::new(child.stderr.take().unwrap());
        let kept = stderr.clone();
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                if let Some(port) = line.split(" on 127.0.0.1:").nth(1).and_then(|r| r.split(' ').next()) {
                    let _ = tx.send(port.parse::<u16>().unwrap());
                }
                kept.lock().unwrap().push(line);
            }
        });
        let port = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| {
            panic!("serve did not start: {:?}", stderr.lock().unwrap());
        });
        Served { child, port, stderr }
    }

    fn dsn(&self, user: &str, password: &str, sslmode: &str) -> String {
        let password =
            if password.is_empty() { String::new() } else { format!(" password='{}'", password.replace('\'', "\\'")) };
        format!(
            "host=127.0.0.1 port={} user={user}{password} dbname=auditlake sslmode={sslmode} connect_timeout=20",
            self.port
        )
    }

    /// psql with `-At`: unaligned rows, no headers.
    fn psql_as(&self, user: &str, password: &str, sslmode: &str, sql: &str) -> Output {
        Command::new("psql")
            .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql, &self.dsn(user, "", sslmode)])
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "20")
            .output()
            .expect("psql (postgresql-client) is installed by scripts/test.sh")
    }

    /// Several statements, one `-c` each, in one session.
    fn psql_session(&self, statements: &[&str]) -> Output {
        let mut cmd = Command::new("psql");
        cmd.args(["-X", "-At", "-v", "ON_ERROR_STOP=1"]);
        for s in statements {
            cmd.args(["-c", s]);
        }
        cmd.arg(self.dsn(USER, PASSWORD, "disable")).output().unwrap()
    }

    fn psql(&self, sql: &str) -> String {
        let out = self.psql_as(USER, PASSWORD, "disable", sql);
        assert!(out.status.success(), "psql -c {sql:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Sends SIGTERM and waits for the exit, at most `limit`.
    fn terminate(mut self, limit: Duration) -> (std::process::ExitStatus, Duration, Vec<String>) {
        let started = Instant::now();
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                return (status, started.elapsed(), self.stderr.lock().unwrap().clone());
            }
            assert!(started.elapsed() < limit, "serve still running {limit:?} after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python(args: &[&str]) -> Output {
    let python = std::env::var("AUDITLAKE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/serve/client.py");
    Command::new(python).arg(script).args(args).output().unwrap()
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn named_queries_through_psql_and_psycopg_give_the_clis_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (lake, users) = lake_with_users(dir.path(), 4000);
    let served = Served::start(&lake, &users, &[]);

    assert_eq!(served.psql("SELECT count(*) FROM audit_log").trim(), "4000");
    // The same through a view of a named query, and a SCRAM login with a hashed password.
    let by_action = served.psql_as("auditor", "auditor's password", "disable", "SELECT sum(events) FROM by_action");
    assert!(by_action.status.success(), "{}", String::from_utf8_lossy(&by_action.stderr));
    assert_eq!(String::from_utf8_lossy(&by_action.stdout).trim(), "4000");
    // What BI tools probe first.
    let tables =
        served.psql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1");
    assert!(tables.lines().any(|t| t == "audit_log") && tables.lines().any(|t| t == "by_action"), "{tables}");
    let version = served.psql("SELECT version()");
    assert!(!version.trim().is_empty());
    let catalog = served.psql("SELECT count(*) FROM pg_catalog.pg_class WHERE relname = 'audit_log'");
    assert_eq!(catalog.trim(), "1");

    // Every named query, compared with `auditlake query --name` row for row; the two with
    // parameters are bound over the extended protocol.
    let email = served.psql("SELECT email FROM audit_log WHERE email IS NOT NULL LIMIT 1");
    let resource = served.psql("SELECT resource_id FROM audit_log WHERE resource_id IS NOT NULL LIMIT 1");
    let mut specs: Vec<String> = [
        "by_action",
        "by_actor",
        "by_actor_type",
        "by_tag",
        "by_scenario",
        "by_day",
        "by_workspace",
        "by_family",
        "failed_logins",
        "privileged_changes",
        "credential_changes",
        "api_key_activity",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    specs.push(format!("actor_timeline:email={}", email.trim()));
    specs.push(format!("resource_history:resource={}", resource.trim()));
    let queries = Path::new(env!("CARGO_MANIFEST_DIR")).join("queries");
    let dsn = served.dsn(USER, PASSWORD, "disable");
    let mut args = vec!["compare", &dsn, bin().to_str().unwrap(), lake.to_str().unwrap(), queries.to_str().unwrap()]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    args.extend(specs);
    let out = python(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let report = json_of(&out);
    assert_eq!(report["failures"], serde_json::json!([]), "{report:#}");
    assert_eq!(report["compared"], 14);
}

#[test]
fn wrong_credentials_plain_clients_of_a_tls_server_and_open_listening_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (lake, users) = lake_with_users(dir.path(), 200);
    let served = Served::start(&lake, &users, &[]);
    for (user, password) in [(USER, "wrong"), ("nobody", PASSWORD), ("auditor", PASSWORD)] {
        let out = served.psql_as(user, password, "disable", "SELECT 1");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{user} logged in with {password:?}");
        assert!(err.to_lowercase().contains("password authentication failed"), "{user}: {err}");
    }
    drop(served);

    // TLS: a self-signed certificate made by openssl.
    let (cert, key) = (dir.path().join("server.crt"), dir.path().join("server.key"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let tls = Served::start(&lake, &users, &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    let secure = tls.psql_as(USER, PASSWORD, "require", "SELECT count(*) FROM audit_log");
    assert!(secure.status.success(), "TLS login failed: {}", String::from_utf8_lossy(&secure.stderr));
    assert_eq!(String::from_utf8_lossy(&secure.stdout).trim(), "200");
    let plain = tls.psql_as(USER, PASSWORD, "disable", "SELECT 1");
    assert!(!plain.status.success());
    assert!(
        String::from_utf8_lossy(&plain.stderr).contains("requires TLS"),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    drop(tls);

    // Off loopback: TLS, or --insecure said out loud.
    let open = Command::new(bin())
        .arg("--lake")
        .arg(&lake)
        .args(["serve", "--listen", "0.0.0.0:0", "--users"])
        .arg(&users)
        .output()
        .unwrap();
    assert_eq!(open.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&open.stderr).contains("without TLS"), "{}", String::from_utf8_lossy(&open.stderr));
    // A bad certificate is an error, never a silent plain-text server.
    let bad = Command::new(bin())
        .arg("--lake")
        .arg(&lake)
        .args(["serve", "--listen", "127.0.0.1:0", "--users"])
        .arg(&users)
        .args(["--tls-cert"])
        .arg(&users)
        .arg("--tls-key")
        .arg(&key)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", String::from_utf8_lossy(&bad.stderr));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("no PEM certificate"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    // A users file with a mistake names its line.
    std::fs::write(dir.path().join("bad-users"), "analyst:pw\nauditor\n").unwrap();
    let out = Command::new(bin())
        .arg("--lake")
        .arg(&lake)
        .args(["serve", "--users"])
        .arg(dir.path().join("bad-users"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad-users:2:"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Every file of the lake with its size and modification time.
fn lake_files(lake: &Path) -> BTreeMap<PathBuf, (u64, std::time::SystemTime)> {
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, (u64, std::time::SystemTime)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                walk(&e.path(), out);
            } else {
                out.insert(e.path(), (m.len(), m.modified().unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(lake, &mut out);
    out
}

#[test]
fn writes_ddl_copy_and_engine_settings_are_refused_and_the_lake_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (lake, users) = lake_with_users(dir.path(), 300);
    let before = lake_files(&lake);
    let served = Served::start(&lake, &users, &[]);
    let target = dir.path().join("copied.csv");
    for sql in [
        "DROP TABLE audit_log".to_string(),
        "DELETE FROM audit_log".into(),
        "INSERT INTO audit_log (id) VALUES ('x')".into(),
        "UPDATE audit_log SET action = 'x'".into(),
        "CREATE TABLE t AS SELECT * FROM audit_log".into(),
        "CREATE VIEW v AS SELECT 1".into(),
        format!("COPY (SELECT * FROM audit_log) TO '{}'", target.display()),
        "SET datafusion.execution.target_partitions = 1".into(),
        "SELECT * INTO t2 FROM audit_log".into(),
        "SELECT 1; DROP TABLE audit_log".into(),
    ] {
        let out = served.psql_as(USER, PASSWORD, "disable", &sql);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{sql} ran");
        assert!(err.contains("refused") || err.contains("read-only"), "{sql}: {err}");
    }
    // The extended protocol (a bound parameter): refused at parse time.
    for sql in ["INSERT INTO audit_log (id) VALUES (%s)", "DELETE FROM audit_log WHERE id = %s"] {
        let dsn = served.dsn(USER, PASSWORD, "disable");
        let out = python(&["refused", &dsn, sql]);
        let v = json_of(&out);
        assert_eq!(v["sqlstate"], "25006", "{sql}: {v}");
    }
    // A client's own settings are its own.
    let set = served.psql("SET statement_timeout = 60000; SET application_name = 'grafana'; SELECT 1");
    assert_eq!(set.lines().last(), Some("1"), "{set}");
    assert_eq!(served.psql("SELECT count(*) FROM audit_log").trim(), "300");
    assert!(!target.exists());
    drop(served);
    assert_eq!(before, lake_files(&lake), "the lake changed while served");
}

#[test]
fn twenty_clients_see_only_committed_counts_while_ingest_and_compact_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (lake, users) = lake_with_users(dir.path(), 3000);
    // Two more feeds of new events (other seeds and days), ingested while clients ask.
    let (b, c) = (dir.path().join("b.ndjson"), dir.path().join("c.ndjson"));
    common::generate(&b, 2000, 5, "2026-10-01", 8);
    common::generate(&c, 1000, 5, "2026-11-01", 9);
    let served = Served::start(&lake, &users, &[]);
    let stop = dir.path().join("stop");
    let dsn = served.dsn(USER, PASSWORD, "disable");
    let python_bin = std::env::var("AUDITLAKE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let clients = Command::new(python_bin)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/serve/client.py"))
        .args(["concurrent", &dsn, "20"])
        .arg(&stop)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    run(&lake, &["ingest", b.to_str().unwrap()]);
    std::thread::sleep(Duration::from_millis(500));
    run(&lake, &["ingest", c.to_str().unwrap()]);
    run(&lake, &["compact"]);
    run(&lake, &["vacuum"]);
    std::thread::sleep(Duration::from_secs(2));
    std::fs::write(&stop, "").unwrap();
    let out = clients.wait_with_output().unwrap();
    let v = json_of(&out);
    assert_eq!(v["errors"], serde_json::json!([]), "{v}");
    assert_eq!(v["mismatched"], 0, "a count with an id twice: {v}");
    let answers: BTreeMap<u64, u64> =
        v["answers"].as_object().unwrap().iter().map(|(k, n)| (k.parse().unwrap(), n.as_u64().unwrap())).collect();
    let committed = [3000, 5000, 6000];
    assert!(answers.keys().all(|n| committed.contains(n)), "an uncommitted count: {answers:?}");
    assert!(answers.contains_key(&3000) && answers.contains_key(&6000), "{answers:?}");
    assert!(answers.values().sum::<u64>() >= 100, "too few answers to prove anything: {answers:?}");
    assert_eq!(served.psql("SELECT count(*) FROM audit_log").trim(), "6000");
}

/// Never finishes on its own: 300⁵ rows or more, in little memory (300⁴ took 4 s). The filter
/// keeps DataFusion from answering the count from the files' statistics.
const ENDLESS: &str =
    "SELECT count(*) FROM audit_log a, audit_log b, audit_log c, audit_log d, audit_log e WHERE a.id <> 'x'";

#[test]
fn an_abusive_query_fails_alone_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let (lake, users) = lake_with_users(dir.path(), 3000);
    let served = Served::start(
        &lake,
        &users,
        &["--query-memory", "8MiB", "--statement-timeout", "3s", "--max-connections", "3"],
    );

    // Over the memory of one query: a hash join that must hold 3000 rows of 30 KB.
    let big = "SELECT count(*) FROM (SELECT repeat(id, 800) AS k FROM audit_log) a \
               JOIN (SELECT repeat(id, 800) AS k FROM audit_log) b ON a.k = b.k";
    let out = served.psql_as(USER, PASSWORD, "disable", big);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("Resources exhausted"), "{err}");
    assert_eq!(served.psql("SELECT count(*) FROM audit_log").trim(), "3000");

    // Over the server's deadline, and over a client's lower one.
    let started = Instant::now();
    let out = served.psql_as(USER, PASSWORD, "disable", ENDLESS);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("statement timeout"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    let started = Instant::now();
    let out = served.psql_session(&["SET statement_timeout = 300", ENDLESS]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("statement timeout"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(3), "the client's 300 ms took {:?}", started.elapsed());
    assert_eq!(served.psql("SELECT count(DISTINCT id) FROM audit_log").trim(), "3000");

    // A client's cancel request (psql's Ctrl-C) stops a running query; the connection goes on.
    let dsn = served.dsn(USER, PASSWORD, "disable");
    let v = json_of(&python(&["cancel", &dsn, ENDLESS]));
    assert_eq!(v["sqlstate"], "57014", "{v}");
    assert!(v["message"].as_str().unwrap_or_default().contains("user request"), "{v}");
    assert!(v["after_cancel_s"].as_f64().unwrap() < 2.0, "{v}");

    // The connection limit: the fourth is told why, and a freed slot serves again.
    let v = json_of(&python(&["busy", &dsn, "3"]));
    assert!(v["message"].as_str().unwrap_or_default().contains("too many clients"), "{v}");
    assert_eq!(served.psql("SELECT 1").trim(), "1");
}

#[test]
fn sigterm_stops_the_server_within_its_grace_even_with_a_query_running() {
    let dir = tempfile::tempdir().unwrap();
    let (lake, users) = lake_with_users(dir.path(), 300);
    let served = Served::start(&lake, &users, &["--shutdown-grace", "1s"]);
    assert_eq!(served.psql("SELECT 1").trim(), "1");
    let dsn = served.dsn(USER, PASSWORD, "disable");
    let running = Command::new("psql")
        .args(["-X", "-At", "-c", ENDLESS, &dsn])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Time to log in and start, even on a machine busy with the rest of the suite.
    std::thread::sleep(Duration::from_secs(4));
    let (status, took, stderr) = served.terminate(Duration::from_secs(15));
    assert!(status.success(), "{status:?}: {stderr:?}");
    let out = running.wait_with_output().unwrap();
    let said = format!("{stderr:?} {}", String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "the endless query answered");
    assert!(stderr.iter().any(|l| l.contains("1 queries cancelled at shutdown")), "{said}");
    assert!(took >= Duration::from_millis(900), "did not wait for the running query: {took:?} {said}");
    assert!(took < Duration::from_secs(5), "the grace is 1 s: {took:?}");

    // With nothing running, SIGTERM stops at once.
    let served = Served::start(&lake, &users, &["--shutdown-grace", "30s"]);
    assert_eq!(served.psql("SELECT 1").trim(), "1");
    let (status, took, _) = served.terminate(Duration::from_secs(10));
    assert!(status.success());
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn a_lake_without_a_table_yet_is_served_and_its_first_ingest_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, format!("{USER}:{PASSWORD}\n")).unwrap();
    let lake = dir.path().join("lake");
    let served = Served::start(&lake, &users, &[]);
    assert_eq!(served.psql("SELECT count(*) FROM audit_log").trim(), "0");
    assert_eq!(served.psql("SELECT count(*) FROM by_action").trim(), "0");
    let feed = dir.path().join("feed.ndjson");
    common::generate(&feed, 500, 3, "2026-09-01", 5);
    run(&lake, &["ingest", feed.to_str().unwrap()]);
    assert_eq!(
        served.psql("SELECT count(*) FROM audit_log WHERE tags IS NOT NULL AND id <> ''").trim(),
        served.psql("SELECT count(*) FROM audit_log WHERE tags IS NOT NULL").trim()
    );
    assert_eq!(served.psql("SELECT count(*) FROM audit_log").trim(), "500");
    assert_eq!(served.psql("SELECT sum(events) FROM by_action").trim(), "500");
}
