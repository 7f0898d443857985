//! `auditlake report` end to end: numbers against the independent oracle, every format on sample
//! data (snapshots), hostile log values, empty periods and reproducing an old report.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use assert_cmd::Command;
use chrono::{Datelike, FixedOffset, Timelike};
use serde_json::Value;

/// A fixed generation time, so reports are byte-for-byte comparable.
const EPOCH: &str = "1790000000";

fn auditlake(lake: &Path) -> Command {
    let mut cmd = Command::cargo_bin("auditlake").unwrap();
    cmd.arg("--lake")
        .arg(lake)
        .env_remove("AUDITLAKE_LAKE")
        .env_remove("AUDITLAKE_QUERIES")
        .env("SOURCE_DATE_EPOCH", EPOCH);
    cmd
}

fn sample_lake() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    auditlake(&dir.path().join("lake")).arg("ingest").arg(common::sample_data()).assert().code(3);
    dir
}

fn report(lake: &Path, args: &[&str]) -> String {
    let out = auditlake(lake).arg("report").args(args).assert().success().get_output().stdout.clone();
    String::from_utf8(out).unwrap()
}

fn json_report(lake: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    serde_json::from_str(&report(lake, &all)).unwrap()
}

/// A table of the JSON report as (first column -> other columns, as strings).
fn table(report: &Value, key: &str) -> Vec<BTreeMap<String, String>> {
    let t = report["sections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["tables"].as_array().unwrap())
        .find(|t| t["key"] == key)
        .unwrap_or_else(|| panic!("no table {key}"));
    let cols: Vec<String> = t["columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    t["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            cols.iter()
                .zip(r.as_array().unwrap())
                .map(|(c, v)| (c.clone(), if let Value::String(s) = v { s.clone() } else { v.to_string() }))
                .collect()
        })
        .collect()
}

fn count(report: &Value, section: &str) -> i64 {
    let s = report["sections"].as_array().unwrap().iter().find(|s| s["name"] == section).unwrap();
    s["count"]["value"].as_i64().unwrap()
}

fn pairs(rows: &[BTreeMap<String, String>], k: &str, v: &str) -> BTreeMap<String, u64> {
    rows.iter().map(|r| (r[k].clone(), r[v].parse().unwrap())).collect()
}

fn expected() -> Vec<Value> {
    common::expected_entries(&common::files_under(&common::sample_data()))
}

fn ts(e: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(e["timestamp"].as_str().unwrap()).unwrap().to_utc()
}

fn scenario(e: &Value) -> Option<String> {
    let top = e.get("scenario_id").and_then(Value::as_str);
    let nested = e.get("extra_data").and_then(|x| x.get("scenario_id")).and_then(Value::as_str);
    top.or(nested).map(str::to_string)
}

const ACCESS: [&str; 4] = ["User invited", "User accepted invitation", "User role updated", "User deleted"];

