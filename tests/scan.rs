//! The local read path against DataFusion's own: the live-file scan with its date pruning, and
//! aggregations that read their keys as Parquet dictionaries, give DataFusion's answers.

mod common;

use std::sync::Arc;

use auditlake::Lake;
use auditlake::engine::{self, Engine};
use auditlake::ingest::{IngestOptions, ingest};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::physical_plan::{ExecutionPlan, displayable};
use datafusion::prelude::SessionContext;

/// A lake of 3 days of generated events, ingested in two runs (two files a day).
async fn lake(dir: &std::path::Path) -> Lake {
    let lake = Lake::open(&dir.join("lake").display().to_string()).unwrap();
    for (seed, start) in [(1, "2026-09-01"), (2, "2026-09-02")] {
        let feed = dir.join(format!("feed-{seed}.ndjson"));
        common::generate(&feed, 20_000, 2, start, seed);
        let opts = IngestOptions { inputs: vec![feed.display().to_string()], ..Default::default() };
        ingest(&lake, &opts).await.unwrap();
    }
    lake
}

/// `audit_log` in auditlake's local session, and the same scan in a session of DataFusion's
/// operators alone, with small batches so that each dictionary spans several.
async fn sessions(lake: &Lake) -> (SessionContext, SessionContext) {
    sessions_with(lake, Arc::new(RuntimeEnv::default())).await
}

async fn sessions_with(lake: &Lake, runtime: Arc<RuntimeEnv>) -> (SessionContext, SessionContext) {
    let config = engine::session_config().unwrap().with_batch_size(1000).with_target_partitions(2);
    let ours = engine::local_context(config.clone(), runtime);
    let plain = SessionContext::new_with_config(config);
    for ctx in [&ours, &plain] {
        let (df, _) = engine::base_table(lake, ctx, None, &Engine::Local).await.unwrap();
        ctx.register_table("audit_log", df.into_view()).unwrap();
    }
    (ours, plain)
}

async fn answer(ctx: &SessionContext, sql: &str) -> (String, String) {
    let (rows, plan) = answer_and_plan(ctx, sql).await;
    (rows, displayable(plan.as_ref()).indent(true).to_string())
}

async fn answer_and_plan(ctx: &SessionContext, sql: &str) -> (String, Arc<dyn ExecutionPlan>) {
    let df = engine::sql_in(ctx, sql).await.unwrap();
    let plan = df.clone().create_physical_plan().await.unwrap();
    (pretty_format_batches(&df.collect().await.unwrap()).unwrap().to_string(), plan)
}

/// Whether some operator of `plan` passes on a dictionary column.
fn reads_dictionaries(plan: &Arc<dyn ExecutionPlan>) -> bool {
    let mut found = false;
    plan.apply(|node| {
        found |= node.schema().fields().iter().any(|f| matches!(f.data_type(), DataType::Dictionary(..)));
        Ok(if found { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
    })
    .unwrap();
    found
}

#[tokio::test]
async fn dictionary_keys_give_datafusions_answers() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake(dir.path()).await;
    let (ours, plain) = sessions(&lake).await;
    // (query, whether its keys are read as dictionaries)
    let queries = [
        ("SELECT action, count(*) AS n FROM audit_log GROUP BY action ORDER BY n DESC, action", true),
        (
            "SELECT actor_name, actor_type, email, count(*) AS n, min(timestamp), max(timestamp) FROM audit_log \
             GROUP BY 1, 2, 3 ORDER BY n DESC, 1, 2, 3",
            true,
        ),
        (
            "SELECT scenario_id, count(*) AS n, count(resource_id), min(resource_id) FROM audit_log \
             WHERE scenario_id IS NOT NULL GROUP BY scenario_id ORDER BY n DESC, scenario_id",
            true,
        ),
        // Nulls are a group of their own.
        ("SELECT actor_type, count(*) FROM audit_log GROUP BY 1 ORDER BY 1", true),
        // A filter on another column leaves some dictionary values without rows: no group for them.
        ("SELECT action, count(*) FROM audit_log WHERE actor_type = 'api_key' GROUP BY 1 ORDER BY 1", true),
        ("SELECT action, count(*) FROM audit_log WHERE date = DATE '2026-09-02' GROUP BY 1 ORDER BY 1", true),
        // A key an aggregate also reads keeps its type.
        ("SELECT action, max(action), count(*) FROM audit_log GROUP BY 1 ORDER BY 1", false),
        // Distinct counts of strings, over dictionary keys and over unnested tags.
        (
            "SELECT scenario_id, count(*) AS n, count(DISTINCT resource_id) FROM audit_log \
             WHERE scenario_id IS NOT NULL GROUP BY scenario_id ORDER BY n DESC, scenario_id",
            true,
        ),
        (
            "SELECT tag, count(*) AS n, count(DISTINCT resource_id), count(DISTINCT actor_name) FROM \
             (SELECT unnest(tags) AS tag, resource_id, actor_name FROM audit_log WHERE tags IS NOT NULL) \
             GROUP BY tag ORDER BY n DESC, tag",
            false,
        ),
        (
            "SELECT action, count(DISTINCT resource_id) AS k, count(DISTINCT email) FROM audit_log \
             WHERE actor_type = 'api_key' GROUP BY action ORDER BY k DESC, action",
            true,
        ),
        // Keys in another order than the scan's columns: the projection between is rebuilt.
        (
            "SELECT count(*), count(DISTINCT scenario_id) FROM \
             (SELECT DISTINCT scenario_id, resource_id FROM audit_log WHERE scenario_id IS NOT NULL)",
            true,
        ),
        // Keys with a column that is not read as a dictionary.
        ("SELECT action, resource_id, count(*) FROM audit_log GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 20", true),
    ];
    for (sql, dictionaries) in queries {
        let (want, _) = answer(&plain, sql).await;
        let (got, plan) = answer_and_plan(&ours, sql).await;
        let shown = displayable(plan.as_ref()).indent(true).to_string();
        assert_eq!(got, want, "{sql}\n{shown}");
        assert!(shown.contains("ViewGroupsAggregateExec"), "{sql}: not used:\n{shown}");
        assert_eq!(reads_dictionaries(&plan), dictionaries, "{sql}:\n{shown}");
    }
}

#[tokio::test]
async fn a_date_filter_opens_only_that_days_files() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake(dir.path()).await;
    let (ours, _) = sessions(&lake).await;
    let pick = |filter: &str| {
        format!("SELECT count(*), min(timestamp), max(timestamp), count(DISTINCT action) FROM audit_log WHERE {filter}")
    };
    let (got, plan) = answer(&ours, &pick("date = DATE '2026-09-03'")).await;
    let (want, _) = answer(&ours, &pick("CAST(timestamp AS DATE) = DATE '2026-09-03'")).await;
    assert_eq!(got, want);
    assert!(!got.contains("| 0 "), "{got}");
    // Only 2026-09-03's file is read (one ingest wrote it), and no filter is left above the scan.
    assert_eq!(plan.matches("date=2026-09-03").count(), 1, "{plan}");
    assert!(!plan.contains("date=2026-09-01") && !plan.contains("date=2026-09-02"), "{plan}");
    assert!(!plan.contains("FilterExec"), "{plan}");
}

