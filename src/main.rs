//! The `auditlake` binary: parse the command line, run, map the outcome to an exit status
//! (0 success, 1 failure, 2 usage error, 3 ingest or pull rejected records, 4 verify found
//! tampering, 130 pull stopped by a signal).

mod cli;

use std::process::ExitCode;

use clap::Parser;

use auditlake::engine::THREAD_STACK_BYTES;

fn main() -> ExitCode {
    cap_uploads_without_proc();
    let cli = cli::args::Cli::parse();
    use cli::args::Command;
    match cli.command {
        Command::Query(_) | Command::Search(_) | Command::Report(_) => keep_freed_memory(),
        Command::Compact(_) => return_large_buffers(),
        _ => {}
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    // A server and a shell must keep answering (sockets, deadlines, Ctrl-C) while a query runs.
    // Some DataFusion operators (a cross join's output) run for minutes without yielding to
    // tokio, and a worker they hold drives no timer or socket: spare workers beyond the query's
    // partitions (one a core) keep the rest responsive. Measured: with one worker a core, a
    // 3 s statement timeout fired after 35 s.
    let workers = match cli.command {
        Command::Serve(_) | Command::Shell(_) => cores * 4,
        _ => cores,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .thread_stack_size(THREAD_STACK_BYTES)
        .build()
        .expect("start the tokio runtime");
    // The command runs on a thread of its own with the same large stack. It stays on that one
    // thread (a task spawned on the runtime would move between workers, and ingest's peak memory
    // grew by a third when its allocations spread over more malloc arenas: measured).
    let command = std::thread::Builder::new()
        .name("auditlake".into())
        .stack_size(THREAD_STACK_BYTES)
        .spawn(move || {
            let result = runtime.block_on(cli::run(cli));
            // Once the command is done nothing left on the runtime matters. A query cancelled at a
            // server's shutdown may hold a worker until its operator next yields (seconds, or
            // minutes for a cross join): do not wait for it.
            runtime.shutdown_background();
            result
        })
        .expect("start the command thread");
    let result = match command.join() {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        // `| head` closing the pipe is not a failure (ripgrep does the same).
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let text = redact(&say_once(&err));
            eprintln!("error: {text}");
            if let Some(hint) = credentials_hint(&text) {
                eprintln!("hint: {hint}");
            }
            if is_usage(&err) { ExitCode::from(2) } else { ExitCode::FAILURE }
        }
    }
}

/// delta-rs sizes its in-flight uploads from the memory `sysinfo` reads in /proc, and panics
/// when there is no /proc to read (a chroot; seen running the image's file system under chroot
/// in scripts/container.sh). Without /proc, the budget is set explicitly instead.
fn cap_uploads_without_proc() {
    const VAR: &str = "DELTARS_MAX_IN_FLIGHT_UPLOAD_BYTES";
    if std::env::var_os(VAR).is_none() && !std::path::Path::new("/proc/meminfo").exists() {
        // SAFETY: the first thing main does, before any other thread exists.
        unsafe { std::env::set_var(VAR, (512u64 << 20).to_string()) };
    }
}

/// The error's chain, each cause said once. Many errors display their source inside their own
/// message (DataFusion's, delta-rs', object_store's), so printing every link repeats the same
/// text several times; a link whose text an earlier link already said is skipped.
fn say_once(err: &anyhow::Error) -> String {
    let mut said: Vec<String> = Vec::new();
    for link in err.chain() {
        let text = link.to_string();
        let text = text.trim();
        if text.is_empty() || said.iter().any(|s| s.contains(text)) {
            continue;
        }
        said.push(text.to_string());
    }
    said.join(": ")
}

/// Removes credentials from an error's text. An S3 `SignatureDoesNotMatch` answer carries the
/// access key id, the string to sign and the canonical request (with `x-amz-security-token`),
/// and object_store puts the answer's body in its error.
fn redact(text: &str) -> String {
    const REDACTED: &str = "[redacted]";
    let mut out = text.to_string();
    for tag in [
        "AWSAccessKeyId",
        "StringToSign",
        "StringToSignBytes",
        "CanonicalRequest",
        "CanonicalRequestBytes",
        "SignatureProvided",
    ] {
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        let mut from = 0;
        while let Some(start) = out[from..].find(&open).map(|i| from + i + open.len()) {
            let end = out[start..].find(&close).map_or(out.len(), |i| start + i);
            out.replace_range(start..end, REDACTED);
            from = start + REDACTED.len();
        }
    }
    for key in ["x-amz-security-token", "x-amz-credential", "x-amz-signature", "credential", "signature"] {
        for sep in ['=', ':'] {
            let needle = format!("{key}{sep}");
            let mut from = 0;
            while let Some(start) = out[from..].to_ascii_lowercase().find(&needle).map(|i| from + i + needle.len()) {
                let end = out[start..]
                    .find(|c: char| c.is_whitespace() || matches!(c, '&' | ',' | '"' | '\'' | '<' | ';'))
                    .map_or(out.len(), |i| start + i);
                if end > start {
                    out.replace_range(start..end, REDACTED);
                }
                from = start + REDACTED.len().min(out.len() - start);
            }
        }
    }
    // Access key ids: AKIA/ASIA and 16 more capitals or digits.
    let mut i = 0;
    while i + 20 <= out.len() {
        let candidate = &out.as_bytes()[i..i + 20];
        let prefix = &candidate[..4];
        if (prefix == b"AKIA" || prefix == b"ASIA")
            && candidate[4..].iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            out.replace_range(i..i + 20, REDACTED);
            i += REDACTED.len();
        } else {
            i += 1;
        }
    }
    out
}

