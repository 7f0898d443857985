//! Component tests of ingest + query, each written once as a function of the lake location and
//! run on `memory://` and on a local temp folder.

mod common;

use std::io::Write;

use auditlake::Lake;
use auditlake::ingest::{IngestOptions, ingest};
use common::*;
use serde_json::Value;

fn opts(inputs: &[&std::path::Path]) -> IngestOptions {
    IngestOptions { inputs: inputs.iter().map(|p| p.display().to_string()).collect(), ..Default::default() }
}

/// Runs `check` on a fresh memory lake and a fresh local lake.
macro_rules! on_each_lake {
    ($name:ident, $check:ident) => {
        mod $name {
            #[tokio::test]
            async fn memory() {
                let name = format!("memory://{}-{}", stringify!($name), uuid::Uuid::new_v4().simple());
                super::$check(auditlake::Lake::open(&name).unwrap()).await;
            }
            #[tokio::test]
            async fn local() {
                let dir = tempfile::tempdir().unwrap();
                super::$check(auditlake::Lake::open(&dir.path().join("lake").display().to_string()).unwrap()).await;
            }
        }
    };
}

async fn sample_counts_match_an_independent_reader(lake: Lake) {
    let files = files_under(&sample_data());
    let m = ingest(&lake, &opts(&[&sample_data()])).await.unwrap();
    let expected = expected_entries(&files);

    assert_eq!(m.ingested as usize, expected.len());
    assert_eq!(m.rejected, 7, "the seven malformed records");
    assert_eq!(m.read, m.ingested + m.duplicates + m.rejected);
    assert!(m.duplicates >= 25, "redelivery file is all duplicates: {}", m.duplicates);

    common::assert_counts_match(&lake, &expected).await;
}
on_each_lake!(sample_counts, sample_counts_match_an_independent_reader);

async fn reingest_changes_no_result(lake: Lake) {
    let first = ingest(&lake, &opts(&[&sample_data()])).await.unwrap();
    let before = rows(&lake, "SELECT id, action, timestamp FROM audit_log ORDER BY id").await;
    let again = ingest(&lake, &opts(&[&sample_data()])).await.unwrap();
    assert_eq!(again.ingested, 0);
    assert_eq!(again.duplicates, first.ingested + first.duplicates);
    assert_eq!(again.table_version, None, "nothing new, nothing committed");
    // A single file again, on its own, in part: still nothing new.
    let part = ingest(&lake, &opts(&[&sample_data().join("cases.ndjson")])).await.unwrap();
    assert_eq!(part.ingested, 0);
    assert_eq!(rows(&lake, "SELECT id, action, timestamp FROM audit_log ORDER BY id").await, before);
}
on_each_lake!(reingest, reingest_changes_no_result);

