//! Time as every job sees it: `--since` / `--until` windows (resolved against an injected clock
//! so they are testable), durations, and the table's dates (Date32: days since the Unix epoch).
//!
//! Accepted forms: a duration back from now (`7d`, `12h`, `30m`, `2w`), a date (`2026-09-01`),
//! or an RFC 3339 instant. `--since` is inclusive; `--until` with a date includes that whole day,
//! with an instant or duration it is exclusive. The window filters `timestamp` and, for partition
//! pruning, the `date` partition column.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

/// `NaiveDate::num_days_from_ce` of 1970-01-01.
const EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// A date as Date32 (days since 1970-01-01), the type of the `date` partition column.
pub fn days_since_epoch(date: NaiveDate) -> i32 {
    date.num_days_from_ce() - EPOCH_DAYS_FROM_CE
}

/// A Date32 value as a date; `None` outside chrono's range.
pub fn date_of_days(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days.checked_add(EPOCH_DAYS_FROM_CE)?)
}

/// A Date32 value as `YYYY-MM-DD`, the form of partition folders (`date=2026-09-01/`).
pub fn format_date(days: i32) -> String {
    date_of_days(days).map_or_else(|| format!("day {days}"), |d| d.format("%Y-%m-%d").to_string())
}

/// Parses a partition value `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// µs since the epoch as RFC 3339, UTC, with as many fractional digits as it needs.
pub fn rfc3339_us(us: i64) -> String {
    DateTime::from_timestamp_micros(us)
        .map_or_else(|| us.to_string(), |t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// A resolved window; either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    /// Inclusive start.
    pub since: Option<DateTime<Utc>>,
    /// Exclusive end.
    pub until: Option<DateTime<Utc>>,
}

impl Window {
    pub fn is_open(&self) -> bool {
        self.since.is_none() && self.until.is_none()
    }

    /// Resolves `--since` and `--until` against `now`.
    pub fn parse(since: Option<&str>, until: Option<&str>, now: DateTime<Utc>) -> Result<Window, String> {
        let since = since.map(|s| parse_point(s, now, false)).transpose()?;
        let until = until.map(|s| parse_point(s, now, true)).transpose()?;
        if let (Some(a), Some(b)) = (since, until)
            && a >= b
        {
            return Err(format!("--since ({}) is not before --until ({})", a.to_rfc3339(), b.to_rfc3339()));
        }
        Ok(Window { since, until })
    }

    /// First and last UTC dates the window touches (inclusive), for partition pruning.
    pub fn dates(&self) -> (Option<NaiveDate>, Option<NaiveDate>) {
        (
            self.since.map(|t| t.date_naive()),
            // The end is exclusive: an end at midnight does not touch that day.
            self.until.map(|t| (t - Duration::microseconds(1)).date_naive()),
        )
    }
}

/// Parses a duration like `400d`, `12h`, `30m`, `2w`, `90s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration '{text}': expected a number and a unit, e.g. 400d, 12h, 30m, 2w");
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (num, unit) = t.split_at(split);
    let n: i64 = num.parse().map_err(|_| bad())?;
    let d = match unit {
        "s" => Duration::try_seconds(n),
        "m" | "min" => Duration::try_minutes(n),
        "h" => Duration::try_hours(n),
        "d" => Duration::try_days(n),
        "w" => Duration::try_weeks(n),
        _ => None,
    };
    d.ok_or_else(bad)
}

fn parse_point(text: &str, now: DateTime<Utc>, end: bool) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    if let Ok(date) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        let day = if end { date.succ_opt().unwrap_or(date) } else { date };
        return Ok(day.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
    }
    if let Ok(ts) = DateTime::parse_from_rfc3339(t) {
        return Ok(ts.with_timezone(&Utc));
    }
    if t.starts_with(|c: char| c.is_ascii_digit()) && t.ends_with(|c: char| c.is_ascii_alphabetic()) {
        let d = parse_duration(t)?;
        return now
            .checked_sub_signed(d)
            .ok_or_else(|| format!("invalid time '{text}': {t} before now is out of range"));
    }
    Err(format!(
        "invalid time '{text}': expected a date (2026-09-01), an RFC 3339 time (2026-09-01T08:00:00Z) or a duration back from now (7d, 12h)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-26T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn durations_count_back_from_now() {
        let w = Window::parse(Some("7d"), None, now()).unwrap();
        assert_eq!(w.since.unwrap().to_rfc3339(), "2026-11-19T12:00:00+00:00");
        assert_eq!(w.dates(), (Some(NaiveDate::from_ymd_opt(2026, 11, 19).unwrap()), None));
    }

    #[test]
    fn until_a_date_includes_that_day() {
        let w = Window::parse(Some("2026-09-01"), Some("2026-09-30"), now()).unwrap();
        assert_eq!(w.until.unwrap().to_rfc3339(), "2026-10-01T00:00:00+00:00");
        assert_eq!(
            w.dates(),
            (Some(NaiveDate::from_ymd_opt(2026, 9, 1).unwrap()), Some(NaiveDate::from_ymd_opt(2026, 9, 30).unwrap()))
        );
    }

    #[test]
    fn instants_with_offsets_are_utc() {
        let w = Window::parse(Some("2026-09-01T01:00:00+02:00"), None, now()).unwrap();
        assert_eq!(w.dates().0, Some(NaiveDate::from_ymd_opt(2026, 8, 31).unwrap()));
    }

    #[test]
    fn bad_input_is_echoed() {
        let err = Window::parse(Some("40x"), None, now()).unwrap_err();
        assert!(err.contains("'40x'"), "{err}");
        let err = Window::parse(Some("2026-09-02"), Some("2026-09-01"), now()).unwrap_err();
        assert!(err.contains("is not before"), "{err}");
        assert!(parse_duration("12").is_err());
        assert!(parse_duration("d").is_err());
        assert_eq!(parse_duration("400d").unwrap(), Duration::days(400));
    }

    #[test]
    fn durations_out_of_range_are_errors_not_panics() {
        // Regression (issue 19): `query --since 100000000w` panicked.
        let err = Window::parse(Some("100000000w"), None, now()).unwrap_err();
        assert!(err.contains("out of range"), "{err}");
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn dates_round_trip_through_days() {
        let d = NaiveDate::from_ymd_opt(2026, 9, 1).unwrap();
        assert_eq!(days_since_epoch(NaiveDate::from_ymd_opt(1970, 1, 2).unwrap()), 1);
        assert_eq!(date_of_days(days_since_epoch(d)), Some(d));
        assert_eq!(format_date(days_since_epoch(d)), "2026-09-01");
        assert_eq!(format_date(-1), "1969-12-31");
    }
}
