//! Maintenance jobs: compaction, retention, vacuum and history, on a local lake (and memory://
//! where the job does not depend on file ages).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use auditlake::Lake;
use auditlake::engine::{self, Engine};
use auditlake::ingest::{IngestOptions, ingest};
use auditlake::maintain::{self, CompactOptions, RetentionOptions, VacuumOptions};
use auditlake::time::Window;
use chrono::{Duration, NaiveDate};
use common::rows;
use datafusion::arrow::util::display::array_value_to_string;

fn write_batch(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, lines.join("\n")).unwrap();
    p
}

fn event(i: usize, day: u32) -> String {
    format!(
        r#"{{"id":"ev-{i}","timestamp":"2026-09-{day:02}T{:02}:{:02}:00Z","action":"Workflow updated","email":"u{}@acme.example","extra_data":{{"tags":["t{}"]}}}}"#,
        i % 24,
        i % 60,
        i % 5,
        i % 3
    )
}

async fn small_ingests(lake: &Lake, dir: &Path, runs: usize, per_run: usize) {
    for r in 0..runs {
        let lines: Vec<String> = (0..per_run).map(|k| event(r * per_run + k, 1 + (r % 3) as u32)).collect();
        let p = write_batch(dir, &format!("b{r}.ndjson"), &lines);
        ingest(lake, &IngestOptions { inputs: vec![p.display().to_string()], ..Default::default() }).await.unwrap();
    }
}

const SUMMARY: &str =
    "SELECT CAST(date AS VARCHAR), action, email, count(*) FROM audit_log GROUP BY 1, 2, 3 ORDER BY 1, 2, 3";

fn compact_opts(dry_run: bool) -> CompactOptions {
    CompactOptions { target_size: 256 << 20, window: Window::default(), dry_run }
}

#[tokio::test]
async fn compaction_after_200_small_ingests_keeps_results_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(&dir.path().join("lake").display().to_string()).unwrap();
    small_ingests(&lake, dir.path(), 200, 5).await;
    let before = rows(&lake, SUMMARY).await;
    let table = lake.load(None).await.unwrap().unwrap();
    let stats = auditlake::lake::table_stats(&lake, &table).await.unwrap();
    assert_eq!(stats.files, 200);

    let plan = maintain::compact(&lake, &compact_opts(true)).await.unwrap();
    assert_eq!(plan.partitions.len(), 3);
    assert_eq!(plan.table_version, None, "a dry run commits nothing");

    let m = maintain::compact(&lake, &compact_opts(false)).await.unwrap();
    assert_eq!((m.files_before, m.files_after, m.rows, m.duplicates_removed), (200, 3, 1000, 0));
    assert!(m.checkpoint);
    assert_eq!(rows(&lake, SUMMARY).await, before);
    let table = lake.load(None).await.unwrap().unwrap();
    let after = auditlake::lake::table_stats(&lake, &table).await.unwrap();
    assert!(after.partitions.iter().all(|p| p.files == 1), "{after:?}");
    // A typical aggregation reads every live file: fewer, larger files are fewer bytes to read
    // (one footer, one dictionary per column instead of two hundred).
    assert!(after.bytes * 2 < stats.bytes, "{} bytes before, {} after", stats.bytes, after.bytes);
    assert!(
        std::fs::read_dir(dir.path().join("lake/audit_log/_delta_log")).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".checkpoint.parquet"))
    );

    let again = maintain::compact(&lake, &compact_opts(false)).await.unwrap();
    assert!(again.partitions.is_empty());
    assert_eq!(again.table_version, None, "nothing to do, nothing committed");
}

