//! The one definition of the `audit_log` table: its columns, types and partitioning.
//!
//! Everything else (the ingest batch builder, the Delta table, `auditlake schema`) derives from
//! [`arrow_schema`], so a column is added in exactly one place.

use std::sync::Arc;

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use deltalake::arrow::error::ArrowError;

/// The Delta table's name under the lake root.
pub const TABLE_NAME: &str = "audit_log";
/// The partition column: the UTC date of `timestamp`.
pub const PARTITION_COLUMN: &str = "date";

/// Column names, so that code never spells them twice.
pub mod col {
    pub const ID: &str = "id";
    pub const TIMESTAMP: &str = "timestamp";
    pub const DATE: &str = "date";
    pub const ACCOUNT_ID: &str = "account_id";
    pub const ACCOUNT_NAME: &str = "account_name";
    pub const ACTION: &str = "action";
    pub const ACTOR_NAME: &str = "actor_name";
    pub const ACTOR_TYPE: &str = "actor_type";
    pub const EMAIL: &str = "email";
    pub const IP: &str = "ip";
    pub const USER_AGENT: &str = "user_agent";
    pub const RESOURCE_ID: &str = "resource_id";
    pub const RESOURCE_NAME: &str = "resource_name";
    pub const SCENARIO_ID: &str = "scenario_id";
    pub const TAGS: &str = "tags";
    pub const REVISION_ID: &str = "revision_id";
    pub const EXTRA_DATA: &str = "extra_data";
    pub const EXTRA: &str = "extra";
    pub const INGESTED_AT: &str = "ingested_at";
    pub const SOURCE: &str = "source";
}

/// Top-level record fields that map one-to-one onto a string column of the same name.
/// (`id` and `timestamp` are required and handled apart; `extra_data` is an object.)
pub const PLAIN_STRING_FIELDS: [&str; 11] = [
    col::ACCOUNT_ID,
    col::ACCOUNT_NAME,
    col::ACTION,
    col::ACTOR_NAME,
    col::ACTOR_TYPE,
    col::EMAIL,
    col::IP,
    col::USER_AGENT,
    col::RESOURCE_ID,
    col::RESOURCE_NAME,
    col::SCENARIO_ID,
];

/// Columns with few distinct values (hundreds, not one per event), which the writer's Parquet
/// dictionaries hold whole: an aggregation grouping by them reads their dictionary codes
/// ([`crate::engine::dictionary_keys`]).
pub const DICTIONARY_COLUMNS: [&str; 7] =
    [col::ACCOUNT_ID, col::ACCOUNT_NAME, col::ACTION, col::ACTOR_NAME, col::ACTOR_TYPE, col::EMAIL, col::SCENARIO_ID];

/// The timestamp type of every time column: microseconds, UTC (Delta's `timestamp`).
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The element field of `tags`; named `element` as Delta's Parquet writer names list items.
pub fn tag_item_field() -> Arc<Field> {
    Arc::new(Field::new("element", DataType::Utf8, true))
}

/// A type as people read it, for `auditlake schema`.
pub fn type_name(t: &DataType) -> String {
    match t {
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => "string".into(),
        DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) => format!("timestamp (µs, {tz})"),
        DataType::Date32 => "date".into(),
        DataType::List(item) => format!("list<{}>", type_name(item.data_type())),
        other => other.to_string(),
    }
}

/// A short human description of each column, for `auditlake schema`.
pub fn describe(column: &str) -> &'static str {
    match column {
        col::ID => "event id from Torq; the dedupe key",
        col::TIMESTAMP => "when it happened, normalised to UTC",
        col::DATE => "UTC date of timestamp; the partition column",
        col::ACCOUNT_ID => "workspace id",
        col::ACCOUNT_NAME => "workspace name",
        col::ACTION => "what happened, e.g. 'Workflow updated'",
        col::ACTOR_NAME => "user, API key name; kept as sent (trailing spaces too)",
        col::ACTOR_TYPE => "web_app, api_key, or null (Torq's AI analyst)",
        col::EMAIL => "actor's email; for api_key actors, the key's creator",
        col::IP => "client IP, when sent",
        col::USER_AGENT => "client user agent, when sent",
        col::RESOURCE_ID => "affected resource (cases use numbers)",
        col::RESOURCE_NAME => "affected resource's name",
        col::SCENARIO_ID => "case scenario, from the top level or extra_data.scenario_id",
        col::TAGS => "extra_data.tags (workflow actions)",
        col::REVISION_ID => "extra_data.revision_id (workflow actions)",
        col::EXTRA_DATA => "the whole extra_data object as JSON text",
        col::EXTRA => "top-level fields the schema does not name, as a JSON object",
        col::INGESTED_AT => "when the ingest run that wrote this row started",
        col::SOURCE => "input file or URL and line the row came from",
        _ => "",
    }
}

/// The Arrow schema of `audit_log`, in column order. `date` is stored in the directory name
/// (`date=YYYY-MM-DD/`), not inside the Parquet files.
pub fn arrow_schema() -> SchemaRef {
    let s = |name: &str| Field::new(name, DataType::Utf8, true);
    Arc::new(Schema::new(vec![
        Field::new(col::ID, DataType::Utf8, false),
        Field::new(col::TIMESTAMP, timestamp_type(), false),
        Field::new(col::DATE, DataType::Date32, true),
        s(col::ACCOUNT_ID),
        s(col::ACCOUNT_NAME),
        s(col::ACTION),
        s(col::ACTOR_NAME),
        s(col::ACTOR_TYPE),
        s(col::EMAIL),
        s(col::IP),
        s(col::USER_AGENT),
        s(col::RESOURCE_ID),
        s(col::RESOURCE_NAME),
        s(col::SCENARIO_ID),
        Field::new(col::TAGS, DataType::List(tag_item_field()), true),
        s(col::REVISION_ID),
        s(col::EXTRA_DATA),
        s(col::EXTRA),
        Field::new(col::INGESTED_AT, timestamp_type(), true),
        s(col::SOURCE),
    ]))
}

/// Casts a batch read back from the table (DataFusion reads strings as Utf8View) to the
/// table's own types, column by column, by name.
pub fn conform(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let target = arrow_schema();
    let columns = target
        .fields()
        .iter()
        .map(|f| {
            let column = batch
                .column_by_name(f.name())
                .ok_or_else(|| ArrowError::SchemaError(format!("column {} missing", f.name())))?;
            cast(column, f.data_type())
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(target, columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_is_described_and_unique() {
        let schema = arrow_schema();
        let mut names: Vec<_> = schema.fields().iter().map(|f| f.name().clone()).collect();
        for name in &names {
            assert!(!describe(name).is_empty(), "{name} has no description");
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), schema.fields().len());
        assert!(schema.field_with_name(PARTITION_COLUMN).is_ok());
    }

    #[test]
    fn plain_string_fields_are_utf8_columns() {
        let schema = arrow_schema();
        for name in PLAIN_STRING_FIELDS {
            assert_eq!(schema.field_with_name(name).unwrap().data_type(), &DataType::Utf8);
        }
    }
}
