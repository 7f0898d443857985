//! Turns one raw entry into one row of `audit_log`, or a rejection with its reason.
//!
//! Rules (DESIGN.md, "Schema"): values are kept as sent; a record is rejected, never guessed,
//! when it is not a JSON object, has no `id`, or has no parseable RFC 3339 `timestamp`, or when a
//! known string field holds an object or array. A known string field holding a number or boolean
//! keeps its JSON text. Fields the schema does not name are kept in `extra`, so nothing is lost.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::schema::{PLAIN_STRING_FIELDS, col};

/// One normalised entry, borrowing from the raw text where it can.
#[derive(Debug, Default, PartialEq)]
pub struct Row<'a> {
    pub id: Cow<'a, str>,
    /// Microseconds since the epoch, UTC.
    pub timestamp_us: i64,
    /// Days since the epoch of the UTC date.
    pub date: i32,
    /// Values of [`PLAIN_STRING_FIELDS`], in that order.
    pub strings: [Option<Cow<'a, str>>; PLAIN_STRING_FIELDS.len()],
    pub tags: Option<Vec<Cow<'a, str>>>,
    pub revision_id: Option<Cow<'a, str>>,
    pub extra_data: Option<String>,
    pub extra: Option<String>,
}

/// Why a record was rejected; the text goes to `_rejected/` beside the raw record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection(pub String);

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn reject<T>(reason: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection(reason.into()))
}

/// 0001-01-01 and 9999-12-31 as Date32: a partition folder outside them (`date=-0001-12-31`,
/// `date=+10000-01-01`) is one Spark cannot read and retention never removes.
const MIN_DAY: i32 = -719_162;
const MAX_DAY: i32 = 2_932_896;

/// Parses an RFC 3339 timestamp with any offset and up to nanosecond precision; returns UTC
/// microseconds (sub-microsecond digits truncated) and the UTC date as days since the epoch.
pub fn parse_timestamp(text: &str) -> Option<(i64, i32)> {
    let dt = DateTime::parse_from_rfc3339(text.trim()).ok()?.with_timezone(&Utc);
    Some((dt.timestamp_micros(), crate::time::days_since_epoch(dt.date_naive())))
}

/// An entry parsed as far as its `id` and UTC date: all the dedupe check needs. The rest of
/// the row is built by [`Parsed::finish`], so an entry already in the table costs no more.
pub struct Parsed<'a> {
    fields: Members<'a>,
    pub id: Cow<'a, str>,
    /// Microseconds since the epoch, UTC.
    pub timestamp_us: i64,
    /// Days since the epoch of the UTC date.
    pub date: i32,
}

/// Normalises one raw entry.
pub fn normalise(text: &[u8]) -> Result<Row<'_>, Rejection> {
    parse(text)?.finish()
}

/// Parses one raw entry and checks its `id` and `timestamp`.
pub fn parse(text: &[u8]) -> Result<Parsed<'_>, Rejection> {
    // Validate UTF-8 once for the whole entry (std's check is fast on ASCII), then parse as
    // text, so serde_json does not re-check every key and value it borrows.
    let text = std::str::from_utf8(text)
        .map_err(|e| Rejection(format!("invalid UTF-8 at byte {} of the entry", e.valid_up_to())))?;
    let fields = parse_object(text)?;
    let value = |name: &str| fields.0.iter().find(|(k, _)| k == name).map(|(_, v)| *v);

    let id = match value(col::ID).map(|v| as_text(col::ID, v)).transpose()?.flatten() {
        Some(id) if !id.trim().is_empty() => id,
        Some(_) => return reject("empty `id`"),
        None => return reject("missing `id`"),
    };

    let ts = match value(col::TIMESTAMP) {
        None => return reject("missing `timestamp`"),
        Some(v) => match kind(v) {
            Kind::Null => return reject("missing `timestamp` (null)"),
            Kind::String => unescape(v).map_err(|e| Rejection(format!("bad `timestamp`: {e}")))?,
            _ => return reject(format!("unparseable `timestamp` {}: expected an RFC 3339 string", clip(v.get()))),
        },
    };
    let (timestamp_us, date) = parse_timestamp(&ts).ok_or_else(|| {
        Rejection(format!(
            "unparseable `timestamp` {}: expected RFC 3339 with an offset, e.g. 2026-09-01T08:51:11.9Z",
            clip(&format!("{ts:?}"))
        ))
    })?;
    if !(MIN_DAY..=MAX_DAY).contains(&date) {
        return reject(format!(
            "`timestamp` {} is outside the years 0001-9999 in UTC, which no Delta or Parquet reader can partition",
            clip(&format!("{ts:?}"))
        ));
    }
    Ok(Parsed { fields, id, timestamp_us, date })
}