async fn dedupe_within_one_batch_and_across_formats(lake: Lake) {
    let dir = tempfile::tempdir().unwrap();
    let e = r#"{"id":"dup-1","timestamp":"2026-09-01T10:00:00Z","action":"Secret created"}"#;
    let nd = dir.path().join("a.ndjson");
    std::fs::write(&nd, format!("{e}\n{e}\n{e}\n")).unwrap();
    let arr = dir.path().join("b.json");
    // The same event, its timestamp written with another offset: one event, one row.
    std::fs::write(&arr, r#"[{"id":"dup-1","timestamp":"2026-09-01T12:00:00+02:00","action":"Secret created"}]"#)
        .unwrap();
    let m = ingest(&lake, &opts(&[&nd, &arr])).await.unwrap();
    assert_eq!((m.ingested, m.duplicates), (1, 3));
    assert_eq!(rows(&lake, "SELECT count(*) FROM audit_log").await, vec![vec!["1".to_string()]]);
}
on_each_lake!(dedupe_batch, dedupe_within_one_batch_and_across_formats);

/// An id already stored in its date partition is a duplicate, whatever else the redelivery
/// holds (the first delivery wins, and it was valid); the same id on another date, or a bad
/// entry with a new id, is judged on its own.
async fn stored_ids_are_duplicates_in_their_partition_only(lake: Lake) {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.ndjson");
    std::fs::write(&first, r#"{"id":"a","timestamp":"2026-09-01T10:00:00Z","action":"Secret created"}"#).unwrap();
    assert_eq!(ingest(&lake, &opts(&[&first])).await.unwrap().ingested, 1);

    let again = dir.path().join("again.ndjson");
    std::fs::write(
        &again,
        [
            r#"{"id":"a","timestamp":"2026-09-01T10:00:00Z","action":"Secret created","email":{"x":1}}"#,
            r#"{"id":"a","timestamp":"2026-09-02T10:00:00Z","action":"Secret created"}"#,
            r#"{"id":"b","timestamp":"2026-09-01T10:00:00Z","email":{"x":1}}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let m = ingest(&lake, &opts(&[&again])).await.unwrap();
    assert_eq!((m.read, m.ingested, m.duplicates, m.rejected), (3, 1, 1, 1));
    assert_eq!(
        rows(&lake, "SELECT id, CAST(date AS VARCHAR) AS day FROM audit_log ORDER BY day").await,
        vec![vec!["a".to_string(), "2026-09-01".to_string()], vec!["a".to_string(), "2026-09-02".to_string()]]
    );
}
on_each_lake!(stored_ids, stored_ids_are_duplicates_in_their_partition_only);

/// `x IS NOT NULL` is answered by the scan itself (it drops those rows, list-aware): the answers
/// must match the same question asked without a filter the scan can see.
async fn not_null_filters_answer_like_case_expressions(lake: Lake) {
    ingest(&lake, &opts(&[&sample_data()])).await.unwrap();
    for column in ["tags", "scenario_id", "ip"] {
        let filtered =
            rows(&lake, &format!("SELECT count(*), count(DISTINCT id) FROM audit_log WHERE {column} IS NOT NULL"))
                .await;
        let counted = rows(
            &lake,
            &format!(
                "SELECT sum(CASE WHEN {column} IS NULL THEN 0 ELSE 1 END), \
             count(DISTINCT CASE WHEN {column} IS NULL THEN NULL ELSE id END) FROM audit_log"
            ),
        )
        .await;
        assert_eq!(filtered, counted, "{column}");
        assert_ne!(filtered[0][0], "0", "the sample has {column} values");
    }
    // The tested column not selected, and a limit: still only rows with tags, and all of them.
    let ids = rows(&lake, "SELECT id FROM audit_log WHERE tags IS NOT NULL AND scenario_id IS NULL ORDER BY id").await;
    let want = rows(&lake, "SELECT id FROM audit_log WHERE cardinality(tags) >= 0 AND CASE WHEN scenario_id IS NULL THEN 1 ELSE 0 END = 1 ORDER BY id").await;
    assert_eq!(ids, want);
    let limited = rows(&lake, "SELECT tags FROM audit_log WHERE tags IS NOT NULL LIMIT 3").await;
    assert_eq!(limited.len(), 3);
    assert!(limited.iter().all(|r| r[0] != "NULL" && !r[0].is_empty()), "{limited:?}");
    let tag_rows =
        rows(&lake, "SELECT count(*) FROM (SELECT unnest(tags) FROM audit_log WHERE tags IS NOT NULL)").await;
    let all_tag_rows = rows(&lake, "SELECT count(*) FROM (SELECT unnest(tags) FROM audit_log)").await;
    assert_eq!(tag_rows, all_tag_rows);
}
on_each_lake!(not_null_filters, not_null_filters_answer_like_case_expressions);

async fn offsets_cross_midnight_into_the_utc_partition(lake: Lake) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("late.ndjson");
    std::fs::write(
        &p,
        concat!(
            r#"{"id":"m1","timestamp":"2026-09-10T01:30:00.123456789+02:00","action":"A"}"#,
            "\n",
            r#"{"id":"m2","timestamp":"2026-09-09T21:15:00-05:00","action":"B"}"#,
            "\n",
        ),
    )
    .unwrap();
    ingest(&lake, &opts(&[&p])).await.unwrap();
    let got =
        rows(&lake, "SELECT id, CAST(date AS VARCHAR), CAST(timestamp AS VARCHAR) FROM audit_log ORDER BY id").await;
    assert_eq!(
        got,
        vec![
            vec!["m1".to_string(), "2026-09-09".into(), "2026-09-09T23:30:00.123456Z".into()],
            vec!["m2".to_string(), "2026-09-10".into(), "2026-09-10T02:15:00Z".into()],
        ]
    );
}
on_each_lake!(midnight, offsets_cross_midnight_into_the_utc_partition);

async fn rejected_records_are_quarantined_with_reasons(lake: Lake) {
    let p = sample_data().join("malformed").join("mixed.ndjson");
    let m = ingest(&lake, &opts(&[&p])).await.unwrap();
    assert_eq!((m.ingested, m.rejected), (2, 7));
    assert_eq!(m.rejected_files.len(), 1);
    // Read the quarantine back through the same store.
    let session =
        auditlake::engine::open(&lake, &auditlake::time::Window::default(), None, &auditlake::engine::Engine::Local)
            .await
            .unwrap();
    drop(session);
    let text = read_lake_file(&lake, &m.rejected_files[0]).await;
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 7);
    let reasons: Vec<&str> = lines.iter().map(|l| l["reason"].as_str().unwrap()).collect();
    assert!(reasons[0].starts_with("missing `id`"), "{reasons:?}");
    assert!(reasons[1].starts_with("unparseable `timestamp`"), "{reasons:?}");
    assert!(reasons[4].contains("`email` holds an object"), "{reasons:?}");
    assert!(reasons[5].starts_with("not a JSON object"), "{reasons:?}");
    assert!(reasons[6].starts_with("truncated JSON"), "{reasons:?}");
    assert_eq!(lines[0]["line"], 2);
    assert!(lines[0]["source"].as_str().unwrap().ends_with("mixed.ndjson"));
    assert!(lines[6]["raw"].as_str().unwrap().contains("\"action\": \"Wor"));
}
on_each_lake!(rejected, rejected_records_are_quarantined_with_reasons);

/// Reads a file the lake wrote, given the path the metrics reported.
async fn read_lake_file(lake: &Lake, reported: &str) -> String {
    if reported.starts_with("memory:") {
        let rel = reported.split("/_rejected/").nth(1).unwrap();
        let path = lake.path(&format!("_rejected/{rel}"));
        use object_store::ObjectStoreExt;
        let store = object_store_of(lake);
        let bytes = store.get(&path).await.unwrap().bytes().await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    } else {
        std::fs::read_to_string(reported).unwrap()
    }
}

fn object_store_of(lake: &Lake) -> std::sync::Arc<dyn deltalake::ObjectStore> {
    lake.store()
}

async fn empty_inputs_commit_nothing(lake: Lake) {
    let dir = tempfile::tempdir().unwrap();
    let files = ["empty.json", "blank.ndjson", "array.json", "page.json"];
    let bodies = ["", "\n\n", "[]", r#"{"audit_logs": [], "next_page_token": ""}"#];
    for (f, b) in files.iter().zip(bodies) {
        std::fs::write(dir.path().join(f), b).unwrap();
    }
    let m = ingest(&lake, &opts(&[dir.path()])).await.unwrap();
    assert_eq!((m.read, m.ingested, m.rejected, m.table_version), (0, 0, 0, None));
    assert_eq!(rows(&lake, "SELECT count(*) FROM audit_log").await, vec![vec!["0".to_string()]]);
}
on_each_lake!(empty, empty_inputs_commit_nothing);

async fn huge_single_line_is_ingested_whole(lake: Lake) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("huge.ndjson");
    let blob = "x".repeat(20 << 20);
    let mut f = std::fs::File::create(&p).unwrap();
    writeln!(f, r#"{{"id":"big","timestamp":"2026-09-01T00:00:00Z","action":"Workflow updated","extra_data":{{"blob":"{blob}"}}}}"#).unwrap();
    writeln!(f, r#"{{"id":"small","timestamp":"2026-09-01T00:00:01Z","action":"Workflow updated"}}"#).unwrap();
    drop(f);
    // Past the default --max-entry-size, the entry is quarantined (its head and size kept) ...
    let m = ingest(&lake, &opts(&[&p])).await.unwrap();
    assert_eq!((m.ingested, m.rejected), (1, 1));
    // ... and with a limit above it, ingested whole.
    let roomy = IngestOptions { max_entry_size: 32 << 20, ..opts(&[&p]) };
    let m = ingest(&lake, &roomy).await.unwrap();
    assert_eq!((m.ingested, m.duplicates), (1, 1));
    let got = rows(&lake, "SELECT id, length(extra_data) FROM audit_log ORDER BY id").await;
    assert_eq!(got[0], vec!["big".to_string(), (blob.len() + 11).to_string()]);
}
on_each_lake!(huge_line, huge_single_line_is_ingested_whole);

async fn every_input_format_gives_the_same_table(lake: Lake) {
    use flate2::{Compression, write::GzEncoder};
    let dir = tempfile::tempdir().unwrap();
    let entries: Vec<String> = (0..50)
        .map(|i| format!(r#"{{"id":"f{i}","timestamp":"2026-09-0{}T10:00:00Z","action":"Secret updated","extra_data":{{"tags":["t{}"]}}}}"#, 1 + i % 3, i % 4))
        .collect();
    // Five shapes holding overlapping slices of the same 50 events.
    std::fs::write(dir.path().join("1.ndjson"), entries[..20].join("\n")).unwrap();
    std::fs::write(dir.path().join("2.json"), format!("[\n  {}\n]", entries[10..30].join(",\n  "))).unwrap();
    std::fs::write(
        dir.path().join("3.page.json"),
        format!("{{\n \"audit_logs\": [{}],\n \"next_page_token\": \"x\"\n}}", entries[25..40].join(",")),
    )
    .unwrap();
    let mut gz = GzEncoder::new(std::fs::File::create(dir.path().join("4.data")).unwrap(), Compression::fast());
    gz.write_all(entries[35..50].join("\n").as_bytes()).unwrap();
    gz.finish().unwrap();
    std::fs::write(
        dir.path().join("5.pages.ndjson"),
        format!(
            "{{\"audit_logs\":[{}]}}\n{{\"audit_logs\":[{}]}}\n",
            entries[0..5].join(","),
            entries[45..50].join(",")
        ),
    )
    .unwrap();
    let m = ingest(&lake, &opts(&[dir.path()])).await.unwrap();
    assert_eq!(m.ingested, 50);
    assert_eq!(m.rejected, 0);
    assert_eq!(m.duplicates, 20 + 20 + 15 + 15 + 10 - 50);
    assert_eq!(counts_by(&lake, "date").await.values().sum::<u64>(), 50);
}
on_each_lake!(formats, every_input_format_gives_the_same_table);

/// The log keeps per-file statistics for `timestamp` only (with the row count): they are what
/// prunes, and every other column's min/max only made the log slower to open.
async fn file_statistics_cover_timestamp_only(lake: Lake) {
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    ingest(&lake, &opts(&[&sample_data()])).await.unwrap();
    let store = lake.store();
    let log: Vec<_> = store.list(Some(&lake.path("audit_log/_delta_log/"))).try_collect().await.unwrap();
    let mut adds = 0;
    for meta in log.iter().filter(|m| m.location.as_ref().ends_with(".json")) {
        let text = store.get(&meta.location).await.unwrap().bytes().await.unwrap();
        for line in std::str::from_utf8(&text).unwrap().lines() {
            let action: Value = serde_json::from_str(line).unwrap();
            let Some(stats) = action["add"]["stats"].as_str() else { continue };
            let stats: Value = serde_json::from_str(stats).unwrap();
            assert!(stats["numRecords"].as_u64().unwrap() > 0, "{stats}");
            for part in ["minValues", "maxValues", "nullCount"] {
                let keys: Vec<&String> = stats[part].as_object().unwrap().keys().collect();
                assert_eq!(keys, ["timestamp"], "{part} in {stats}");
            }
            adds += 1;
        }
    }
    assert!(adds > 3, "only {adds} files");
}
on_each_lake!(file_statistics, file_statistics_cover_timestamp_only);
