//! Hostile input against the binary (issue 19): the worst layouts and files an attacker or an
//! unlucky operator can hand `ingest`, each checked for its promise. Memory promises are
//! asserted on the child's peak RSS (`wait4`), on inputs far larger than the bound.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use auditlake::Lake;

/// The documented bound on ingest memory (README: "peak ≤ 512 MiB at any input size").
const INGEST_BOUND_KIB: i64 = 512 * 1024;

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("auditlake")
}

/// The outcome of one child: exit code, peak RSS (KiB), stdout, stderr.
struct Run {
    code: i32,
    peak_kib: i64,
    stdout: String,
    stderr: String,
}

/// Runs the binary with `args` on `lake`, measuring its peak RSS with `wait4`.
fn run(lake: &Path, args: &[&str]) -> Run {
    let out_dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (out_dir.path().join("out"), out_dir.path().join("err"));
    let child = Command::new(bin())
        .arg("--lake")
        .arg(lake)
        .args(args)
        .env_remove("AUDITLAKE_LAKE")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; `status` and `usage` are valid for writes.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4 failed");
    assert!(libc::WIFEXITED(status), "the child did not exit normally (signal {})", libc::WTERMSIG(status));
    Run {
        code: libc::WEXITSTATUS(status),
        peak_kib: usage.ru_maxrss,
        stdout: std::fs::read_to_string(&out_path).unwrap(),
        stderr: std::fs::read_to_string(&err_path).unwrap(),
    }
}

fn metrics(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: stdout {:?}, stderr {}", run.stdout, run.stderr))
}

fn count(lake: &Path) -> u64 {
    let lake = Lake::open(&lake.display().to_string()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(common::rows(&lake, "SELECT count(*) FROM audit_log"))[0][0].parse().unwrap()
}

fn entry(i: usize, pad: usize) -> String {
    format!(
        r#"{{"id":"h-{i}","timestamp":"2026-09-01T08:00:00Z","action":"Workflow updated","extra_data":{{"blob":"{}"}}}}"#,
        "x".repeat(pad)
    )
}

const GIB: usize = 1 << 30;

#[test]
fn a_one_gib_single_line_array_is_ingested_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("minified.json");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&feed).unwrap());
    w.write_all(b"[").unwrap();
    let (pad, mut written, mut n) = (100 << 10, 1usize, 0usize);
    while written < GIB {
        let e = entry(n, pad);
        if n > 0 {
            w.write_all(b",").unwrap();
        }
        w.write_all(e.as_bytes()).unwrap();
        written += e.len() + 1;
        n += 1;
    }
    w.write_all(b"]").unwrap();
    w.flush().unwrap();
    drop(w);
    let lake = dir.path().join("lake");
    let r = run(&lake, &["ingest", "--format", "json", &feed.display().to_string()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(metrics(&r)["ingested"], n as u64);
    assert!(r.peak_kib < INGEST_BOUND_KIB, "peak RSS {} MiB on a 1 GiB line", r.peak_kib / 1024);
    assert_eq!(count(&lake), n as u64);
}

#[test]
fn a_one_gib_line_without_a_newline_is_one_rejection_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("one-line.ndjson");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&feed).unwrap());
    w.write_all(format!("{}\n", entry(0, 10)).as_bytes()).unwrap();
    let block = vec![b'a'; 1 << 20];
    for _ in 0..1024 {
        w.write_all(&block).unwrap();
    }
    drop(w);
    let lake = dir.path().join("lake");
    let r = run(&lake, &["ingest", "--format", "json", &feed.display().to_string()]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let m = metrics(&r);
    assert_eq!((m["ingested"].as_u64(), m["rejected"].as_u64()), (Some(1), Some(1)));
    assert!(r.peak_kib < INGEST_BOUND_KIB, "peak RSS {} MiB on a 1 GiB line", r.peak_kib / 1024);
    // What the quarantine keeps of it is its head and size, not the gigabyte.
    let text = std::fs::read_to_string(m["rejected_files"][0].as_str().unwrap()).unwrap();
    assert!(text.len() < 8 << 10, "{} bytes quarantined", text.len());
    assert!(text.contains(&format!("entry of {} bytes", GIB)), "{text}");
}

#[test]
fn a_gzip_bomb_is_one_rejection_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("bomb.json.gz");
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&feed).unwrap(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        gz.write_all(&zeros).unwrap();
    }
    gz.finish().unwrap();
    assert!(std::fs::metadata(&feed).unwrap().len() < 4 << 20, "the bomb should be small");
    let lake = dir.path().join("lake");
    let r = run(&lake, &["ingest", "--format", "json", &feed.display().to_string()]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(metrics(&r)["rejected"], 1);
    assert!(r.peak_kib < INGEST_BOUND_KIB, "peak RSS {} MiB on a gzip bomb", r.peak_kib / 1024);
}