#[tokio::test]
async fn compaction_removes_duplicates_that_slipped_in() {
    let lake = Lake::open(&format!("memory://dups-{}", uuid::Uuid::new_v4().simple())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    small_ingests(&lake, dir.path(), 2, 3).await;
    // A writer that does not dedupe (another tool, or a bug) appends a copy of ev-0.
    let table = lake.load(None).await.unwrap().unwrap();
    let mut b = auditlake::ingest::batch::BatchBuilder::new(chrono::Utc::now().timestamp_micros());
    let text = event(0, 1);
    b.push(&auditlake::ingest::normalise::normalise(text.as_bytes()).unwrap(), "other-tool");
    table.write(vec![b.finish().unwrap()]).await.unwrap();
    assert_eq!(rows(&lake, "SELECT count(*) FROM audit_log WHERE id = 'ev-0'").await, vec![vec!["2".to_string()]]);

    let m = maintain::compact(&lake, &compact_opts(false)).await.unwrap();
    assert_eq!(m.duplicates_removed, 1);
    assert_eq!(
        rows(&lake, "SELECT count(*), count(DISTINCT id) FROM audit_log").await,
        vec![vec!["6".to_string(), "6".to_string()]]
    );
    // The copy that was ingested first is the one kept.
    assert_eq!(
        rows(&lake, "SELECT source FROM audit_log WHERE id = 'ev-0'").await[0][0].ends_with("b0.ndjson:1"),
        true
    );
}

/// One read of the reader loop: when it ran, the version it saw and the count it got.
#[derive(Debug, Clone)]
struct Read {
    start: Instant,
    end: Instant,
    version: Option<u64>,
    count: String,
}

/// Reads that started while the compaction ran (`from`..`to`).
fn during(reads: &[Read], from: Instant, to: Instant) -> usize {
    reads.iter().filter(|r| r.start > from && r.start < to).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_see_a_committed_count_while_compaction_runs() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(&dir.path().join("lake").display().to_string()).unwrap();
    small_ingests(&lake, dir.path(), 80, 10).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let reader = {
        let (lake, stop) = (lake.clone(), stop.clone());
        tokio::spawn(async move {
            let mut reads = Vec::new();
            let mut started = Some(started_tx);
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                let session = engine::open(&lake, &Window::default(), None, &Engine::Local).await.unwrap();
                let batches =
                    engine::sql(&session, "SELECT count(*) FROM audit_log").await.unwrap().collect().await.unwrap();
                let count = array_value_to_string(batches[0].column(0), 0).unwrap();
                reads.push(Read { start, end: Instant::now(), version: session.version, count });
                if let Some(tx) = started.take() {
                    let _ = tx.send(());
                }
            }
            reads
        })
    };
    started_rx.await.unwrap();
    let from = Instant::now();
    let m = maintain::compact(&lake, &compact_opts(false)).await.unwrap();
    let to = Instant::now();
    // A few more reads after the commit, so that the new version is seen too.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    let reads = reader.await.unwrap();

    assert!(reads.iter().all(|r| r.count == "800"), "{reads:?}");
    let overlapping = during(&reads, from, to);
    assert!(overlapping > 0, "no read ran while the compaction did ({} reads in all)", reads.len());
    let committed = m.table_version.unwrap();
    assert!(reads.iter().any(|r| r.version < Some(committed)), "no read saw the version before the compaction");
    assert!(reads.iter().any(|r| r.version == Some(committed)), "no read saw the compaction's version");
    assert!(reads.iter().all(|r| r.end >= r.start));
}

#[test]
fn the_overlap_check_fails_when_reads_miss_the_compaction() {
    let t0 = Instant::now();
    let later = t0 + std::time::Duration::from_millis(10);
    let read = Read { start: t0, end: t0, version: Some(1), count: "1".into() };
    assert_eq!(during(&[read.clone()], later, later + std::time::Duration::from_millis(10)), 0);
    assert_eq!(during(&[Read { start: later, ..read }], t0, later + std::time::Duration::from_millis(1)), 1);
}