impl<'a> Parsed<'a> {
    /// The whole row: known string fields, `extra_data` and what it lifts, and `extra`.
    pub fn finish(self) -> Result<Row<'a>, Rejection> {
        let mut row = Row { id: self.id, timestamp_us: self.timestamp_us, date: self.date, ..Default::default() };
        let mut extra_data = None;
        let mut extra: Vec<(&Cow<str>, &RawValue)> = Vec::new();
        for (key, value) in &self.fields.0 {
            let key_str: &str = key;
            match key_str {
                col::ID | col::TIMESTAMP => {}
                col::EXTRA_DATA => extra_data = Some(*value),
                other => match PLAIN_STRING_FIELDS.iter().position(|f| *f == other) {
                    Some(i) => row.strings[i] = as_text(other, value)?,
                    None => extra.push((key, value)),
                },
            }
        }

        if let Some(v) = extra_data {
            lift_extra_data(v, &mut row)?;
        }

        if !extra.is_empty() {
            let mut out = String::from("{");
            for (i, (key, value)) in extra.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(key.as_ref()).expect("string serialises"));
                out.push(':');
                minify_into(value.get(), &mut out);
            }
            out.push('}');
            row.extra = Some(out);
        }
        Ok(row)
    }
}

/// Keeps `extra_data` as compact JSON text and lifts `tags`, `revision_id` and `scenario_id`.
fn lift_extra_data<'a>(value: &'a RawValue, row: &mut Row<'a>) -> Result<(), Rejection> {
    if kind(value) == Kind::Null {
        return Ok(());
    }
    let mut text = String::with_capacity(value.get().len());
    minify_into(value.get(), &mut text);
    row.extra_data = Some(text);
    if kind(value) != Kind::Object {
        // Kept as sent, but there is nothing to lift from a non-object.
        return Ok(());
    }
    let fields = parse_object(value.get())?;
    let scenario_slot = PLAIN_STRING_FIELDS.iter().position(|f| *f == col::SCENARIO_ID).expect("scenario_id");
    for (key, v) in fields.0 {
        match key.as_ref() {
            "tags" => row.tags = lift_tags(v)?,
            "revision_id" => row.revision_id = as_text("extra_data.revision_id", v)?,
            "scenario_id" if row.strings[scenario_slot].is_none() => {
                row.strings[scenario_slot] = as_text("extra_data.scenario_id", v)?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn lift_tags(value: &RawValue) -> Result<Option<Vec<Cow<'_, str>>>, Rejection> {
    match kind(value) {
        Kind::Null => Ok(None),
        Kind::Array => {
            let items: Vec<&RawValue> =
                serde_json::from_str(value.get()).map_err(|e| Rejection(format!("bad `extra_data.tags`: {e}")))?;
            let mut tags = Vec::with_capacity(items.len());
            for item in items {
                match kind(item) {
                    Kind::Null => {}
                    Kind::String => tags.push(unescape(item).map_err(|e| Rejection(format!("bad tag: {e}")))?),
                    // A number, boolean or object among tags keeps its JSON text.
                    _ => {
                        let mut s = String::new();
                        minify_into(item.get(), &mut s);
                        tags.push(Cow::Owned(s));
                    }
                }
            }
            Ok(Some(tags))
        }
        // A single tag sent as a string is a list of one.
        Kind::String => Ok(Some(vec![unescape(value).map_err(|e| Rejection(format!("bad tag: {e}")))?])),
        _ => reject(format!("`extra_data.tags` holds {}; expected an array of strings", clip(value.get()))),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    String,
    Object,
    Array,
    /// Number or boolean.
    Scalar,
}

fn kind(v: &RawValue) -> Kind {
    match v.get().as_bytes().first() {
        Some(b'n') => Kind::Null,
        Some(b'"') => Kind::String,
        Some(b'{') => Kind::Object,
        Some(b'[') => Kind::Array,
        _ => Kind::Scalar,
    }
}

/// A known string field: strings as text, numbers and booleans as their JSON text, null as
/// missing; objects and arrays are a rejection (a wrong type, not something to guess at).
fn as_text<'a>(field: &str, v: &'a RawValue) -> Result<Option<Cow<'a, str>>, Rejection> {
    match kind(v) {
        Kind::Null => Ok(None),
        Kind::String => unescape(v).map(Some).map_err(|e| Rejection(format!("bad `{field}`: {e}"))),
        Kind::Scalar => Ok(Some(Cow::Borrowed(v.get()))),
        Kind::Object => reject(format!("`{field}` holds an object; expected a string")),
        Kind::Array => reject(format!("`{field}` holds an array; expected a string")),
    }
}

/// The string inside a JSON string literal, borrowed when it has no escapes.
fn unescape(v: &RawValue) -> Result<Cow<'_, str>, serde_json::Error> {
    let raw = v.get();
    let inner = &raw[1..raw.len() - 1];
    if !inner.contains('\\') {
        return Ok(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(raw).map(Cow::Owned)
}

/// Whether `json` has whitespace outside its strings. Usually not (Torq sends compact JSON), and
/// a byte scan is much cheaper than the char-by-char copy below.
fn has_insignificant_whitespace(json: &str) -> bool {
    let (mut in_string, mut escape) = (false, false);
    for &b in json.as_bytes() {
        if in_string {
            if escape {
                escape = false;
            } else if b == b'\\' {
                escape = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if b.is_ascii_whitespace() {
            return true;
        }
    }
    false
}

/// Appends `json` without insignificant whitespace, keeping key order and string contents.
fn minify_into(json: &str, out: &mut String) {
    if !has_insignificant_whitespace(json) {
        out.push_str(json);
        return;
    }
    let mut in_string = false;
    let mut escape = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escape {
                escape = false;
            } else if c == '\\' {
                escape = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !c.is_ascii_whitespace() {
            in_string = c == '"';
            out.push(c);
        }
    }
}

/// At most 80 characters of a value, for messages.
fn clip(text: &str) -> String {
    if text.chars().count() <= 80 {
        text.to_string()
    } else {
        let head: String = text.chars().take(77).collect();
        format!("{head}...")
    }
}

/// A JSON object's members in order, values unparsed.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

/// Keys checked for repeats by a scan; past this, by a hash index.
const SCANNED_KEYS: usize = 32;

#[derive(Deserialize)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(Cow<'de, str>, &'de RawValue)> = Vec::with_capacity(16);
                // Torq entries have about fifteen keys, where a scan beats hashing; an entry with
                // thousands (hostile, or a bug) gets an index, so a repeat check stays O(1).
                let mut index: Option<std::collections::HashMap<Cow<'de, str>, usize>> = None;
                while let Some(Key(k)) = map.next_key()? {
                    let v: &'de RawValue = map.next_value()?;
                    let found = match &index {
                        Some(index) => index.get(&k).copied(),
                        None => out.iter().position(|(existing, _)| *existing == k),
                    };
                    match found {
                        // A repeated key: the last one wins, as in most JSON readers.
                        Some(i) => out[i].1 = v,
                        None => {
                            if let Some(index) = index.as_mut() {
                                index.insert(k.clone(), out.len());
                            }
                            out.push((k, v));
                            if index.is_none() && out.len() > SCANNED_KEYS {
                                index = Some(out.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)).collect());
                            }
                        }
                    }
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

fn parse_object(text: &str) -> Result<Members<'_>, Rejection> {
    let first = text.bytes().find(|b| !b.is_ascii_whitespace());
    if first != Some(b'{') {
        // Say what it is, if it is JSON at all.
        return match serde_json::from_str::<&RawValue>(text) {
            Ok(v) => reject(format!("not a JSON object: {}", clip(v.get()))),
            Err(e) => reject(format!("invalid JSON: {e}")),
        };
    }
    serde_json::from_str::<Members>(text).map_err(|e| {
        if e.is_eof() { Rejection(format!("truncated JSON: {e}")) } else { Rejection(format!("invalid JSON: {e}")) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(row: &Row, field: &str) -> Option<String> {
        let i = PLAIN_STRING_FIELDS.iter().position(|f| *f == field).unwrap();
        row.strings[i].as_ref().map(|s| s.to_string())
    }

    #[test]
    fn vendor_sample_normalises() {
        let text = br#"{ "account_id": "1d8", "account_name": "mrsactor",
  "action": "Workflow updated", "actor_name": "Mrs. Actor ", "actor_type": "web_app",
  "email": "mrs.actor@torqy.io",
  "extra_data": { "revision_id": "f31bb", "tags": ["tag1", "tag2", "tag3"] },
  "id": "8aa", "ip": "77.1.1.237", "resource_id": "a0f5b", "resource_name": "Audit log (step)",
  "timestamp": "2022-05-15T08:51:11.900970Z", "user_agent": "Mozilla/5.0" }"#;
        let row = normalise(text).unwrap();
        assert_eq!(row.id, "8aa");
        assert_eq!(string(&row, "actor_name").as_deref(), Some("Mrs. Actor "));
        assert_eq!(row.tags.as_ref().unwrap(), &["tag1", "tag2", "tag3"]);
        assert_eq!(row.revision_id.as_deref(), Some("f31bb"));
        assert_eq!(row.extra_data.as_deref(), Some(r#"{"revision_id":"f31bb","tags":["tag1","tag2","tag3"]}"#));
        assert_eq!(row.extra, None);
        assert_eq!(crate::time::format_date(row.date), "2022-05-15");
        assert_eq!(row.timestamp_us, 1_652_604_671_900_970);
    }

    #[test]
    fn offsets_cross_midnight_into_the_utc_date() {
        let (us, day) = parse_timestamp("2026-09-01T01:30:00+02:00").unwrap();
        assert_eq!(crate::time::format_date(day), "2026-08-31");
        assert_eq!(us, parse_timestamp("2026-08-31T23:30:00Z").unwrap().0);
        let (_, day) = parse_timestamp("2026-08-31T22:00:00.123456789-05:00").unwrap();
        assert_eq!(crate::time::format_date(day), "2026-09-01");
    }

    #[test]
    fn nanoseconds_truncate_to_microseconds() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:01.123456789Z").unwrap().0, 1_123_456);
    }

    #[test]
    fn timestamps_without_offset_are_rejected() {
        assert!(parse_timestamp("2026-09-01T01:30:00").is_none());
        assert!(parse_timestamp("yesterday").is_none());
    }

    #[test]
    fn repeated_keys_in_a_wide_entry_keep_the_last_value() {
        // Regression (issue 19): repeats were found by a scan per key, quadratic in the keys.
        let mut text = String::from(r#"{"id":"first","timestamp":"2026-09-01T00:00:00Z""#);
        for i in 0..20_000 {
            text.push_str(&format!(r#","k{i}":{i}"#));
        }
        text.push_str(r#","id":"last","k7":"seven"}"#);
        let row = normalise(text.as_bytes()).unwrap();
        assert_eq!(row.id, "last");
        let extra: serde_json::Value = serde_json::from_str(row.extra.as_deref().unwrap()).unwrap();
        assert_eq!(extra.as_object().unwrap().len(), 20_000);
        assert_eq!(extra["k7"], "seven");
    }

    #[test]
    fn timestamps_outside_years_1_to_9999_are_rejected() {
        // Regression (issue 19): these made partitions `date=-0001-12-31` and `date=+10000-01-01`.
        for ts in ["0000-12-31T23:00:00Z", "0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00"] {
            let text = format!(r#"{{"id":"x","timestamp":"{ts}"}}"#);
            let err = normalise(text.as_bytes()).err().unwrap_or_else(|| panic!("{ts} was accepted"));
            assert!(err.0.contains("0001-9999"), "{ts}: {}", err.0);
        }
        for ts in ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"] {
            let text = format!(r#"{{"id":"x","timestamp":"{ts}"}}"#);
            assert!(normalise(text.as_bytes()).is_ok(), "{ts}");
        }
        assert_eq!(MIN_DAY, crate::time::days_since_epoch(chrono::NaiveDate::from_ymd_opt(1, 1, 1).unwrap()));
        assert_eq!(MAX_DAY, crate::time::days_since_epoch(chrono::NaiveDate::from_ymd_opt(9999, 12, 31).unwrap()));
        let err = normalise(br#"{"id":"a","timestamp":"2026-09-01 10:00"}"#).unwrap_err();
        assert!(err.0.contains("unparseable `timestamp`"), "{err}");
        let err = normalise(br#"{"id":"a","timestamp":1700000000}"#).unwrap_err();
        assert!(err.0.contains("expected an RFC 3339 string"), "{err}");
    }

    #[test]
    fn ai_analyst_entry_without_actor_type_ip_user_agent() {
        let row = normalise(br#"{"id":"x","timestamp":"2026-09-01T00:00:00Z","action":"Case Updated","actor_name":"Torq AI","ip":null}"#).unwrap();
        assert_eq!(string(&row, "actor_type"), None);
        assert_eq!(string(&row, "ip"), None);
        assert_eq!(string(&row, "user_agent"), None);
    }

    #[test]
    fn numbers_and_booleans_keep_their_text() {
        let row =
            normalise(br#"{"id":12345,"timestamp":"2026-09-01T00:00:00Z","resource_id":4711,"resource_name":true}"#)
                .unwrap();
        assert_eq!(row.id, "12345");
        assert_eq!(string(&row, "resource_id").as_deref(), Some("4711"));
        assert_eq!(string(&row, "resource_name").as_deref(), Some("true"));
    }

    #[test]
    fn objects_in_string_fields_are_rejected() {
        let err = normalise(br#"{"id":"a","timestamp":"2026-09-01T00:00:00Z","email":{"x":1}}"#).unwrap_err();
        assert_eq!(err.0, "`email` holds an object; expected a string");
        let err = normalise(br#"{"id":["a"],"timestamp":"2026-09-01T00:00:00Z"}"#).unwrap_err();
        assert_eq!(err.0, "`id` holds an array; expected a string");
    }

    #[test]
    fn scenario_id_from_top_level_or_extra_data() {
        let row = normalise(br#"{"id":"a","timestamp":"2026-09-01T00:00:00Z","extra_data":{"scenario_id":"CASE_CREATED","linked_case_id":"7"}}"#).unwrap();
        assert_eq!(string(&row, "scenario_id").as_deref(), Some("CASE_CREATED"));
        let row = normalise(br#"{"id":"a","timestamp":"2026-09-01T00:00:00Z","scenario_id":"NOTE_UPDATED","extra_data":{"scenario_id":"CASE_CREATED"}}"#).unwrap();
        assert_eq!(string(&row, "scenario_id").as_deref(), Some("NOTE_UPDATED"));
    }

    #[test]
    fn unknown_fields_go_to_extra_verbatim_and_in_order() {
        let row =
            normalise(br#"{"zeta": {"a" : [1, 2]}, "id":"a","timestamp":"2026-09-01T00:00:00Z","new\"field":"v w"}"#)
                .unwrap();
        assert_eq!(row.extra.as_deref(), Some(r#"{"zeta":{"a":[1,2]},"new\"field":"v w"}"#));
    }

    #[test]
    fn escapes_are_decoded() {
        let row =
            normalise(br#"{"id":"a\u00e9","timestamp":"2026-09-01T00:00:00Z","actor_name":"<script>\"x\"</script>"}"#)
                .unwrap();
        assert_eq!(row.id, "a\u{e9}");
        assert_eq!(string(&row, "actor_name").as_deref(), Some("<script>\"x\"</script>"));
    }

    #[test]
    fn rejections_say_why() {
        let cases: [(&[u8], &str); 8] = [
            (b"[1,2]", "not a JSON object"),
            (b"\"hello\"", "not a JSON object"),
            (b"not json", "invalid JSON"),
            (br#"{"id":"a","timestamp":"2026-09-01T00:00:00Z""#, "truncated JSON"),
            (br#"{"timestamp":"2026-09-01T00:00:00Z"}"#, "missing `id`"),
            (br#"{"id":"  ","timestamp":"2026-09-01T00:00:00Z"}"#, "empty `id`"),
            (br#"{"id":"a"}"#, "missing `timestamp`"),
            (b"{\"id\":\"a\xff\",\"timestamp\":\"2026-09-01T00:00:00Z\"}", "invalid UTF-8 at byte 8"),
        ];
        for (text, want) in cases {
            let err = normalise(text).unwrap_err();
            assert!(err.0.starts_with(want), "{}: got {err}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn tags_with_odd_members() {
        let row =
            normalise(br#"{"id":"a","timestamp":"2026-09-01T00:00:00Z","extra_data":{"tags":["x",null,3]}}"#).unwrap();
        assert_eq!(row.tags.unwrap(), vec!["x", "3"]);
        let err =
            normalise(br#"{"id":"a","timestamp":"2026-09-01T00:00:00Z","extra_data":{"tags":{"a":1}}}"#).unwrap_err();
        assert!(err.0.contains("expected an array of strings"));
    }
}