#[cfg(unix)]
#[test]
fn one_bad_input_never_stops_collection_and_nothing_outside_is_read() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let drop_dir = dir.path().join("drop");
    std::fs::create_dir_all(&drop_dir).unwrap();
    std::fs::write(drop_dir.join("a-good.ndjson"), format!("{}\n{}\n", entry(1, 5), entry(2, 5))).unwrap();
    // A gzip cut short: the entries before the cut are whole and kept.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for i in 10..1010 {
        writeln!(gz, "{}", entry(i, 50)).unwrap();
    }
    let whole = gz.finish().unwrap();
    std::fs::write(drop_dir.join("b-truncated.json.gz"), &whole[..whole.len() * 2 / 3]).unwrap();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "root:$6$not-for-the-lake\n").unwrap();
    symlink(&secret, drop_dir.join("c-link.json")).unwrap();
    symlink("/dev/zero", drop_dir.join("d-zero.json")).unwrap();
    symlink(drop_dir.join("gone"), drop_dir.join("e-dangling.json")).unwrap();
    assert!(Command::new("mkfifo").arg(drop_dir.join("f-fifo.json")).status().unwrap().success());
    symlink(&drop_dir, drop_dir.join("g-loop")).unwrap();

    let lake = dir.path().join("lake");
    let arg = drop_dir.display().to_string();
    let r = run(&lake, &["ingest", "--format", "json", &arg]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let m = metrics(&r);
    let skipped: Vec<&str> =
        m["skipped_inputs"].as_array().unwrap().iter().map(|s| s["input"].as_str().unwrap()).collect();
    assert_eq!(skipped.len(), 6, "{skipped:?}");
    assert!(skipped.iter().any(|s| s.ends_with("b-truncated.json.gz")), "{skipped:?}");
    let ingested = m["ingested"].as_u64().unwrap();
    assert!(ingested > 2 && ingested < 1002, "the truncated gzip's readable entries are kept: {ingested}");
    assert_eq!(count(&lake), ingested);
    // Nothing the links point at reached the lake.
    let mut all = String::new();
    for e in std::fs::read_dir(lake.join("_rejected")).unwrap() {
        all.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap());
    }
    assert!(!all.contains("not-for-the-lake"), "{all}");
    assert!(all.contains("input skipped"), "{all}");

    // A schedule that reads the same folder again: nothing new in the table or the quarantine.
    let files_before = std::fs::read_dir(lake.join("_rejected")).unwrap().count();
    let again = run(&lake, &["ingest", "--format", "json", &arg]);
    assert_eq!(again.code, 3, "{}", again.stderr);
    assert_eq!(metrics(&again)["ingested"], 0);
    assert_eq!(std::fs::read_dir(lake.join("_rejected")).unwrap().count(), files_before);
}

#[test]
fn hostile_sql_gets_an_error_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    // A very deep expression: refused at once, never a stack overflow or minutes of planning.
    let started = std::time::Instant::now();
    let deep = format!("SELECT {} AS n", vec!["1"; 30_000].join(" + "));
    let r = run(&lake, &["query", "--format", "csv", &deep]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("nests expressions"), "{}", r.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
    let nested = format!("SELECT {}1{} AS n", "(".repeat(10_000), ")".repeat(10_000));
    let r = run(&lake, &["query", "--format", "csv", &nested]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    // An ordinary long chain still answers.
    let fine = format!("SELECT {} AS n", vec!["1"; 300].join(" + "));
    let r = run(&lake, &["query", "--format", "csv", &fine]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "n\n300\n"), "{}", r.stderr);
}

#[test]
fn a_query_that_wants_every_byte_is_refused_and_a_runaway_one_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let greedy = |sql: &str| {
        let out = Command::new(bin())
            .arg("--lake")
            .arg(&lake)
            .args(["query", "--timeout", "60s", sql])
            .env("AUDITLAKE_MEMORY_LIMIT", "64MiB")
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    // Regression (issue 19): these aborted the process (SIGABRT) with an unbounded pool.
    let (code, stderr) = greedy("SELECT array_agg(value) FROM range(200000000)");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.to_lowercase().contains("resources exhausted"), "{stderr}");
    // Rows double at each step of the recursion.
    let (code, stderr) = greedy(
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t, (VALUES (1), (2)) AS v(x)) SELECT count(*) FROM t",
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.to_lowercase().contains("resources exhausted"), "{stderr}");
    // A cross join of two ranges would run until killed.
    let started = std::time::Instant::now();
    let r = run(
        &lake,
        &["query", "--timeout", "2s", "SELECT sum(a.value * b.value) FROM range(100000) a, range(100000) b"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("--timeout"), "{}", r.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}
