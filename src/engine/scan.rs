//! The local read path: delta-rs' scan, with Parquet row filtering chosen per query.
//!
//! Pushing a filter into the Parquet reader (a row filter) decodes the filter's columns first
//! and then the other columns only for the rows that pass. That pays when the filter is
//! selective, as an id, actor or IP usually is. It costs when the filter keeps most rows: the
//! filter's columns are decoded twice, and the reader then filters every other column through a
//! bitmask. A null test (`tags IS NOT NULL`, `scenario_id IS NOT NULL`) is the common case: it
//! strips nulls before an aggregation and keeps a large share of the rows. Measured on the
//! benchmark's 1M-event lake (whole processes, the two settings alternating, medians): by_tag
//! 186 ms with the row filter, 139 ms without; by_scenario 147 ms against 125 ms; but a lookup
//! by IP 68 ms against 81 ms. A `--since/--until` window is a filter on `timestamp`, so it keeps
//! row filters on.
//!
//! So a query whose only filters on the table are null tests is planned without row filters
//! ([`choose_row_filter`]); any other filter keeps them on. Either way the filters still prune
//! files, row groups and pages by their statistics, and DataFusion applies them again above the
//! scan (every filter is reported as inexact), so the rows are the same whichever way the scan
//! reads. The setting is per query: a report's queries each choose their own.
//!
//! A filter `column IS NOT NULL` is the one exception to "inexact": the scan drops those rows
//! itself ([`super::drop_nulls`]), with a filter that handles list columns in one pass, so
//! DataFusion plans no `FilterExec` (which copied `tags` through arrow's slow generic path and
//! then coalesced the batches) above it.
//!
//! The table version is opened lazily ([`crate::lake::Lake::snapshot`]): the scan replays the
//! log for the files its filters keep, so a one-day query on a year of daily files does not
//! first list all 365 of them.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::TableType;
use datafusion::error::Result as DfResult;
use datafusion::execution::SessionState;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::prelude::{DataFrame, SessionContext};
use deltalake::delta_datafusion::TableProviderBuilder;

use super::drop_nulls::DropNullsExec;
use crate::error::Result;
use crate::schema::col as c;

/// `audit_log` through delta-rs, reading with or without a Parquet row filter as the query's
/// session says (`datafusion.execution.parquet.pushdown_filters`).
#[derive(Debug)]
pub struct AdaptiveScan {
    /// Reads with the session's settings (row filters on, unless the user turned them off).
    filtering: Arc<dyn TableProvider>,
    /// The same table with row filters off.
    plain: Arc<dyn TableProvider>,
}

impl AdaptiveScan {
    /// `provider` makes a fresh delta-rs provider builder for the table version to read.
    pub async fn new(provider: impl Fn() -> TableProviderBuilder, ctx: &SessionContext) -> Result<AdaptiveScan> {
        Self::with_state(provider, ctx.state()).await
    }

    /// [`AdaptiveScan::new`] with the settings of `state`.
    pub async fn with_state(provider: impl Fn() -> TableProviderBuilder, state: SessionState) -> Result<AdaptiveScan> {
        // The session's Parquet settings (pushdown, view types) reach delta-rs' scan only when
        // it is given the session; otherwise it uses its own defaults.
        let filtering = provider().with_session(Arc::new(state.clone())).await?;
        let mut plain_state = state;
        plain_state.config_mut().options_mut().execution.parquet.pushdown_filters = false;
        let plain = provider().with_session(Arc::new(plain_state)).await?;
        Ok(AdaptiveScan { filtering, plain })
    }
}

/// `df` with Parquet row filters turned off when the filters that reach its table scans are
/// all null tests or dates (see the module's notes). A user's explicit setting off stays off.
pub fn choose_row_filter(df: DataFrame) -> Result<DataFrame> {
    let (mut state, plan) = df.into_parts();
    if state.config_options().execution.parquet.pushdown_filters {
        // The filters a scan receives are known only after the optimiser pushed them down.
        let optimized = state.optimize(&plan)?;
        let mut filters = Vec::new();
        optimized.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                filters.extend(scan.filters.iter().cloned());
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        if !wants_row_filter(&filters) {
            state.config_mut().options_mut().execution.parquet.pushdown_filters = false;
        }
    }
    Ok(DataFrame::new(state, plan))
}

/// Whether `filters` hold a condition worth a row filter: anything on a data column other than
/// a null test. Filters on `date` only pick partitions.
pub fn wants_row_filter(filters: &[Expr]) -> bool {
    filters.iter().flat_map(split_conjunction).any(|f| {
        let null_test = matches!(f, Expr::IsNotNull(_) | Expr::IsNull(_));
        !null_test && !only_date(f)
    })
}

fn only_date(e: &Expr) -> bool {
    e.column_refs().iter().all(|col| col.name == c::DATE)
}

