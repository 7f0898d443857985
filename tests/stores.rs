//! One storage conformance suite, written once as a function of the lake URL (as object_store's
//! own `integration.rs` is), run on every store a user would pick that has a server here: a local
//! folder, `memory://`, S3 (moto) and Azure Blob Storage (Azurite, `scripts/store-emulators.sh`).
//! GCS is not run: see the README's Object storage section for why.
//!
//! Every step's counts are checked against an independent read of the feeds (serde_json).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use auditlake::export::{ExportFormat, ExportOptions};
use auditlake::ingest::{IngestOptions, ingest};
use auditlake::maintain::{self, CompactOptions, RetentionOptions, VacuumOptions};
use auditlake::time::Window;
use auditlake::{Error, Lake};
use chrono::{Duration, Utc};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;

fn ingest_opts(inputs: &[String]) -> IngestOptions {
    IngestOptions {
        inputs: inputs.to_vec(),
        batch_rows: 8 * 1024,
        target_file_size: 256 << 20,
        max_entry_size: 8 << 20,
        ..Default::default()
    }
}

/// Ingests; a run that lost the race to a concurrent ingest of the same events commits nothing
/// and says so, and its rerun finishes the job.
async fn ingest_until_done(lake: &Lake, inputs: &[String]) {
    for _ in 0..5 {
        match ingest(lake, &ingest_opts(inputs)).await {
            Ok(_) => return,
            Err(Error::ConcurrentOverlap) => continue,
            Err(e) => panic!("ingest of {inputs:?} into {lake:?}: {e}"),
        }
    }
    panic!("ingest of {inputs:?} lost five races in a row");
}

