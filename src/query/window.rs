//! `--since` / `--until`: a time window, resolved against an injected clock so it is testable.
//!
//! Accepted forms: a duration back from now (`7d`, `12h`, `30m`, `2w`), a date (`2026-09-01`),
//! or an RFC 3339 instant. `--since` is inclusive; `--until` with a date includes that whole day,
//! with an instant or duration it is exclusive. The window filters `timestamp` and, for partition
//! pruning, the `date` partition column.

use chrono::{DateTime, Duration, NaiveDate, Utc};

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
        return parse_duration(t).map(|d| now - d);
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
}
