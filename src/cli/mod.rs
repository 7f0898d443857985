//! The command line: flags ([`args`]) resolved into the jobs' plain options, the job run, and
//! its metrics printed ([`print`]): a human summary on stderr, or JSON on stdout with
//! `--format json`. stdout carries results only.
//!
//! A mistake in the flags that clap cannot see (a `--param` without `--name`, Parquet without
//! `--out`) is a [`UsageError`], which `main` reports with exit status 2 like a parse error.

pub mod args;
pub mod print;

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use auditlake::Lake;
use auditlake::generate::{FeedFormat, GenerateOptions};
use auditlake::ingest::IngestOptions;
use auditlake::query::named;
use auditlake::query::search::SearchFilters;
use auditlake::report::render::{self, Format};
use auditlake::time::Window;
use auditlake::{engine, maintain, report};

use args::{Cli, Command, GenFormat, QueryArgs, ReportArgs, ReportFormat, ResultFormat, WindowArgs};

/// Exit status when an ingest committed its good records but rejected some, or skipped inputs.
pub const EXIT_REJECTED: u8 = 3;

/// Exit status when `verify` found tampering.
pub const EXIT_TAMPERED: u8 = 4;

/// Exit status of a pull stopped by a signal before the end of its window (128 + SIGINT).
pub const EXIT_INTERRUPTED: u8 = 130;

/// A mistake in how the command was called, found after parsing; exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

fn window(args: &WindowArgs) -> Result<Window> {
    Window::parse(args.since.as_deref(), args.until.as_deref(), chrono::Utc::now()).map_err(usage)
}