/// The suite. `upload` puts a local feed into the store and returns its URL there (`None`: the
/// store cannot be an input location, e.g. `memory://` across processes is meaningless).
async fn conformance(lake_url: &str, upload: Option<&dyn Fn(&Path) -> String>) {
    let dir = tempfile::tempdir().unwrap();
    let today = Utc::now().date_naive();
    let start = (today - Duration::days(95)).format("%Y-%m-%d").to_string();
    let feeds: Vec<PathBuf> = (0..3)
        .map(|i| {
            let path = dir.path().join(format!("feed-{i}.ndjson"));
            common::generate(&path, 3_000, 10, &start, 100 + i);
            path
        })
        .collect();
    let lake = Lake::open(lake_url).unwrap();

    // Ingest from a local file, and from the store itself when it can hold inputs.
    ingest_until_done(&lake, &[feeds[0].display().to_string()]).await;
    let second = upload.map_or_else(|| feeds[1].display().to_string(), |up| up(&feeds[1]));
    ingest_until_done(&lake, &[second]).await;
    // Two ingests of the same new feed at once: one commits; the other finds the first's files
    // hold its ids (reading them back from the store), commits nothing, and its rerun finishes.
    let same = [feeds[2].display().to_string()];
    tokio::join!(ingest_until_done(&lake, &same), ingest_until_done(&lake, &same));
    let expected = common::expected_entries(&feeds);
    common::assert_counts_match(&lake, &expected).await;

    let compact = CompactOptions { target_size: 256 << 20, window: Window::default(), dry_run: false };
    maintain::compact(&lake, &compact).await.unwrap();
    common::assert_counts_match(&lake, &expected).await;

    let keep = RetentionOptions { keep: Duration::days(90), dry_run: false, force: false, today };
    maintain::retention(&lake, &keep).await.unwrap();
    let cutoff = (today - Duration::days(90)).format("%Y-%m-%d").to_string();
    let kept: Vec<_> = expected.iter().filter(|e| common::field(e, "timestamp")[..10] >= *cutoff).cloned().collect();
    assert!(!kept.is_empty() && kept.len() < expected.len());
    common::assert_counts_match(&lake, &kept).await;

    let vacuum = VacuumOptions { older_than: Duration::zero(), dry_run: false, force: true };
    maintain::vacuum(&lake, &vacuum).await.unwrap();
    // The table's folders hold exactly the live files and the log.
    let table = lake.existing().await.unwrap();
    let live: BTreeSet<String> = table.snapshot().unwrap().log_data().iter().map(|f| f.path().to_string()).collect();
    let root = lake.path("audit_log");
    let stored: BTreeSet<String> = lake
        .store()
        .list(Some(&root))
        .map_ok(|m| m.location.as_ref().strip_prefix(&format!("{}/", root.as_ref())).unwrap().to_string())
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .into_iter()
        .filter(|p| !p.starts_with("_delta_log/"))
        .collect();
    assert_eq!(stored, live, "{lake_url}: files after vacuum");
    common::assert_counts_match(&lake, &kept).await;

    let history = maintain::history(&lake, None).await.unwrap();
    let operations: Vec<_> = history.iter().filter_map(|h| h.operation.clone()).collect();
    for op in ["WRITE", "OPTIMIZE", "DELETE", "VACUUM END"] {
        assert!(operations.iter().any(|o| o == op), "{lake_url}: no {op} in the history: {operations:?}");
    }

    let report = auditlake::report::build(
        &lake,
        &auditlake::report::ReportOptions {
            from: today - Duration::days(95),
            to: today,
            tz: "UTC".into(),
            business_hours: auditlake::report::parse_business_hours("08:00-18:00").unwrap(),
            workspaces: Vec::new(),
            sections: Vec::new(),
            as_of_version: None,
            burst_failures: 5,
            burst_minutes: 10,
            gap_hours: 24,
            queries_dir: None,
            generated_at: Utc::now(),
            engine: auditlake::engine::Engine::Local,
        },
    )
    .await
    .unwrap();
    assert!(!report.sections.is_empty());

    let verified = auditlake::verify::verify(&lake, &Default::default()).await.unwrap();
    assert!(verified.intact, "{lake_url}: {:?}", verified.findings);

    let out = format!("{}-ocsf", lake_url.trim_end_matches('/'));
    let opts = ExportOptions { out, format: ExportFormat::Ndjson, ..ExportOptions::default() };
    let exported = auditlake::export::export(&lake, &opts).await.unwrap();
    assert_eq!(exported.events, kept.len() as u64, "{lake_url}: events exported");
    assert_eq!(auditlake::export::export(&lake, &opts).await.unwrap().events, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_folder() {
    let dir = tempfile::tempdir().unwrap();
    conformance(dir.path().join("lake").to_str().unwrap(), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory() {
    conformance("memory://conformance", None).await;
}

/// Puts a local feed at `<base>/inputs/<name>` through `store` and returns its URL.
fn uploader(store: std::sync::Arc<dyn object_store::ObjectStore>, base: String) -> impl Fn(&Path) -> String {
    move |feed: &Path| {
        let name = feed.file_name().unwrap().to_str().unwrap();
        let bytes = std::fs::read(feed).unwrap();
        let store = store.clone();
        let key = format!("inputs/{name}");
        std::thread::scope(|s| {
            s.spawn(|| {
                tokio::runtime::Runtime::new()
                    .unwrap()
                    .block_on(store.put(&key.as_str().into(), bytes.into()))
                    .unwrap();
            });
        });
        format!("{base}/inputs/{name}")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_on_a_real_server() {
    let bucket = common::s3::bucket("conformance");
    let store = auditlake::lake::s3_store(&url::Url::parse(&format!("s3://{bucket}")).unwrap()).unwrap();
    let up = uploader(store, format!("s3://{bucket}"));
    conformance(&format!("s3://{bucket}/lake"), Some(&up)).await;
}

#[cfg(feature = "azure")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_blob_storage_on_azurite() {
    let endpoint = std::env::var("AUDITLAKE_TEST_AZURE_ENDPOINT")
        .expect("AUDITLAKE_TEST_AZURE_ENDPOINT is not set: run the tests with ./scripts/test.sh, which starts Azurite");
    let container = format!("conformance{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let python = std::env::var("AUDITLAKE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stores/azure_container.py");
    let made = std::process::Command::new(python).arg(script).args([&endpoint, &container]).status().unwrap();
    assert!(made.success(), "could not create container {container}");
    // SAFETY: nextest runs each test in its own process; set before any thread reads them.
    unsafe {
        std::env::set_var("AZURE_STORAGE_USE_EMULATOR", "true");
        std::env::set_var("AZURITE_BLOB_STORAGE_URL", &endpoint);
    }
    let store = auditlake::lake::cloud_store(&url::Url::parse(&format!("az://{container}")).unwrap()).unwrap();
    let up = uploader(store, format!("az://{container}"));
    conformance(&format!("az://{container}/lake"), Some(&up)).await;
}