#[tokio::test]
async fn the_log_read_directly_lists_the_kernels_files_at_every_version() {
    use auditlake::lake::log;
    use auditlake::maintain::{self, CompactOptions};
    let dir = tempfile::tempdir().unwrap();
    // Versions 0-2: the table and two ingests (two files a day for 2026-09-02); 3: a compaction
    // removing them with a checkpoint; 4: one more ingest after the checkpoint.
    let lake = lake(dir.path()).await;
    let opts = CompactOptions { target_size: 256 << 20, window: Default::default(), dry_run: false };
    assert!(maintain::compact(&lake, &opts).await.unwrap().checkpoint);
    let feed = dir.path().join("feed-3.ndjson");
    common::generate(&feed, 5_000, 1, "2026-09-04", 3);
    ingest(&lake, &IngestOptions { inputs: vec![feed.display().to_string()], ..Default::default() }).await.unwrap();

    let newest = log::read(&lake, None).await.unwrap().expect("a log to read").version;
    assert_eq!(newest, 4);
    let mut removed_some = false;
    for version in 0..=newest {
        let ours = log::read(&lake, Some(version)).await.unwrap().expect("a log to read");
        let kernels = log::read_with_kernel(&lake, Some(version)).await.unwrap().unwrap();
        assert_eq!(ours.version, version);
        assert_eq!(ours.files, kernels.files, "version {version}");
        assert_eq!((ours.reader_version, &ours.columns), (kernels.reader_version, &kernels.columns));
        assert!(ours.files.iter().all(|f| f.rows.is_some() && f.day().is_ok()));
        removed_some |=
            version > 0 && ours.files.len() < log::read(&lake, Some(version - 1)).await.unwrap().unwrap().files.len();
    }
    assert!(removed_some, "the compaction removed files");

    // Versions 0-3 gone (as after a log clean-up): the checkpoint at 3 is where a read starts,
    // and without it there is nothing to start from.
    let log_dir = dir.path().join("lake/audit_log/_delta_log");
    for v in 0..=3 {
        std::fs::remove_file(log_dir.join(format!("{v:020}.json"))).unwrap();
    }
    let ours = log::read(&lake, None).await.unwrap().expect("the checkpoint to start from");
    assert_eq!(ours.files, log::read_with_kernel(&lake, None).await.unwrap().unwrap().files);
    std::fs::remove_file(log_dir.join(format!("{:020}.checkpoint.parquet", 3))).unwrap();
    assert!(log::read(&lake, None).await.unwrap().is_none());
}

#[tokio::test]
async fn groups_handed_on_early_under_memory_pressure_stay_right() {
    // So little memory that the partial aggregation hands on its groups after every batch, and
    // the group numbers it held for dictionary codes must start again.
    let dir = tempfile::tempdir().unwrap();
    let lake = lake(dir.path()).await;
    let runtime = RuntimeEnvBuilder::new().with_memory_limit(64 << 10, 1.0).build_arc().unwrap();
    let (ours, plain) = sessions_with(&lake, runtime).await;
    // No ORDER BY: a sort reserves more than this whole budget. The rows are compared sorted.
    let sorted = |table: String| {
        let mut lines: Vec<String> = table.lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    for sql in [
        "SELECT action, count(*) AS n FROM audit_log GROUP BY action",
        "SELECT actor_name, actor_type, email, count(*) AS n FROM audit_log GROUP BY 1, 2, 3",
    ] {
        let (want, _) = answer(&plain, sql).await;
        let (got, plan) = answer(&ours, sql).await;
        assert!(plan.contains("ViewGroupsAggregateExec"), "{sql}: not used:\n{plan}");
        assert_eq!(sorted(got), sorted(want), "{sql}\n{plan}");
    }
}