/// Runs the parsed command; returns the process exit status.
pub async fn run(cli: Cli) -> Result<u8> {
    let lake = Lake::open(&cli.lake)?;
    let lake = match &cli.evidence_url {
        Some(url) => lake.with_evidence_copy(url)?,
        None => lake,
    };
    let say = !cli.quiet;
    match cli.command {
        Command::Ingest(args) => {
            let opts = IngestOptions {
                inputs: args.inputs,
                progress: say && std::io::stderr().is_terminal(),
                batch_rows: args.batch_rows,
                target_file_size: args.target_file_size,
                max_entry_size: usize::try_from(args.max_entry_size).unwrap_or(usize::MAX),
                follow_links: args.follow,
            };
            let metrics = auditlake::ingest::ingest(&lake, &opts).await.context("ingest failed")?;
            args.summary.print(say, &metrics, |m| print::ingest(&lake, m))?;
            Ok(if metrics.rejected > 0 || !metrics.skipped_inputs.is_empty() { EXIT_REJECTED } else { 0 })
        }
        Command::Pull(args) => pull(&lake, args, say).await,
        Command::Query(args) => {
            let limit = args.engine.timeout;
            within(limit, query(&lake, args, say)).await
        }
        Command::Search(args) => within(args.engine.timeout, search(&lake, args, say)).await,
        Command::Schema(args) => {
            print::schema(args.format)?;
            Ok(0)
        }
        Command::Stats(args) => {
            let table = lake.existing().await?;
            let stats = auditlake::lake::table_stats(&lake, &table).await?;
            print::stats(&stats, args.format)?;
            Ok(0)
        }
        Command::Compact(args) => {
            let opts = maintain::CompactOptions {
                target_size: args.target_size,
                window: window(&args.window)?,
                dry_run: args.dry_run,
            };
            let spinner = print::Spinner::start(say, "compacting");
            let m = maintain::compact(&lake, &opts).await.context("compaction failed")?;
            spinner.stop();
            args.summary.print(say, &m, print::compact)?;
            Ok(0)
        }
        Command::Retention(args) => {
            let opts = maintain::RetentionOptions {
                keep: args.keep,
                dry_run: args.dry_run,
                force: args.force,
                today: maintain::today(),
            };
            let spinner = print::Spinner::start(say, "applying retention");
            let m = maintain::retention(&lake, &opts).await.context("retention failed")?;
            spinner.stop();
            args.summary.print(say, &m, print::retention)?;
            Ok(0)
        }
        Command::Vacuum(args) => {
            let opts =
                maintain::VacuumOptions { older_than: args.older_than, dry_run: args.dry_run, force: args.force };
            let spinner = print::Spinner::start(say, "vacuuming");
            let m = maintain::vacuum(&lake, &opts).await.context("vacuum failed")?;
            spinner.stop();
            args.summary.print(say, &m, print::vacuum)?;
            Ok(0)
        }
        Command::Export(args::ExportCommand::Ocsf(args)) => export_ocsf(&lake, args, say).await,
        Command::Serve(args) => serve(&lake, args, say).await,
        Command::Shell(args) => {
            let history =
                args.history.or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".auditlake_history")));
            let opts = auditlake::query::shell::ShellOptions { queries_dir: args.queries, history };
            Ok(auditlake::query::shell::run(&lake, &opts).await?)
        }
        Command::Verify(args) => {
            if let Some(path) = &args.new_key {
                let public = auditlake::lake::evidence::new_key(path)?;
                println!("{public}");
                if say {
                    eprintln!(
                        "signing key written to {}; writers set AUDITLAKE_SIGNING_KEY to it, verify takes --public-key {public}",
                        path.display()
                    );
                }
                return Ok(0);
            }
            let public_key = args
                .public_key
                .as_deref()
                .map(auditlake::lake::evidence::parse_public_key)
                .transpose()
                .map_err(usage)?;
            if args.init {
                let table = lake.existing().await?;
                let newest = table.version().unwrap_or(0) as u64;
                match auditlake::lake::evidence::init(&lake, newest).await? {
                    Some(v) if say => eprintln!("evidence chain started at version {v}"),
                    None if say => eprintln!("evidence chain already started; nothing to initialise"),
                    _ => {}
                }
            }
            let opts = auditlake::verify::VerifyOptions { quick: args.quick, version: args.as_of_version, public_key };
            let spinner = print::Spinner::start(say && args.format == args::InfoFormat::Table, "verifying");
            let report = auditlake::verify::verify(&lake, &opts).await.context("verify failed")?;
            spinner.stop();
            print::verify(&report, args.format)?;
            Ok(if report.intact { 0 } else { EXIT_TAMPERED })
        }
        Command::History(args) => {
            let entries = maintain::history(&lake, args.limit).await?;
            print::history(&entries, args.format)?;
            Ok(0)
        }
        Command::Report(args) => {
            let limit = args.engine.timeout;
            within(limit, report(&lake, args, say)).await
        }
        #[cfg(feature = "cluster")]
        Command::Cluster(args) => {
            let vcores = args.vcores.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
            let addr = engine::cluster::start_standalone(vcores, engine::session_config()?).await?;
            println!("df://localhost:{}", addr.port());
            std::io::stdout().flush()?;
            if say {
                eprintln!("Ballista scheduler on {addr} with one executor of {vcores} task slots; Ctrl-C stops them");
            }
            tokio::signal::ctrl_c().await?;
            Ok(0)
        }
        Command::Generate(args) => {
            if !(0.0..=1.0).contains(&args.duplicates) {
                return Err(usage(format!(
                    "invalid --duplicates {}: expected a fraction from 0 to 1",
                    args.duplicates
                )));
            }
            let opts = GenerateOptions {
                events: args.events,
                days: args.days,
                workspaces: args.workspaces,
                start: args.start,
                seed: args.seed,
                format: match args.format {
                    GenFormat::Ndjson => FeedFormat::Ndjson,
                    GenFormat::Json => FeedFormat::JsonArray,
                    GenFormat::Pages => FeedFormat::Pages,
                },
                duplicate_rate: args.duplicates,
            };
            let written = match &args.out {
                Some(path) => {
                    let file =
                        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
                    auditlake::generate::generate(&opts, &mut std::io::BufWriter::with_capacity(1 << 20, file))?
                }
                None => auditlake::generate::generate(
                    &opts,
                    &mut std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock()),
                )?,
            };
            if say {
                eprintln!("generated {written} entries ({} distinct events over {} days)", args.events, args.days);
            }
            Ok(0)
        }
    }
}

/// A duration flag as the standard library's; a negative one is a usage error.
fn std_duration(flag: &str, d: chrono::Duration) -> Result<std::time::Duration> {
    d.to_std().map_err(|_| usage(format!("{flag} must not be negative")))
}

