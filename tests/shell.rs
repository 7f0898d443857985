//! `auditlake shell`: a real pseudo-terminal session (`tests/shell/pty_session.py`: multi-line
//! statements, `\d`, an error then a good query, Ctrl-C during an endless query, history), and
//! statements piped on stdin.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("auditlake")
}

fn lake(dir: &Path, events: u64) -> PathBuf {
    let feed = dir.join("feed.ndjson");
    common::generate(&feed, events, 5, "2026-09-01", 3);
    let lake = dir.join("lake");
    let out = Command::new(bin()).arg("--lake").arg(&lake).args(["ingest"]).arg(&feed).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    lake
}

#[test]
fn a_session_at_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake(dir.path(), 700);
    let python = std::env::var("AUDITLAKE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/shell/pty_session.py");
    let out = Command::new(python)
        .arg(script)
        .arg(bin())
        .arg(&lake)
        .arg("700")
        .arg(dir.path().join("history"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn statements_piped_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake(dir.path(), 300);
    let run = |input: &str| {
        let mut child = Command::new(bin())
            .arg("--lake")
            .arg(&lake)
            .arg("shell")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run("\\format csv\nSELECT count(*) AS n\n  FROM audit_log; SELECT 'a;b' AS s;\n\\n by_action\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("n\n300\ns\na;b\n"), "{stdout}");
    assert!(stdout.contains("action,events") || stdout.lines().count() > 5, "{stdout}");
    // A failed statement makes the exit status 1; the rest still run.
    let out = run("SELECT nonsense;\nSELECT 1 AS one;\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error:"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("one"));
}