#[test]
fn sections_agree_with_an_independent_count() {
    let dir = sample_lake();
    let lake = dir.path().join("lake");
    // A fixed offset keeps the oracle free of time-zone rules; +02:00 moves events across midnight.
    let r = json_report(&lake, &["--from", "2026-09-01", "--to", "2026-09-30", "--tz", "+02:00"]);
    let tz = FixedOffset::east_opt(2 * 3600).unwrap();
    let start = chrono::NaiveDate::from_ymd_opt(2026, 9, 1).unwrap();
    let end = chrono::NaiveDate::from_ymd_opt(2026, 9, 30).unwrap();
    let entries: Vec<Value> = expected()
        .into_iter()
        .filter(|e| {
            let d = ts(e).with_timezone(&tz).date_naive();
            d >= start && d <= end
        })
        .collect();
    assert!(entries.len() > 80, "the sample should mostly fall in September");
    assert_eq!(r["header"]["events"], entries.len() as i64);
    assert_eq!(count(&r, "volume"), entries.len() as i64);

    // Events per local day, with every day of the period present and empty days flagged.
    let per_day = table(&r, "volume.per_day");
    assert_eq!(per_day.len(), 30);
    let oracle = common::oracle_counts(&entries, |e| vec![ts(e).with_timezone(&tz).date_naive().to_string()]);
    for row in &per_day {
        let n: u64 = row["events"].parse().unwrap();
        assert_eq!(n, oracle.get(&row["day"]).copied().unwrap_or(0), "{}", row["day"]);
        assert_eq!(row["flag"].is_empty(), n > 0, "{}", row["day"]);
    }

    let access = entries.iter().filter(|e| ACCESS.contains(&common::field(e, "action").as_str())).count();
    assert!(access > 0);
    assert_eq!(count(&r, "access"), access as i64);
    assert_eq!(table(&r, "access.changes").len(), access);

    let failed: Vec<&Value> = entries.iter().filter(|e| e["action"] == "User login failed").collect();
    let by_email = common::oracle_counts(&failed.iter().map(|e| (*e).clone()).collect::<Vec<_>>(), |e| {
        vec![common::field(e, "email")]
    });
    assert!(!by_email.is_empty());
    assert_eq!(pairs(&table(&r, "authentication.failed_by_user"), "email", "failures"), by_email);

    let cases = common::oracle_counts(&entries, |e| scenario(e).into_iter().collect());
    assert!(!cases.is_empty());
    assert_eq!(pairs(&table(&r, "cases.by_scenario"), "scenario_id", "events"), cases);
    assert_eq!(count(&r, "cases"), cases.values().sum::<u64>() as i64);

    let types = common::oracle_counts(&entries, |e| match e.get("actor_type").and_then(Value::as_str) {
        Some(t) => vec![t.to_string()],
        None => vec!["none (AI analyst)".to_string()],
    });
    assert_eq!(pairs(&table(&r, "actors.by_type"), "actor_type", "events"), types);

    // Off-hours: weekends or outside 08:00-18:00 at +02:00, sign-ins and case work excluded.
    let auth = ["User logged in", "User logged out", "User switched accounts", "User login failed"];
    let case_prefixes = ["Case ", "Cases ", "Observable ", "Attachment ", "Note ", "Link Between Cases "];
    let off: Vec<&Value> = entries
        .iter()
        .filter(|e| {
            let a = common::field(e, "action");
            let administrative = !auth.contains(&a.as_str())
                && scenario(e).is_none()
                && !case_prefixes.iter().any(|p| a.starts_with(p))
                && a != "Workspace Configuration Updated";
            let local = ts(e).with_timezone(&tz);
            let minute = local.hour() * 60 + local.minute();
            let off = local.weekday().number_from_monday() >= 6 || minute < 8 * 60 || minute >= 18 * 60;
            administrative && off
        })
        .collect();
    assert!(!off.is_empty(), "the sample should hold off-hours changes");
    assert_eq!(count(&r, "off_hours"), off.len() as i64);
    assert_eq!(table(&r, "off_hours.activity").len(), off.len());

    let api: Vec<Value> = entries.iter().filter(|e| e["actor_type"] == "api_key").cloned().collect();
    let per_key_action = common::oracle_counts(&api, |e| {
        vec![format!("{}|{}", common::field(e, "actor_name"), common::field(e, "action"))]
    });
    let got: BTreeMap<String, u64> = table(&r, "credentials.api_key_actions")
        .iter()
        .map(|row| (format!("{}|{}", row["api_key"], row["action"]), row["events"].parse().unwrap()))
        .collect();
    assert_eq!(got, per_key_action);
}

#[test]
fn a_burst_of_failed_logins_is_flagged_and_the_threshold_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let input = dir.path().join("burst.ndjson");
    let mut lines = String::new();
    // Six failures for one email from one address within 5 minutes, then one more an hour later.
    for (i, minute) in [0, 1, 2, 3, 4, 5, 65].iter().enumerate() {
        lines.push_str(&format!(
            "{{\"id\":\"f{i}\",\"timestamp\":\"2026-09-02T{:02}:{:02}:00Z\",\"action\":\"User login failed\",\"email\":\"eve@acme.example\",\"ip\":\"203.0.113.9\",\"actor_type\":\"web_app\"}}\n",
            10 + minute / 60,
            minute % 60
        ));
    }
    std::fs::write(&input, lines).unwrap();
    auditlake(&lake).arg("ingest").arg(&input).assert().success();
    let r = json_report(&lake, &["--from", "2026-09-02", "--to", "2026-09-02", "--section", "authentication"]);
    let bursts = table(&r, "authentication.failure_bursts");
    assert_eq!(bursts.len(), 2, "one for the user and one for the address: {bursts:?}");
    for b in &bursts {
        assert_eq!(b["failures"], "6", "{b:?}");
    }
    let r = json_report(
        &lake,
        &["--from", "2026-09-02", "--to", "2026-09-02", "--section", "authentication", "--burst-failures", "7"],
    );
    assert!(table(&r, "authentication.failure_bursts").is_empty());
    // Only the authentication section was computed.
    assert_eq!(r["sections"].as_array().unwrap().len(), 1);
}