async fn pull(lake: &Lake, args: args::PullArgs, say: bool) -> Result<u8> {
    use auditlake::ingest::torq_api::{ApiOptions, Endpoints};
    let window = Window::parse(args.since.as_deref(), args.until.as_deref(), chrono::Utc::now()).map_err(usage)?;
    let region = match args.region {
        args::Region::Us => "us",
        args::Region::Eu => "eu",
    };
    let mut endpoints = Endpoints::region(region)?;
    if let Some(url) = &args.auth_url {
        endpoints.auth = Endpoints::parse_url("--auth-url", url).map_err(usage)?;
    }
    if let Some(url) = &args.api_url {
        endpoints.api = Endpoints::parse_url("--api-url", url).map_err(usage)?;
    }
    let endpoints = Endpoints::new(endpoints.auth, endpoints.api);
    let opts = auditlake::ingest::PullOptions {
        endpoints,
        credentials: credentials(&args)?,
        workspace: workspace_name(&args.workspace)?,
        since: window.since,
        until: window.until,
        overlap: std_duration("--overlap", args.overlap)?.max(std::time::Duration::from_secs(1)),
        settle: std_duration("--settle", args.settle)?,
        commit_pages: args.commit_pages as usize,
        commit_interval: std_duration("--commit-interval", args.commit_interval)?,
        api: ApiOptions {
            page_size: args.page_size,
            max_rate: args.max_rate,
            request_timeout: std_duration("--request-timeout", args.request_timeout)?,
            max_retries: args.max_retries,
        },
        ingest: IngestOptions {
            target_file_size: args.target_file_size,
            max_entry_size: usize::try_from(args.max_entry_size).unwrap_or(usize::MAX),
            ..IngestOptions::default()
        },
        progress: say && std::io::stderr().is_terminal() && !args.follow,
    };
    let every = std_duration("--every", args.every)?;

    // SIGTERM (systemd, Kubernetes) and Ctrl-C: finish the commit in hand, then stop.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        terminated().await;
        let _ = stop_tx.send(true);
    });

    let mut code = 0;
    loop {
        let result = auditlake::ingest::pull(lake, &opts, stop.clone()).await;
        let metrics = match result {
            Ok(m) => m,
            // A service outlives an outage of the API: said, and tried again next time. Wrong
            // credentials need a person: the service stops.
            Err(e @ auditlake::Error::ApiAuth { .. }) => return Err(e).context("pull failed"),
            Err(e) if args.follow && !*stop.borrow() => {
                let said = crate::redact(&crate::say_once(&anyhow::Error::from(e)));
                eprintln!("error: pull failed (next try in {}): {said}", args.every);
                wait_or_stop(every, &mut stop.clone()).await;
                if *stop.borrow() {
                    return Ok(code);
                }
                continue;
            }
            Err(e) => {
                return Err(e).context(
                    "pull failed (pages committed before the failure stay, with their cursor; the next pull continues from there)",
                );
            }
        };
        if args.follow && args.summary.format == args::SummaryFormat::Json {
            // A service's log: one summary a line.
            println!("{}", serde_json::to_string(&metrics)?);
            std::io::stdout().flush()?;
        } else {
            args.summary.print(say, &metrics, |m| print::pull(lake, m))?;
        }
        if metrics.rows.rejected > 0 || !metrics.rows.skipped_inputs.is_empty() {
            code = EXIT_REJECTED;
        }
        if !args.follow {
            return Ok(if metrics.interrupted { EXIT_INTERRUPTED } else { code });
        }
        if *stop.borrow() {
            return Ok(code);
        }
        wait_or_stop(every, &mut stop.clone()).await;
        if *stop.borrow() {
            return Ok(code);
        }
    }
}

/// The report header's tamper evidence: `verify --quick` of the version the report read.
async fn evidence_line(lake: &Lake, version: u64) -> Result<String> {
    let opts = auditlake::verify::VerifyOptions { quick: true, version: Some(version), public_key: None };
    let r = auditlake::verify::verify(lake, &opts).await.context("checking the tamper evidence failed")?;
    let head = match (&r.chain_head, r.covered_from) {
        (Some(head), Some(from)) => format!("chain head {head} (evidence from version {from})"),
        (None, Some(from)) => format!("version {version} has no evidence record (evidence from version {from})"),
        (None, None) | (Some(_), None) => "no evidence records (`auditlake verify --init` starts them)".to_string(),
    };
    let verdict = if r.intact {
        "`auditlake verify --quick` passed for this version".to_string()
    } else {
        format!(
            "`auditlake verify --quick` FOUND {} problem(s) for this version: run `auditlake verify`",
            r.findings.len()
        )
    };
    Ok(format!("{head}; {verdict}"))
}