#[tokio::test]
async fn retention_drops_old_partitions_and_refuses_too_short() {
    let lake = Lake::open(&format!("memory://ret-{}", uuid::Uuid::new_v4().simple())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    small_ingests(&lake, dir.path(), 3, 4).await; // 2026-09-01 .. 2026-09-03
    let today = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap(); // 92 days keeps 09-01 onwards
    let opts =
        |keep: i64, dry_run: bool, force: bool| RetentionOptions { keep: Duration::days(keep), dry_run, force, today };

    let err = maintain::retention(&lake, &opts(30, false, false)).await.unwrap_err();
    assert!(err.to_string().contains("minimum is 90 days"), "{err}");

    let plan = maintain::retention(&lake, &opts(90, true, false)).await.unwrap();
    assert_eq!(plan.dropped_partitions, vec!["2026-09-01", "2026-09-02"]);
    assert_eq!(plan.table_version, None);
    assert_eq!(rows(&lake, "SELECT count(*) FROM audit_log").await[0][0], "12");

    let m = maintain::retention(&lake, &opts(90, false, false)).await.unwrap();
    assert_eq!((m.rows_removed, m.files_removed), (8, 2));
    assert_eq!(
        rows(&lake, "SELECT CAST(date AS VARCHAR), count(*) FROM audit_log GROUP BY 1").await,
        vec![vec!["2026-09-03".to_string(), "4".to_string()]]
    );
    let again = maintain::retention(&lake, &opts(90, false, false)).await.unwrap();
    assert_eq!(again.table_version, None);
}

#[tokio::test]
async fn vacuum_deletes_only_unreferenced_files_and_keeps_a_safety_window() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(&dir.path().join("lake").display().to_string()).unwrap();
    small_ingests(&lake, dir.path(), 6, 5).await;
    maintain::compact(&lake, &compact_opts(false)).await.unwrap();
    let before = rows(&lake, SUMMARY).await;

    let err =
        maintain::vacuum(&lake, &VacuumOptions { older_than: Duration::minutes(5), dry_run: false, force: false })
            .await
            .unwrap_err();
    assert!(err.to_string().contains("running queries may still read them"), "{err}");
    // Inside the default window: nothing is old enough yet.
    let m = maintain::vacuum(&lake, &VacuumOptions { older_than: Duration::hours(24), dry_run: false, force: false })
        .await
        .unwrap();
    assert!(m.files_deleted.is_empty());
    let dry = maintain::vacuum(&lake, &VacuumOptions { older_than: Duration::zero(), dry_run: true, force: true })
        .await
        .unwrap();
    assert_eq!(dry.files_deleted.len(), 6);
    let m = maintain::vacuum(&lake, &VacuumOptions { older_than: Duration::zero(), dry_run: false, force: true })
        .await
        .unwrap();
    assert_eq!(m.files_deleted.len(), 6);
    assert_eq!(rows(&lake, SUMMARY).await, before);
}

#[tokio::test]
async fn history_lists_what_was_done() {
    let lake = Lake::open(&format!("memory://hist-{}", uuid::Uuid::new_v4().simple())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    small_ingests(&lake, dir.path(), 6, 2).await;
    maintain::compact(&lake, &compact_opts(false)).await.unwrap();
    let h = maintain::history(&lake, None).await.unwrap();
    let ops: Vec<_> = h.iter().map(|e| (e.version, e.operation.clone().unwrap_or_default())).collect();
    assert_eq!(ops[0], (7, "OPTIMIZE".to_string()));
    assert_eq!(ops[1], (6, "WRITE".to_string()));
    assert_eq!(ops.last().unwrap(), &(0, "CREATE TABLE".to_string()));
    assert_eq!(ops.len(), 8);
}

/// Regression (issue 19): vacuum with a window shorter than a running ingest deleted files the
/// ingest had written but not yet committed, and the ingest then committed files that were gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vacuum_never_deletes_a_running_ingests_files() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(&dir.path().join("lake").display().to_string()).unwrap();
    small_ingests(&lake, dir.path(), 1, 10).await;
    let feed = dir.path().join("feed.ndjson");
    let opts = auditlake::generate::GenerateOptions { events: 60_000, days: 5, ..Default::default() };
    auditlake::generate::generate(&opts, &mut std::io::BufWriter::new(std::fs::File::create(&feed).unwrap())).unwrap();

    // Small files, so the ingest finishes (and uploads) many of them while it runs.
    let ingest_opts =
        IngestOptions { inputs: vec![feed.display().to_string()], target_file_size: 64 << 10, ..Default::default() };
    let running = {
        let lake = lake.clone();
        tokio::spawn(async move { ingest(&lake, &ingest_opts).await })
    };
    let force_now = VacuumOptions { older_than: Duration::zero(), dry_run: false, force: true };
    let mut vacuums = 0;
    while !running.is_finished() {
        maintain::vacuum(&lake, &force_now).await.unwrap();
        vacuums += 1;
    }
    let m = running.await.unwrap().unwrap();
    assert!(vacuums > 1, "the ingest finished before a vacuum could race it");
    assert!(m.files_written > 5, "{} files: too few to race", m.files_written);
    assert_eq!(rows(&lake, "SELECT count(*) FROM audit_log").await[0][0], (10 + m.ingested).to_string());
    // Once no writer runs, vacuum deletes what is unreferenced again.
    maintain::compact(&lake, &compact_opts(false)).await.unwrap();
    let m = maintain::vacuum(&lake, &force_now).await.unwrap();
    assert!(!m.files_deleted.is_empty());
}