/// Replaces what differs between runs of the test (the temporary lake path).
/// The text without what differs between runs: the lake's path and the evidence chain's head
/// (a hash over commit files that hold their own timestamps).
fn stable(text: &str, lake: &Path) -> String {
    let text = text.replace(&lake.display().to_string(), "[LAKE]");
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("chain head ") {
        let start = i + "chain head ".len();
        out.push_str(&rest[..start]);
        let hex = rest[start..].chars().take_while(|c| c.is_ascii_hexdigit()).count();
        out.push_str(if hex == 64 { "[HASH]" } else { "" });
        rest = &rest[start + if hex == 64 { 64 } else { 0 }..];
    }
    out.push_str(rest);
    out
}

#[test]
fn every_format_on_sample_data() {
    let dir = sample_lake();
    let lake = dir.path().join("lake");
    let period = ["--from", "2026-09-01", "--to", "2026-09-30", "--tz", "Europe/Berlin"];
    let md = report(&lake, &[&period[..], &["--format", "md"]].concat());
    insta::assert_snapshot!("report_md", stable(&md, &lake));
    let json = report(&lake, &[&period[..], &["--format", "json"]].concat());
    insta::assert_snapshot!("report_json", stable(&json, &lake));
    let html = report(&lake, &[&period[..], &["--format", "html"]].concat());
    insta::assert_snapshot!("report_html", stable(&html, &lake));

    // Rerunning gives the same bytes.
    assert_eq!(report(&lake, &[&period[..], &["--format", "json"]].concat()), json);

    // CSV: a folder with the header, an index and one file per table, rows matching the JSON.
    let out = dir.path().join("csv");
    auditlake(&lake).arg("report").args(period).args(["--format", "csv", "--out"]).arg(&out).assert().success();
    let index = std::fs::read_to_string(out.join("sections.csv")).unwrap();
    insta::assert_snapshot!("report_csv_index", index);
    let header = std::fs::read_to_string(out.join("report.csv")).unwrap();
    assert!(header.contains("Table version,1 (reproduce with --as-of-version 1)"), "{header}");
    assert!(header.contains("`auditlake verify --quick` passed for this version"), "{header}");
    let r: Value = serde_json::from_str(&json).unwrap();
    for s in r["sections"].as_array().unwrap() {
        for t in s["tables"].as_array().unwrap() {
            let file = out.join(format!("{}.csv", t["key"].as_str().unwrap()));
            let body = std::fs::read_to_string(&file).unwrap();
            // Header plus one line per row (no value in the sample holds a line break).
            assert_eq!(body.lines().count(), 1 + t["rows"].as_array().unwrap().len(), "{}", file.display());
        }
    }
}