/// Sleeps `every`, or less when `stop` turns true.
async fn wait_or_stop(every: std::time::Duration, stop: &mut tokio::sync::watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(every) => {}
        _ = stop.wait_for(|s| *s) => {}
    }
}

/// The API key: the id from --client-id or TORQ_CLIENT_ID, the secret from --client-secret-file
/// or TORQ_CLIENT_SECRET (never a flag: flags show in `ps`).
fn credentials(args: &args::PullArgs) -> Result<auditlake::ingest::torq_api::Credentials> {
    let client_id = args.client_id.clone().filter(|s| !s.trim().is_empty()).ok_or_else(|| {
        auditlake::Error::Credentials(
            "no client id: set TORQ_CLIENT_ID (or --client-id) to the API key's client id".into(),
        )
    })?;
    let client_secret = match &args.client_secret_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| {
                auditlake::Error::Credentials(format!("cannot read --client-secret-file '{}': {e}", path.display()))
            })?
            .trim()
            .to_string(),
        None => std::env::var("TORQ_CLIENT_SECRET").unwrap_or_default().trim().to_string(),
    };
    if client_secret.is_empty() {
        return Err(auditlake::Error::Credentials(
            "no client secret: set TORQ_CLIENT_SECRET or --client-secret-file to the API key's secret".into(),
        )
        .into());
    }
    Ok(auditlake::ingest::torq_api::Credentials { client_id: client_id.trim().to_string(), client_secret })
}

/// A workspace name keeps to letters, digits, `-`, `_` and `.`: it names the cursor in the log.
fn workspace_name(name: &str) -> Result<String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(name.to_string())
    } else {
        Err(usage(format!("invalid --workspace '{name}': use 1 to 64 letters, digits, '-', '_' or '.'")))
    }
}

async fn search(lake: &Lake, args: args::SearchArgs, say: bool) -> Result<u8> {
    check_output(args.output.format, args.output.out.is_some())?;
    let filters = SearchFilters {
        actions: args.action,
        emails: args.email,
        actors: args.actor,
        actor_types: args.actor_type,
        tags: args.tag,
        scenarios: args.scenario,
        ips: args.ip,
        ids: args.id,
        resources: args.resource,
        workspaces: args.workspace,
        text: args.text,
        limit: (args.limit > 0).then_some(args.limit),
        ascending: args.oldest_first,
        all_columns: args.all_columns,
    };
    let session = engine::open(lake, &window(&args.window)?, args.output.as_of_version, &args.engine.engine()).await?;
    let df = auditlake::query::search::search(&session, &filters).await.context("search failed")?;
    let rows = auditlake::query::output::write(df, args.output.format.into(), args.output.out.as_deref())
        .await
        .context("search failed")?;
    if say {
        let reached = Some(rows as usize) == filters.limit;
        eprintln!("{rows} events{}", if reached { " (limit reached; --limit 0 for all)" } else { "" });
    }
    Ok(0)
}

/// Runs `work`, giving up after `limit` (`--timeout`); dropping the work cancels its query.
async fn within(limit: Option<chrono::Duration>, work: impl Future<Output = Result<u8>>) -> Result<u8> {
    let Some(limit) = limit else { return work.await };
    let wait = limit.to_std().map_err(|_| usage("--timeout must be positive"))?;
    match tokio::time::timeout(wait, work).await {
        Ok(result) => result,
        Err(_) => anyhow::bail!("gave up after --timeout {}s; nothing was written to the lake", limit.num_seconds()),
    }
}

/// Parquet is binary: it goes to a file, never to a terminal or a pipe by accident.
fn check_output(format: ResultFormat, has_out: bool) -> Result<()> {
    if format == ResultFormat::Parquet && !has_out {
        return Err(usage("--format parquet needs --out FILE (Parquet is binary)"));
    }
    Ok(())
}