/// What to set when a store found no credentials: its error names only the last place it tried
/// (the cloud's instance metadata service), not the variables a user would set.
fn credentials_hint(text: &str) -> Option<&'static str> {
    if text.contains("metadata.google.internal") || text.contains("GOOGLE_APPLICATION_CREDENTIALS") {
        Some(
            "no Google Cloud credentials were found: set GOOGLE_APPLICATION_CREDENTIALS (or \
             GOOGLE_SERVICE_ACCOUNT) to a service account key file; the metadata server was tried",
        )
    } else if text.contains("169.254.169.254/metadata") || text.contains("AZURE_") {
        Some(
            "no Azure credentials were found: set AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY \
             (or a SAS token, or AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET); managed identity was tried",
        )
    } else if text.contains("169.254.169.254") || text.contains("169.254.170.2") || text.contains("InvalidAccessKeyId")
    {
        Some(
            "no usable AWS credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and \
             AWS_REGION; AWS_ENDPOINT_URL for an S3-compatible store), or AWS_WEB_IDENTITY_TOKEN_FILE with \
             AWS_ROLE_ARN; the container and instance metadata credentials were tried",
        )
    } else {
        None
    }
}

fn is_usage(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<cli::UsageError>().is_some()
            || e.downcast_ref::<auditlake::Error>().is_some_and(auditlake::Error::is_usage)
    })
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

/// Compaction decodes, sorts and encodes a day in buffers of a few MiB. With glibc's default the
/// mmap threshold rises as such buffers are freed, so later ones come from the heap and stay
/// there: compacting a 10M-event lake peaked at 590-670 MiB. Buffers from 1 MiB up always mapped
/// and unmapped on free: 444 MiB, 9% slower (measured; a 128 KiB threshold gave 383 MiB, 52% slower).
fn return_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any work starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || e.to_string().contains("Broken pipe")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_cloud_credentials_get_a_hint_naming_the_variables() {
        let aws = "loading the table at s3://b/x/audit_log failed: Generic S3 error: Error performing PUT \
                   http://169.254.169.254/latest/api/token in 1ms - Server returned non-2xx status code: 403";
        assert!(credentials_hint(aws).unwrap().contains("AWS_ACCESS_KEY_ID"));
        assert!(credentials_hint("metadata.google.internal: connection refused").unwrap().contains("GOOGLE_"));
        assert_eq!(credentials_hint("Schema error: No field named actoin"), None);
    }

    #[test]
    fn each_cause_is_said_once() {
        // DataFusion-style: the outer error repeats the inner text in its own message.
        let inner = std::io::Error::other("No field named actoin");
        let err = anyhow::Error::new(inner).context("Schema error: No field named actoin").context("query failed");
        assert_eq!(say_once(&err), "query failed: Schema error: No field named actoin");
    }

    #[test]
    fn credentials_never_reach_the_terminal() {
        // Regression (issue 19): the shape of an S3 SignatureDoesNotMatch answer.
        let body = "error: Error performing PUT http://s3/b/k: <Error><Code>SignatureDoesNotMatch</Code>\
            <AWSAccessKeyId>AKIAIOSFODNN7EXAMPLE</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256\n20261129</StringToSign>\
            <CanonicalRequest>PUT\n/b/k\nx-amz-security-token:FwoGZXIvYXdzEXAMPLETOKEN\n</CanonicalRequest></Error> \
            (X-Amz-Credential=AKIAIOSFODNN7EXAMPLE/20261129/us-east-1&X-Amz-Signature=abc123)";
        let clean = redact(body);
        for secret in ["AKIAIOSFODNN7EXAMPLE", "FwoGZXIvYXdzEXAMPLETOKEN", "20261129</StringToSign>", "abc123"] {
            assert!(!clean.contains(secret), "{secret} in {clean}");
        }
        assert!(clean.contains("SignatureDoesNotMatch"), "{clean}");
        assert_eq!(redact("no field named actoin"), "no field named actoin");
    }

    #[test]
    fn usage_errors_are_recognised_through_context() {
        let err = anyhow::Error::new(cli::UsageError("x".into())).context("query failed");
        assert!(is_usage(&err));
        let err = anyhow::Error::new(auditlake::Error::ParquetNeedsFile).context("query failed");
        assert!(is_usage(&err));
        assert!(!is_usage(&anyhow::anyhow!("disk full")));
    }
}