#[test]
fn hostile_values_stay_text_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let input = dir.path().join("hostile.ndjson");
    let entry = serde_json::json!({
        "id": "h1", "timestamp": "2026-09-05T23:30:00Z", "action": "User role updated",
        "actor_name": "<script>document.title='PWNED'</script>", "actor_type": "web_app",
        "email": "=HYPERLINK(\"http://evil.example\",\"click\")", "ip": "198.51.100.7",
        "resource_name": "<img src=x onerror=\"document.title='PWNED'\"> | **bold** [x](http://evil.example)",
        "account_name": "acme", "account_id": "a1"
    });
    std::fs::write(&input, format!("{entry}\n")).unwrap();
    auditlake(&lake).arg("ingest").arg(&input).assert().success();
    let period = ["--from", "2026-09-01", "--to", "2026-09-30"];

    let html = report(&lake, &[&period[..], &["--format", "html"]].concat());
    assert!(!html.contains("<script"), "no script element");
    assert!(!html.contains("<img"), "no img element");
    assert!(html.contains("&lt;script&gt;document.title=&#39;PWNED&#39;&lt;/script&gt;"));
    assert!(html.contains("Content-Security-Policy"));

    let md = report(&lake, &[&period[..], &["--format", "md"]].concat());
    assert!(!md.contains("<script") && !md.contains("<img"));
    assert!(md.contains(
        "&lt;img src=x onerror=\"document.title='PWNED'\"&gt; \\| \\*\\*bold\\*\\* \\[x\\](http\\://evil.example)"
    ));

    let out = dir.path().join("csv");
    auditlake(&lake).arg("report").args(period).args(["--format", "csv", "--out"]).arg(&out).assert().success();
    let changes = std::fs::read_to_string(out.join("access.changes.csv")).unwrap();
    assert!(changes.contains(r#""'=HYPERLINK(""http://evil.example"",""click"")""#), "{changes}");
    assert!(!changes.contains(",=HYPERLINK") && !changes.contains(",\"=HYPERLINK"));

    // JSON keeps the value as it was logged: it is data, escaped by JSON itself.
    let r = json_report(&lake, &period);
    assert_eq!(table(&r, "access.changes")[0]["actor_email"], entry["email"].as_str().unwrap());
}

#[test]
fn an_empty_period_says_so() {
    let dir = sample_lake();
    let lake = dir.path().join("lake");
    let md = report(&lake, &["--from", "2025-01-01", "--to", "2025-01-03"]);
    assert!(md.contains("**No events in this period.**"), "{md}");
    assert_eq!(md.matches("no events: possible collection gap").count(), 3);
    let r = json_report(&lake, &["--from", "2025-01-01", "--to", "2025-01-03"]);
    assert_eq!(r["header"]["events"], 0);
    for s in r["sections"].as_array().unwrap() {
        assert_eq!(s["count"]["value"], 0, "{}", s["name"]);
    }
    // A lake with no table at all reports the same, and says there is no version.
    let none = tempfile::tempdir().unwrap();
    let r = json_report(&none.path().join("lake"), &["--from", "2025-01-01", "--to", "2025-01-03"]);
    assert_eq!(r["header"]["table_version"], Value::Null);
    assert_eq!(r["header"]["events"], 0);
}

#[test]
fn as_of_version_reproduces_an_old_report() {
    let dir = sample_lake();
    let lake = dir.path().join("lake");
    let period = ["--from", "2026-09-01", "--to", "2026-09-30", "--format", "json"];
    let v1 = report(&lake, &period);
    let extra = dir.path().join("more.ndjson");
    std::fs::write(&extra, r#"{"id":"late-1","timestamp":"2026-09-20T12:00:00Z","action":"Secret created"}"#).unwrap();
    auditlake(&lake).arg("ingest").arg(&extra).assert().success();
    let v2 = report(&lake, &period);
    assert_ne!(v1, v2);
    let again = report(&lake, &[&period[..], &["--as-of-version", "1"]].concat());
    assert_eq!(again, v1, "the same version and arguments give the same report");
}

#[test]
fn bad_arguments_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let fails = |args: &[&str], says: &str| {
        let out = auditlake(&lake).arg("report").args(args).assert().failure().get_output().stderr.clone();
        let err = String::from_utf8(out).unwrap();
        assert!(err.contains(says), "{args:?}: {err}");
    };
    fails(&["--from", "2026-09-30", "--to", "2026-09-01"], "is after --to");
    fails(&["--from", "2026-09-01", "--to", "2026-09-30", "--tz", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'");
    fails(&["--from", "2026-09-01", "--to", "2026-09-30", "--section", "nope"], "no report section 'nope'");
    fails(&["--from", "2026-09-01", "--to", "2026-09-30", "--business-hours", "18-8"], "invalid business hours");
    fails(&["--from", "2026-09-01", "--to", "2026-09-30", "--format", "csv"], "give a folder with --out");
    let list = auditlake(&lake).args(["report", "--list"]).assert().success().get_output().stdout.clone();
    let list = String::from_utf8(list).unwrap();
    assert!(list.contains("access.changes") && list.contains("off_hours"), "{list}");
}