async fn query(lake: &Lake, args: QueryArgs, say: bool) -> Result<u8> {
    if args.list {
        print::named_queries(named::catalog(args.queries.as_deref())?.values())?;
        return Ok(0);
    }
    check_output(args.output.format, args.output.out.is_some())?;
    if args.sql.is_some() && !args.params.is_empty() {
        return Err(usage("--param applies to named queries (--name)"));
    }
    // A name or its parameters that are wrong are found before the lake is opened.
    let named = match &args.name {
        Some(name) => {
            let q = named::find(name, args.queries.as_deref())?;
            let given: HashMap<String, String> = args.params.iter().cloned().collect();
            let params = q.param_values(&given)?;
            Some((q, params))
        }
        None => None,
    };
    let session = engine::open(lake, &window(&args.window)?, args.output.as_of_version, &args.engine.engine()).await?;
    if session.version.is_none() && say {
        eprintln!(
            "note: no table at {} yet; the result is empty (run `auditlake ingest` first)",
            lake.display_path(auditlake::schema::TABLE_NAME)
        );
    }
    let df = match (&args.sql, named) {
        (Some(sql), _) => engine::sql(&session, sql).await.context("query failed")?,
        (None, Some((q, params))) => {
            let df = engine::sql(&session, &q.sql)
                .await
                .with_context(|| format!("named query '{}' ({}) failed", q.name, q.origin))?;
            match params {
                Some(p) => df.with_param_values(p)?,
                None => df,
            }
        }
        (None, None) => return Err(usage("give SQL, --name NAME or --list")),
    };
    let rows = auditlake::query::output::write(df, args.output.format.into(), args.output.out.as_deref())
        .await
        .context("query failed")?;
    if let (true, Some(out)) = (say, &args.output.out) {
        eprintln!("wrote {rows} rows to {}", out.display());
    }
    Ok(0)
}

/// Resolves when the process gets SIGTERM (systemd, Kubernetes) or Ctrl-C.
async fn terminated() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let term = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

async fn serve(lake: &Lake, args: args::ServeArgs, say: bool) -> Result<u8> {
    use auditlake::query::serve::{ServeOptions, Server, Users, hash_password};
    if args.hash_password {
        let mut password = String::new();
        std::io::stdin().read_line(&mut password).context("reading the password from stdin")?;
        let password = password.trim_end_matches(['\n', '\r']);
        if password.is_empty() {
            return Err(usage("--hash-password reads the password from stdin; it was empty"));
        }
        println!("{}", hash_password(password));
        return Ok(0);
    }
    let users_path = args.users.expect("clap requires --users without --hash-password");
    let opts = ServeOptions {
        listen: args.listen,
        tls: args.tls_cert.zip(args.tls_key),
        users: Users::read(&users_path)?,
        insecure: args.insecure,
        max_connections: args.max_connections,
        statement_timeout: std_duration("--statement-timeout", args.statement_timeout)?,
        query_memory: usize::try_from(args.query_memory).unwrap_or(usize::MAX),
        server_memory: engine::memory_limit()?,
        shutdown_grace: std_duration("--shutdown-grace", args.shutdown_grace)?,
        queries_dir: args.queries,
    };
    let server = Server::bind(lake, &opts).await.context("serve failed")?;
    let addr = server.local_addr()?;
    if say {
        let tls = if opts.tls.is_some() { "TLS" } else { "no TLS" };
        eprintln!(
            "serving {} on {addr} ({tls}, {} users, at most {} connections); SIGTERM or Ctrl-C stops",
            lake.display_path(auditlake::schema::TABLE_NAME),
            opts.users.len(),
            opts.max_connections
        );
    }
    let metrics = server.run(terminated()).await?;
    if say {
        eprintln!(
            "stopped: {} connections served, {} refused as too many, {} queries cancelled at shutdown",
            metrics.connections, metrics.refused_busy, metrics.cancelled_at_shutdown
        );
    }
    Ok(0)
}

