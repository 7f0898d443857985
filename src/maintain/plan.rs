//! Pure planning for the maintenance jobs: which partitions to compact, which dates retention
//! drops. No store, no runtime: unit-tested with plain values and an injected "today".

use chrono::{Duration, NaiveDate};
use serde::Serialize;

/// A live data file as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub path: String,
    pub date: String,
    pub size: u64,
    pub rows: u64,
}

/// A partition the compaction rewrites, and the files it replaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionPlan {
    pub date: String,
    pub files: Vec<String>,
    pub bytes: u64,
    pub rows: u64,
}

/// Partitions worth rewriting: those with two or more files smaller than `target` (the small
/// files of a stream of ingests). The whole partition is rewritten, so duplicates across all
/// of its files are removed and the result is sorted by time. A partition already made of one
/// file, or of files at or above the target, is left alone: a second run finds nothing to do.
pub fn plan_compaction(
    files: &[FileInfo],
    target: u64,
    first: Option<NaiveDate>,
    last: Option<NaiveDate>,
) -> Vec<PartitionPlan> {
    let mut by_date: std::collections::BTreeMap<&str, Vec<&FileInfo>> = Default::default();
    for f in files {
        by_date.entry(f.date.as_str()).or_default().push(f);
    }
    by_date
        .into_iter()
        .filter(|(date, _)| in_range(date, first, last))
        .filter(|(_, fs)| fs.iter().filter(|f| f.size < target).count() >= 2)
        .map(|(date, fs)| PartitionPlan {
            date: date.to_string(),
            files: fs.iter().map(|f| f.path.clone()).collect(),
            bytes: fs.iter().map(|f| f.size).sum(),
            rows: fs.iter().map(|f| f.rows).sum(),
        })
        .collect()
}

fn in_range(date: &str, first: Option<NaiveDate>, last: Option<NaiveDate>) -> bool {
    let Ok(d) = NaiveDate::parse_from_str(date, "%Y-%m-%d") else { return false };
    first.is_none_or(|f| d >= f) && last.is_none_or(|l| d <= l)
}

/// The least retention accepted without `--force`: PCI DSS 10.5.1 keeps 12 months of audit
/// logs with 3 immediately available, so anything under 90 days is almost surely a mistake.
pub const MIN_RETENTION_DAYS: i64 = 90;

/// The first date retention keeps: partitions before it are dropped. A `keep` reaching past
/// the first representable date keeps everything.
pub fn retention_cutoff(today: NaiveDate, keep: Duration) -> NaiveDate {
    today.checked_sub_signed(Duration::days(keep.num_days())).unwrap_or(NaiveDate::MIN)
}

/// Dates (of those given) that fall before the cutoff.
pub fn dates_to_drop(dates: &[String], cutoff: NaiveDate) -> Vec<String> {
    let mut out: Vec<String> =
        dates.iter().filter(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok_and(|d| d < cutoff)).cloned().collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(path: &str, date: &str, size: u64) -> FileInfo {
        FileInfo { path: path.into(), date: date.into(), size, rows: size / 100 }
    }

    #[test]
    fn compacts_partitions_with_several_small_files() {
        let files = vec![
            f("a1", "2026-09-01", 10),
            f("a2", "2026-09-01", 20),
            f("b1", "2026-09-02", 10),
            f("c1", "2026-09-03", 500),
            f("c2", "2026-09-03", 600),
            f("d1", "2026-09-04", 500),
            f("d2", "2026-09-04", 5),
            f("d3", "2026-09-04", 5),
        ];
        let plan = plan_compaction(&files, 100, None, None);
        let dates: Vec<_> = plan.iter().map(|p| p.date.as_str()).collect();
        assert_eq!(dates, vec!["2026-09-01", "2026-09-04"]);
        assert_eq!(plan[1].files, vec!["d1", "d2", "d3"]);
        assert_eq!(plan[0].bytes, 30);
    }

    #[test]
    fn compaction_respects_the_window() {
        let files = vec![
            f("a1", "2026-09-01", 1),
            f("a2", "2026-09-01", 1),
            f("b1", "2026-09-02", 1),
            f("b2", "2026-09-02", 1),
        ];
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
        let plan = plan_compaction(&files, 100, d("2026-09-02"), None);
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].date, "2026-09-02");
        assert!(plan_compaction(&files, 100, None, d("2026-08-31")).is_empty());
    }

    #[test]
    fn retention_drops_only_dates_before_the_cutoff() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let cutoff = retention_cutoff(today, Duration::days(400));
        assert_eq!(cutoff.to_string(), "2025-10-22");
        let dates: Vec<String> =
            ["2025-10-20", "2025-10-21", "2025-10-22", "2026-01-01"].iter().map(|s| s.to_string()).collect();
        assert_eq!(dates_to_drop(&dates, cutoff), vec!["2025-10-20", "2025-10-21"]);
    }

    #[test]
    fn retention_longer_than_the_calendar_keeps_everything() {
        // Regression (issue 19): `retention --keep 99999999d` panicked.
        let today = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let cutoff = retention_cutoff(today, Duration::days(99_999_999));
        assert!(dates_to_drop(&["0001-01-01".to_string()], cutoff).is_empty());
    }
}
