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
