//! The `auditlake` binary: parse the command line, run, map the outcome to an exit status.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = auditlake::cli::Cli::parse();
    use auditlake::cli::Command;
    if matches!(cli.command, Command::Query(_) | Command::Search(_) | Command::Report(_)) {
        keep_freed_memory();
    }
    match auditlake::cli::run(cli).await {
        Ok(code) => ExitCode::from(code),
        // `| head` closing the pipe is not a failure (ripgrep does the same).
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// A query builds and drops many buffers of a few hundred KiB to a few MiB (Parquet pages,
/// Arrow arrays). glibc serves those with `mmap` and hands them back with `munmap` on free, so the
/// same memory is faulted in and zeroed again and again: measured on the benchmark's by_actor,
/// 10% more CPU time than with these limits, almost all of it in page faults. Queries are short
/// processes, so keeping freed memory for reuse costs nothing. Ingest keeps glibc's defaults
/// (its peak memory is a promise).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any query work starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || e.to_string().contains("Broken pipe")
    })
}
