//! Helpers shared by the integration tests, including an independent oracle: it reads the same
//! JSON with serde_json whole-document parsing (not auditlake's streaming decoder) and counts
//! what the table should hold.

#![allow(dead_code)]

pub mod s3;

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use auditlake::Lake;
use auditlake::engine::{self, Engine};
use auditlake::time::Window;
use datafusion::arrow::util::display::array_value_to_string;
use serde_json::Value;

pub fn sample_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data")
}

/// Writes `auditlake generate`'s feed to `path`: `events` distinct entries over `days` days from
/// `start` (YYYY-MM-DD), deterministic for `seed`.
pub fn generate(path: &Path, events: u64, days: u32, start: &str, seed: u64) {
    let status = std::process::Command::new(assert_cmd::cargo::cargo_bin("auditlake"))
        .args(["--quiet", "generate", "--events", &events.to_string(), "--days", &days.to_string()])
        .args(["--start", start, "--seed", &seed.to_string(), "--out"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "auditlake generate failed");
}

/// Runs SQL and returns every row as strings.
pub async fn rows(lake: &Lake, sql: &str) -> Vec<Vec<String>> {
    let session = engine::open(lake, &Window::default(), None, &Engine::Local).await.unwrap();
    let batches = engine::sql(&session, sql).await.unwrap().collect().await.unwrap();
    let mut out = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            out.push((0..b.num_columns()).map(|c| array_value_to_string(b.column(c), r).unwrap()).collect());
        }
    }
    out
}

/// `SELECT k, count(*) ... GROUP BY k` as a map.
pub async fn counts_by(lake: &Lake, expr: &str) -> BTreeMap<String, u64> {
    rows(lake, &format!("SELECT CAST({expr} AS VARCHAR) AS k, count(*) FROM audit_log GROUP BY 1"))
        .await
        .into_iter()
        .map(|r| (r[0].clone(), r[1].parse().unwrap()))
        .collect()
}

fn read_all(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap();
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut out).unwrap();
        out
    } else {
        raw
    }
}

/// Entries of a file, in any of the shapes Torq produces; unparseable lines are skipped.
pub fn entries_of(path: &Path) -> Vec<Value> {
    let text = read_all(path);
    if let Ok(v) = serde_json::from_slice::<Value>(&text) {
        return match v {
            Value::Array(a) => a,
            Value::Object(ref o) if o.contains_key("audit_logs") => o["audit_logs"].as_array().unwrap().clone(),
            other => vec![other],
        };
    }
    text.split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
        .flat_map(|v| match v {
            Value::Object(ref o) if o.contains_key("audit_logs") => o["audit_logs"].as_array().unwrap().clone(),
            other => vec![other],
        })
        .collect()
}

/// Every file under `dir`, sorted as auditlake walks them.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The entries a correct ingest keeps: objects with a string id and an RFC 3339 timestamp with
/// an offset, first occurrence of each id.
pub fn expected_entries(paths: &[PathBuf]) -> Vec<Value> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for p in paths {
        for e in entries_of(p) {
            let Some(o) = e.as_object() else { continue };
            let Some(id) = o
                .get("id")
                .and_then(|v| v.as_str().map(str::to_string).or_else(|| v.as_number().map(|n| n.to_string())))
            else {
                continue;
            };
            let Some(ts) = o.get("timestamp").and_then(Value::as_str) else { continue };
            if chrono::DateTime::parse_from_rfc3339(ts).is_err() {
                continue;
            }
            if o.get("email").is_some_and(|v| v.is_object() || v.is_array()) {
                continue;
            }
            if seen.insert(id) {
                out.push(e);
            }
        }
    }
    out
}

/// Count of expected entries per value of `f`.
pub fn oracle_counts(entries: &[Value], f: impl Fn(&Value) -> Vec<String>) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for e in entries {
        for k in f(e) {
            *m.entry(k).or_insert(0) += 1;
        }
    }
    m
}

pub fn field(e: &Value, name: &str) -> String {
    match e.get(name) {
        None | Some(Value::Null) => "".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Counts per action, actor, email, actor type, workspace, scenario id, tag and date in the lake
/// equal those of `expected` (read independently), and no id is stored twice.
pub async fn assert_counts_match(lake: &Lake, expected: &[Value]) {
    let total = rows(lake, "SELECT count(*), count(DISTINCT id) FROM audit_log").await;
    assert_eq!(total[0][0], expected.len().to_string(), "rows");
    assert_eq!(total[0][1], expected.len().to_string(), "distinct ids");
    for column in ["action", "actor_name", "email", "actor_type", "account_name"] {
        assert_eq!(counts_by(lake, column).await, oracle_counts(expected, |e| vec![field(e, column)]), "by {column}");
    }
    let scenario = oracle_counts(expected, |e| {
        let top = field(e, "scenario_id");
        let nested = e.get("extra_data").map(|x| field(x, "scenario_id")).unwrap_or_default();
        vec![if top.is_empty() { nested } else { top }]
    });
    assert_eq!(counts_by(lake, "scenario_id").await, scenario, "by scenario_id");
    let tags = oracle_counts(expected, |e| {
        e.pointer("/extra_data/tags")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|t| t.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    });
    let got: BTreeMap<String, u64> =
        rows(lake, "SELECT tag, count(*) FROM (SELECT unnest(tags) AS tag FROM audit_log) GROUP BY tag")
            .await
            .into_iter()
            .map(|r| (r[0].clone(), r[1].parse().unwrap()))
            .collect();
    assert_eq!(got, tags, "by tag");
    let dates = oracle_counts(expected, |e| {
        let ts = chrono::DateTime::parse_from_rfc3339(e["timestamp"].as_str().unwrap()).unwrap();
        vec![ts.with_timezone(&chrono::Utc).date_naive().to_string()]
    });
    assert_eq!(counts_by(lake, "date").await, dates, "by date");
}
