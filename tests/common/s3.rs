//! The S3-protocol test server (moto, started by `scripts/test.sh`): its endpoint, credentials
//! for this process, and a fresh bucket per test.

use std::process::{Command as Std, Stdio};

use assert_cmd::Command;

pub const SECRET: &str = "s3cr3t-never-print-me";

pub fn endpoint() -> String {
    std::env::var("AUDITLAKE_TEST_S3_ENDPOINT").expect(
        "AUDITLAKE_TEST_S3_ENDPOINT is not set: run the tests with ./scripts/test.sh, which starts the S3 test server",
    )
}

pub fn set_env() {
    let vars = [
        ("AWS_ACCESS_KEY_ID", "auditlake-test"),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ALLOW_HTTP", "true"),
    ];
    // SAFETY: nextest runs each test in its own process; set before any thread reads them.
    unsafe {
        for (k, v) in vars {
            std::env::set_var(k, v);
        }
        std::env::set_var("AWS_ENDPOINT_URL", endpoint());
    }
}

/// A fresh bucket for one test.
pub fn bucket(name: &str) -> String {
    set_env();
    let bucket = format!("{name}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let status = Std::new("curl")
        .args(["-fsS", "-X", "PUT", &format!("{}/{bucket}", endpoint())])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "could not create bucket {bucket}");
    bucket
}

/// Runs the binary, expects exit status `code`, checks that no credential was printed, and
/// returns stdout.
pub fn run(cmd: &mut Command, code: i32) -> String {
    let out = cmd.assert().code(code).get_output().clone();
    let (stdout, stderr) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap());
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET), "a credential was printed");
    stdout
}
