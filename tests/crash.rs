//! Real kills (SIGKILL) of the binary in the middle of ingest and compaction: the table stays at
//! a committed version, and rerunning the command finishes the job with nothing lost or doubled.

mod common;

use std::process::{Command as Std, Stdio};
use std::time::Duration;

use auditlake::Lake;

fn bin() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("auditlake")
}

/// 20 days of events from the generator's default start.
fn generate(path: &std::path::Path, events: u64, seed: u64) {
    common::generate(path, events, 20, "2026-10-01", seed);
}

fn count(lake: &Lake) -> u64 {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async { common::rows(lake, "SELECT count(*) FROM audit_log").await[0][0].parse().unwrap() })
}

/// Starts `args`, kills it with SIGKILL after `after`; returns whether it had already exited.
fn kill_after(lake: &str, args: &[&str], after: Duration) -> bool {
    let mut child = Std::new(bin())
        .arg("--lake")
        .arg(lake)
        .arg("--quiet")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    let finished = child.try_wait().unwrap().is_some();
    let _ = child.kill(); // SIGKILL on Unix
    let _ = child.wait();
    finished
}

/// A crash test proves nothing unless some run was killed before it finished.
fn assert_killed_mid_way(kills: usize, job: &str) {
    assert!(kills > 0, "no {job} was killed before it finished; the input is too small for this machine");
}

#[test]
#[should_panic(expected = "no compaction was killed")]
fn a_crash_test_without_a_kill_fails() {
    assert_killed_mid_way(0, "compaction");
}

#[test]
fn killed_ingest_leaves_a_committed_version_and_rerun_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("feed.ndjson");
    generate(&feed, 60_000, 1);
    let lake_path = dir.path().join("lake").display().to_string();
    let lake = Lake::open(&lake_path).unwrap();
    // A first small batch so the table exists with a known count.
    let first = dir.path().join("first.ndjson");
    generate(&first, 500, 2);
    assert!(Std::new(bin()).args(["--lake", &lake_path, "--quiet", "ingest"]).arg(&first).status().unwrap().success());
    let feed_arg = feed.display().to_string();
    let mut kills = 0;
    for ms in [150, 400, 800, 1500, 2500] {
        if !kill_after(&lake_path, &["ingest", &feed_arg], Duration::from_millis(ms)) {
            kills += 1;
        }
        let n = count(&lake);
        assert!(n == 500 || n == 60_500, "after a kill at {ms} ms the table holds {n} rows: not a committed version");
    }
    assert_killed_mid_way(kills, "ingest");
    assert!(Std::new(bin()).args(["--lake", &lake_path, "--quiet", "ingest", &feed_arg]).status().unwrap().success());
    assert_eq!(count(&lake), 60_500);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let distinct = rt.block_on(common::rows(&lake, "SELECT count(DISTINCT id) FROM audit_log"));
    assert_eq!(distinct[0][0], "60500");
}

#[test]
fn killed_compaction_leaves_a_committed_version_and_rerun_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let lake_path = dir.path().join("lake").display().to_string();
    let lake = Lake::open(&lake_path).unwrap();
    for seed in 0..8 {
        let f = dir.path().join(format!("b{seed}.ndjson"));
        generate(&f, 15_000, 10 + seed);
        assert!(Std::new(bin()).args(["--lake", &lake_path, "--quiet", "ingest"]).arg(&f).status().unwrap().success());
    }
    let total = count(&lake);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let version = |lake: &Lake| rt.block_on(lake.load(None)).unwrap().unwrap().version().unwrap();
    let before = version(&lake);
    let mut kills = 0;
    for ms in [60, 150, 300, 600, 1200] {
        if !kill_after(&lake_path, &["compact"], Duration::from_millis(ms)) {
            kills += 1;
        }
        assert_eq!(count(&lake), total, "after a kill at {ms} ms");
        if version(&lake) != before {
            // This compaction finished before the kill: the later kill times test nothing more.
            break;
        }
    }
    assert_killed_mid_way(kills, "compaction");
    assert!(Std::new(bin()).args(["--lake", &lake_path, "--quiet", "compact"]).status().unwrap().success());
    assert_eq!(count(&lake), total);
    let table = rt.block_on(lake.load(None)).unwrap().unwrap();
    let stats = rt.block_on(auditlake::lake::table_stats(&lake, &table)).unwrap();
    assert!(stats.partitions.iter().all(|p| p.files == 1), "{:?}", stats.partitions);
}