async fn report(lake: &Lake, args: ReportArgs, say: bool) -> Result<u8> {
    if args.list {
        print::report_sections(&report::catalog::sections(args.queries.as_deref())?)?;
        return Ok(0);
    }
    let (Some(from), Some(to)) = (args.from, args.to) else { return Err(usage("--from and --to are required")) };
    let format = match (args.format, &args.out) {
        (Some(f), _) => f,
        (None, Some(out)) => match out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("html" | "htm") => ReportFormat::Html,
            Some("json") => ReportFormat::Json,
            Some(_) => ReportFormat::Md,
            // A path without an extension is taken as the CSV folder.
            None => ReportFormat::Csv,
        },
        (None, None) => ReportFormat::Md,
    };
    let format = match format {
        ReportFormat::Html => Format::Html,
        ReportFormat::Md => Format::Markdown,
        ReportFormat::Json => Format::Json,
        ReportFormat::Csv => Format::Csv,
    };
    if format == Format::Csv && args.out.is_none() {
        return Err(usage("--format csv writes one file per table: give a folder with --out DIR"));
    }
    let opts = report::ReportOptions {
        from,
        to,
        tz: args.tz,
        business_hours: args.business_hours,
        workspaces: args.workspace,
        sections: args.section,
        as_of_version: args.as_of_version,
        burst_failures: args.burst_failures,
        burst_minutes: args.burst_minutes,
        gap_hours: args.gap_hours,
        queries_dir: args.queries,
        generated_at: generation_time()?,
        engine: args.engine.engine(),
    };
    let started = std::time::Instant::now();
    let spinner = print::Spinner::start(say, "building the report");
    let mut report = report::build(lake, &opts).await.context("report failed")?;
    if let Some(version) = report.header.table_version {
        report.header.evidence = Some(evidence_line(lake, version).await?);
    }
    spinner.stop();
    let body = match format {
        Format::Html => Some(render::html::render(&report)),
        Format::Markdown => Some(render::markdown::render(&report)),
        Format::Json => Some(render::json(&report)),
        Format::Csv => None,
    };
    let target = match (&body, &args.out) {
        (Some(body), Some(path)) => {
            std::fs::write(path, body).with_context(|| format!("cannot write the report to {}", path.display()))?;
            path.display().to_string()
        }
        (Some(body), None) => {
            std::io::stdout().lock().write_all(body.as_bytes())?;
            "stdout".to_string()
        }
        (None, Some(dir)) => {
            let files = render::csv::write(&report, dir)?;
            format!("{} ({} files)", dir.display(), files.len())
        }
        (None, None) => unreachable!("checked above: csv needs --out"),
    };
    if say {
        let tables: usize = report.sections.iter().map(|s| s.tables.len()).sum();
        eprintln!(
            "report: {} events, {} section{}, {tables} tables from table version {} in {:.2} s, {} to {target}",
            report.header.events,
            report.sections.len(),
            if report.sections.len() == 1 { "" } else { "s" },
            report.header.table_version.map_or("none".to_string(), |v| v.to_string()),
            started.elapsed().as_secs_f64(),
            format.name()
        );
    }
    Ok(0)
}

/// Now, or `SOURCE_DATE_EPOCH` (seconds) when set, so a rerun can reproduce a report exactly.
fn generation_time() -> Result<chrono::DateTime<chrono::Utc>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) => {
            let secs: i64 =
                s.trim().parse().map_err(|_| usage(format!("invalid SOURCE_DATE_EPOCH '{s}': expected seconds")))?;
            chrono::DateTime::from_timestamp(secs, 0)
                .ok_or_else(|| usage(format!("SOURCE_DATE_EPOCH '{s}' is out of range")))
        }
        Err(_) => Ok(chrono::Utc::now()),
    }
}

/// `export ocsf`: flags to options, the run, its summary.
async fn export_ocsf(lake: &Lake, args: args::OcsfArgs, say: bool) -> Result<u8> {
    use auditlake::export::{ExportFormat, ExportOptions, SecurityLake, export};
    let since = Window::parse(args.since.as_deref(), None, chrono::Utc::now()).map_err(usage)?.since;
    let name_ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    for (flag, value) in [("--region", &args.region), ("--account-id", &args.account_id)] {
        if let Some(v) = value.as_deref().filter(|v| !name_ok(v)) {
            return Err(usage(format!("{flag} '{v}': letters, digits, '-', '_' and '.' only (it names a folder)")));
        }
    }
    if !name_ok(&args.source_prefix) {
        return Err(usage(format!("--source-prefix '{}': letters, digits, '-', '_' and '.' only", args.source_prefix)));
    }
    let opts = ExportOptions {
        out: args.out,
        format: match args.format {
            args::OcsfFormat::Parquet => ExportFormat::Parquet,
            args::OcsfFormat::Ndjson => ExportFormat::Ndjson,
        },
        since,
        security_lake: args.region.zip(args.account_id).map(|(region, account_id)| SecurityLake { region, account_id }),
        source_prefix: args.source_prefix,
        rows_per_file: usize::try_from(args.rows_per_file).unwrap_or(usize::MAX),
        progress: say && std::io::stderr().is_terminal(),
    };
    let summary = export(lake, &opts).await.context("export failed")?;
    args::SummaryArgs { format: args.summary }.print(say, &summary, print::export)?;
    Ok(0)
}