#[async_trait::async_trait]
impl TableProvider for AdaptiveScan {
    fn schema(&self) -> SchemaRef {
        self.filtering.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // `column IS NOT NULL` is exact: `scan` drops those rows itself (list-aware, see
        // `drop_nulls`), so DataFusion adds no filter (and no batch coalescing) above it.
        // Everything else is inexact, never exact: DataFusion keeps those filters above the
        // scan, so the choice of reader made in `scan` cannot drop a condition.
        Ok(self
            .filtering
            .supports_filters_pushdown(filters)?
            .into_iter()
            .zip(filters)
            .map(|(p, f)| match p {
                _ if not_null_column(f).is_some() => TableProviderFilterPushDown::Exact,
                TableProviderFilterPushDown::Exact => TableProviderFilterPushDown::Inexact,
                other => other,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let row_filters = state.config_options().execution.parquet.pushdown_filters;
        self.read(row_filters, state, projection, filters, limit).await
    }
}

impl AdaptiveScan {
    /// The scan, with or without Parquet row filters.
    pub async fn read(
        &self,
        row_filters: bool,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        // delta-rs fixes the setting when its provider is built, so there is one of each.
        let inner = if row_filters { &self.filtering } else { &self.plain };
        let not_null: Vec<&str> = filters.iter().filter_map(not_null_column).collect();
        if not_null.is_empty() {
            return inner.scan(state, projection, filters, limit).await;
        }
        // Read the tested columns even when the query does not select them, and no `limit`:
        // it would count rows before the nulls are dropped.
        let schema = self.schema();
        let wanted: Option<Vec<usize>> = match projection {
            None => None,
            Some(p) => {
                let mut cols = p.clone();
                for name in &not_null {
                    let i = schema.index_of(name)?;
                    if !cols.contains(&i) {
                        cols.push(i);
                    }
                }
                Some(cols)
            }
        };
        let plan = inner.scan(state, wanted.as_ref(), filters, None).await?;
        let read = plan.schema();
        let tested = not_null.iter().map(|name| read.index_of(name)).collect::<Result<Vec<_>, _>>()?;
        let plan: Arc<dyn ExecutionPlan> = Arc::new(DropNullsExec::new(plan, tested));
        let Some(projection) = projection else { return Ok(plan) };
        if wanted.as_ref() == Some(projection) && read.fields().len() == projection.len() {
            return Ok(plan);
        }
        // Back to the columns asked for, by name (the order the scan returns is its own).
        let exprs = projection
            .iter()
            .map(|i| {
                let name = schema.field(*i).name();
                let expr: Arc<dyn datafusion::physical_expr::PhysicalExpr> =
                    Arc::new(Column::new(name, read.index_of(name)?));
                Ok((expr, name.clone()))
            })
            .collect::<DfResult<Vec<_>>>()?;
        Ok(Arc::new(ProjectionExec::try_new(exprs, plan)?))
    }
}

/// The column of a filter `column IS NOT NULL`.
fn not_null_column(f: &Expr) -> Option<&str> {
    match f {
        Expr::IsNotNull(e) => match e.as_ref() {
            Expr::Column(col) => Some(col.name.as_str()),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::{col, lit};

    use super::*;

    #[test]
    fn null_tests_and_dates_read_without_a_row_filter() {
        let date = col(c::DATE).gt_eq(lit("2026-10-01"));
        assert!(!wants_row_filter(&[]));
        assert!(!wants_row_filter(&[col(c::TAGS).is_not_null()]));
        assert!(!wants_row_filter(&[col(c::SCENARIO_ID).is_not_null().and(date.clone()), col(c::IP).is_null()]));
        assert!(wants_row_filter(&[col(c::ID).eq(lit("x"))]));
        assert!(wants_row_filter(&[col(c::TAGS).is_not_null(), col(c::ACTION).eq(lit("User login failed"))]));
        assert!(wants_row_filter(&[date.and(col(c::ACTOR_TYPE).eq(lit("api_key")))]));
        // A null test inside an OR is not a plain null test.
        assert!(wants_row_filter(&[col(c::TAGS).is_not_null().or(col(c::IP).eq(lit("1.2.3.4")))]));
    }

    /// The setting each query's plan carries, after [`choose_row_filter`].
    async fn row_filters_for(ctx: &SessionContext, sql: &str) -> bool {
        let df = choose_row_filter(ctx.sql(sql).await.unwrap()).unwrap();
        df.task_ctx().session_config().options().execution.parquet.pushdown_filters
    }

    #[tokio::test]
    async fn each_query_chooses_from_the_filters_that_reach_the_scan() {
        let ctx = SessionContext::new_with_config(crate::engine::session_config().unwrap());
        let lake = crate::lake::Lake::open("memory://row-filter-choice").unwrap();
        lake.load_or_create().await.unwrap();
        let read = lake.snapshot(None).await.unwrap().expect("the table just created");
        ctx.register_table("audit_log", Arc::new(AdaptiveScan::new(|| read.provider(), &ctx).await.unwrap())).unwrap();
        let by_tag = "SELECT unnest(tags) AS tag, resource_id FROM audit_log WHERE tags IS NOT NULL";
        assert!(!row_filters_for(&ctx, by_tag).await);
        assert!(!row_filters_for(&ctx, "SELECT action, count(*) FROM audit_log GROUP BY action").await);
        assert!(row_filters_for(&ctx, "SELECT * FROM audit_log WHERE id = 'x'").await);
        // A selective filter in a subquery counts too.
        let sub = "SELECT count(*) FROM audit_log WHERE tags IS NOT NULL \
                   AND resource_id IN (SELECT resource_id FROM audit_log WHERE actor_name = 'Ann')";
        assert!(row_filters_for(&ctx, sub).await);
        // The session's own setting is not overridden by this choice.
        assert!(ctx.state().config_options().execution.parquet.pushdown_filters);
    }
}
