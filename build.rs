// Links the binaries as position-dependent executables. A PIE of this size carries about
// 300,000 relative relocations that the dynamic loader applies at every start (BIND_NOW),
// touching megabytes of pages: about 8 ms of each command's start-up, measured with
// hyperfine on `auditlake --version`. Start-up counts because people run the CLI per query.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
