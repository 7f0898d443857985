//! The table as plain Parquet: each day's live files, as the Delta log lists them, read by a
//! DataFusion listing table, with `date` added as that day's constant.
//!
//! Why: a Ballista cluster plans and runs queries from DataFusion's protobuf form of the plan,
//! which carries listing tables but not delta-rs' table provider (its codec does not serialise
//! a scan yet). Listing a partition's folder instead would also read files that a compaction
//! replaced but `vacuum` has not yet removed, counting their rows twice; naming the live files
//! one by one cannot. A filter on `date` still prunes: it folds to `false` on the other days'
//! branches and the optimiser drops them before any file is opened.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::logical_expr::LogicalPlanBuilder;
use datafusion::prelude::{DataFrame, Expr, SessionContext, col, lit};
use datafusion::scalar::ScalarValue;
use deltalake::DeltaTable;

use crate::error::{Error, Result};
use crate::lake::{self, Lake};
use crate::schema::{self, col as c};

use super::date_lit;

/// `audit_log` at `table`'s version as a union of one listing table a day over its live files.
pub fn table(lake: &Lake, table: &DeltaTable, ctx: &SessionContext) -> Result<DataFrame> {
    let snapshot = table.snapshot().map_err(|e| lake.delta_err("reading", e))?;
    let root = lake::with_trailing_slash(table.table_url().clone());
    let mut days: BTreeMap<chrono::NaiveDate, Vec<ListingTableUrl>> = BTreeMap::new();
    for file in snapshot.log_data().iter() {
        let date = lake::file_day(&file)?;
        let bad = |reason: String| Error::TableFile { path: file.path().to_string(), reason };
        // Log paths are relative and URL-encoded, which is what `join` expects.
        let url = root.join(&file.path()).map_err(|e| bad(e.to_string()))?;
        days.entry(date).or_default().push(ListingTableUrl::parse(url.as_str())?);
    }
    if days.is_empty() {
        return empty(ctx);
    }

    // The files hold every column but the partition column.
    let full = schema::arrow_schema();
    let file_schema = Arc::new(datafusion::arrow::datatypes::Schema::new(
        full.fields().iter().filter(|f| f.name() != c::DATE).cloned().collect::<Vec<_>>(),
    ));
    let format = ParquetFormat::default().with_options(ctx.state().table_options().parquet.clone());
    let options = ListingOptions::new(Arc::new(format)).with_file_extension(".parquet");

    let mut union: Option<DataFrame> = None;
    for (day, urls) in days {
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options.clone())
            .with_schema(file_schema.clone());
        let scan = ctx.read_table(Arc::new(ListingTable::try_new(config)?))?;
        let columns: Vec<Expr> = full
            .fields()
            .iter()
            .map(|f| if f.name() == c::DATE { date_lit(day).alias(c::DATE) } else { col(f.name()) })
            .collect();
        let scan = scan.select(columns)?;
        union = Some(match union {
            None => scan,
            Some(u) => u.union(scan)?,
        });
    }
    Ok(union.expect("at least one day"))
}

/// No rows, the table's columns, as a plan a cluster can carry: one row of typed nulls,
/// filtered out.
pub fn empty(ctx: &SessionContext) -> Result<DataFrame> {
    let full = schema::arrow_schema();
    let nulls: Vec<Expr> = full
        .fields()
        .iter()
        .map(|f| ScalarValue::try_from(f.data_type()).map(lit))
        .collect::<std::result::Result<_, _>>()?;
    let names: Vec<&str> = full.fields().iter().map(|f| f.name().as_str()).collect();
    Ok(values(ctx, vec![nulls], &names)?.filter(lit(false))?)
}

/// Literal rows as a table with these column names: a VALUES plan, which a cluster can carry
/// where an in-memory table cannot go over the wire.
pub fn values(ctx: &SessionContext, rows: Vec<Vec<Expr>>, names: &[&str]) -> Result<DataFrame> {
    let plan = LogicalPlanBuilder::values(rows)?.build()?;
    let named: Vec<Expr> = names.iter().enumerate().map(|(i, n)| col(format!("column{}", i + 1)).alias(*n)).collect();
    Ok(DataFrame::new(ctx.state(), plan).select(named)?)
}
