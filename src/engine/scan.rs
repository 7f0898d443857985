//! The local read path: DataFusion's own Parquet scan over the live files the Delta log lists,
//! with Parquet row filtering chosen per query.
//!
//! Why not delta-rs' scan: it wraps DataFusion's Parquet scan in an operator that rebuilds every
//! batch (a file-id column per batch, partition values added as dictionaries, a cast of each
//! column to the logical type). On the benchmark's 5M-event lake that was 15% of the CPU of a
//! `GROUP BY action` (perf, issue 21). auditlake's tables use no Delta feature that needs a
//! reader's help (column mapping, deletion vectors: reader version 1, refused otherwise), so the
//! live files can be read as they are: the log names them, the `date` partition value is added
//! by DataFusion as a constant per file, and a filter on `date` drops files before any is opened.
//! Listing folders instead would also read files that a compaction replaced but `vacuum` has not
//! yet removed, counting their rows twice; naming the live files one by one cannot.
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
//! row groups and pages by their statistics, and DataFusion applies them again above the scan
//! (they are reported as inexact), so the rows are the same whichever way the scan reads. The
//! setting is per query: a report's queries each choose their own.
//!
//! Two kinds of filter are exact, applied here and not again above: a filter on `date` alone
//! (it picks files), and `column IS NOT NULL`: the scan drops those rows itself
//! ([`super::drop_nulls`]), with a filter that handles list columns in one pass, so DataFusion
//! plans no `FilterExec` (which copied `tags` through arrow's slow generic path and then
//! coalesced the batches) above it.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, Date32Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchema, Statistics};
use datafusion::datasource::TableType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::prelude::DataFrame;

use super::drop_nulls::DropNullsExec;
use crate::error::{Error, Result};
use crate::lake::ReadSnapshot;
use crate::schema::{self, col as c};

/// `audit_log` at one table version: its live Parquet files, read with or without a Parquet row
/// filter as the query's session says (`datafusion.execution.parquet.pushdown_filters`).
#[derive(Debug)]
pub struct AdaptiveScan {
    read: ReadSnapshot,
    /// Whether each file can be read with the table's own Arrow types named up front (strings as
    /// views, also inside `tags`), which spares the reader a cast per batch. True for every table
    /// auditlake writes; a table with other columns is read with DataFusion's own coercions.
    typed_files: bool,
}

impl AdaptiveScan {
    /// The scan of `read`'s version; an error for a table that needs a Delta reader's help.
    pub fn new(read: &ReadSnapshot) -> Result<AdaptiveScan> {
        let reader_version = read.state.reader_version;
        if reader_version > 1 {
            return Err(Error::TableFile {
                path: "_delta_log".into(),
                reason: format!(
                    "the table needs Delta reader version {reader_version} (column mapping or deletion \
                     vectors), which auditlake does not write or read"
                ),
            });
        }
        let names = |s: &Schema| s.fields().iter().map(|f| f.name().clone()).collect::<Vec<_>>();
        let typed_files = read.state.columns == names(&schema::arrow_schema());
        Ok(AdaptiveScan { read: read.clone(), typed_files })
    }
}

/// The table's schema as the scan returns it: strings as views (`Utf8View`, also inside `tags`),
/// which DataFusion's operators handle fastest.
pub fn read_schema() -> SchemaRef {
    Arc::new(Schema::new(schema::arrow_schema().fields().iter().map(|f| Arc::new(as_view(f))).collect::<Vec<_>>()))
}

fn as_view(field: &Field) -> Field {
    match field.data_type() {
        DataType::Utf8 => field.clone().with_data_type(DataType::Utf8View),
        DataType::List(item) => field.clone().with_data_type(DataType::List(Arc::new(as_view(item)))),
        _ => field.clone(),
    }
}

/// The columns inside each data file: every column but `date`, in the table's order.
fn file_schema() -> SchemaRef {
    let fields: Vec<FieldRef> = read_schema().fields().iter().filter(|f| f.name() != c::DATE).cloned().collect();
    Arc::new(Schema::new(fields))
}

/// The scan's columns are the file's then `date`; the table's have `date` third.
fn scan_index(table_index: usize, date_index: usize, file_columns: usize) -> usize {
    use std::cmp::Ordering::*;
    match table_index.cmp(&date_index) {
        Less => table_index,
        Equal => file_columns,
        Greater => table_index - 1,
    }
}

fn df_err(e: impl std::error::Error + Send + Sync + 'static) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

impl AdaptiveScan {
    /// The live files whose date passes every filter on `date` alone, as DataFusion's files with
    /// their date and row count.
    fn live_files(&self, state: &dyn Session, date_filters: &[&Expr]) -> DfResult<Vec<PartitionedFile>> {
        let live = &self.read.state.files;
        let days = live.iter().map(|f| f.day()).collect::<Result<Vec<_>>>().map_err(df_err)?;
        // Each filter on `date` evaluated once per file, over a column of the files' dates.
        let mut keep = vec![true; live.len()];
        if !date_filters.is_empty() && !live.is_empty() {
            let dates = Date32Array::from_iter_values(days.iter().map(|d| crate::time::days_since_epoch(*d)));
            let date_schema = Arc::new(Schema::new(vec![date_field()]));
            let batch = RecordBatch::try_new(date_schema.clone(), vec![Arc::new(dates) as ArrayRef])?;
            let df_schema = DFSchema::try_from(date_schema.as_ref().clone())?;
            for filter in date_filters {
                let expr = state.create_physical_expr((*filter).clone(), &df_schema)?;
                let result = expr.evaluate(&batch)?.into_array(live.len())?;
                let passed = result
                    .as_boolean_opt()
                    .ok_or_else(|| DataFusionError::Internal(format!("filter on date is not a boolean: {filter}")))?;
                for (k, p) in keep.iter_mut().zip(passed.iter()) {
                    *k &= p == Some(true);
                }
            }
        }
        let (file_schema, typed) = (file_schema(), self.typed_files);
        let mut files = Vec::new();
        for ((file, day), _) in live.iter().zip(days).zip(keep).filter(|(_, k)| *k) {
            if file.deletion_vector {
                return Err(df_err(Error::TableFile {
                    path: file.path.to_string(),
                    reason: "the file has a deletion vector, which auditlake does not write or read".into(),
                }));
            }
            let mut part = PartitionedFile::new_from_meta(object_store::ObjectMeta {
                location: file.path.clone(),
                last_modified: chrono::DateTime::UNIX_EPOCH,
                size: file.size,
                e_tag: None,
                version: None,
            });
            let mut stats = Statistics::new_unknown(&file_schema);
            stats.num_rows = file.rows.map_or(Precision::Absent, |n| Precision::Exact(n as usize));
            stats.total_byte_size = Precision::Inexact(file.size as usize);
            part = part.with_partition_values(vec![super::date_scalar(day)]).with_statistics(Arc::new(stats));
            if typed {
                part = part.with_arrow_schema(Arc::clone(&file_schema));
            }
            files.push(part);
        }
        Ok(files)
    }

    /// DataFusion's Parquet scan of the files `filters` keep, projected to `projection`.
    async fn parquet_scan(
        &self,
        row_filters: bool,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let table = read_schema();
        let date_index = table.index_of(c::DATE)?;
        let file_schema = file_schema();
        let all: Vec<usize> = (0..table.fields().len()).collect();
        let projection = projection.unwrap_or(&all);

        let (date_filters, data_filters): (Vec<&Expr>, Vec<&Expr>) = filters.iter().partition(|f| picks_files(f));
        let files = self.live_files(state, &date_filters)?;
        if files.is_empty() {
            return Ok(Arc::new(EmptyExec::new(Arc::new(table.project(projection)?))));
        }

        let env = state.runtime_env();
        let store_url = self.read.log_store.object_store_url();
        if env.object_store(&store_url).is_err() {
            env.register_object_store(store_url.as_ref(), self.read.log_store.object_store(None));
        }
        let store = env.object_store(&store_url)?;
        let reader = CachedParquetFileReaderFactory::new(store, env.cache_manager.get_file_metadata_cache());
        let table_schema =
            TableSchema::builder(file_schema.clone()).with_table_partition_cols(vec![Arc::new(date_field())]).build();
        let scan_schema = table_schema.table_schema().clone();
        // The session's Parquet settings, with row filters as this query chose.
        let mut options = state.table_options().parquet.clone();
        options.global = state.config_options().execution.parquet.clone();
        options.global.pushdown_filters = row_filters;
        let mut source = ParquetSource::new(table_schema)
            .with_table_parquet_options(options)
            .with_parquet_file_reader_factory(Arc::new(reader));
        // The null tests prune row groups by their null counts. The other (inexact) filters stay
        // in a `FilterExec` above, which DataFusion pushes into this scan itself, for pruning and
        // row filtering: adding them here too had each row filter evaluated twice.
        let null_tests = data_filters.into_iter().filter(|f| not_null_column(f).is_some()).cloned();
        if let Some(predicate) = conjunction(null_tests) {
            let df_schema = DFSchema::try_from(scan_schema.as_ref().clone())?;
            source = source.with_predicate(state.create_physical_expr(predicate, &df_schema)?);
        }
        let files_columns = file_schema.fields().len();
        let scan_projection = projection.iter().map(|i| scan_index(*i, date_index, files_columns)).collect();
        // The log's row counts are exact, so `count(*)` over the table needs no file opened.
        let mut statistics = Statistics::new_unknown(&scan_schema);
        statistics.num_rows = files
            .iter()
            .map(|f| f.statistics.as_ref().map_or(Precision::Absent, |s| s.num_rows))
            .fold(Precision::Exact(0), |sum, n| sum.add(&n));
        let config = FileScanConfigBuilder::new(store_url, Arc::new(source))
            .with_file_group(FileGroup::new(files))
            .with_statistics(statistics)
            .with_projection_indices(Some(scan_projection))?
            .with_limit(limit)
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}

fn date_field() -> Field {
    Field::new(c::DATE, DataType::Date32, true)
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

/// A filter the scan applies in full by choosing files: on `date` and nothing else.
fn picks_files(e: &Expr) -> bool {
    !e.column_refs().is_empty() && only_date(e) && !e.is_volatile()
}

/// How the scan applies each filter. Exact: filters on `date` alone (they pick files) and
/// `column IS NOT NULL` ([`AdaptiveScan::read`] drops those rows itself, see `drop_nulls`), so
/// DataFusion adds no filter (and no batch coalescing) above the scan. Everything else is
/// inexact: DataFusion keeps those filters above the scan, so the choice of reader made per
/// query cannot drop a condition.
pub fn filter_pushdown(filters: &[&Expr]) -> Vec<TableProviderFilterPushDown> {
    filters
        .iter()
        .map(|f| {
            if picks_files(f) || not_null_column(f).is_some() {
                TableProviderFilterPushDown::Exact
            } else {
                TableProviderFilterPushDown::Inexact
            }
        })
        .collect()
}

#[async_trait::async_trait]
impl TableProvider for AdaptiveScan {
    fn schema(&self) -> SchemaRef {
        read_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(filter_pushdown(filters))
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
        let not_null: Vec<&str> = filters.iter().filter_map(not_null_column).collect();
        if not_null.is_empty() {
            return self.parquet_scan(row_filters, state, projection, filters, limit).await;
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
        let plan = self.parquet_scan(row_filters, state, wanted.as_ref(), filters, None).await?;
        let read = plan.schema();
        let tested = not_null.iter().map(|name| read.index_of(name)).collect::<Result<Vec<_>, _>>()?;
        let plan: Arc<dyn ExecutionPlan> = Arc::new(DropNullsExec::new(plan, tested));
        let Some(projection) = projection else { return Ok(plan) };
        if wanted.as_ref() == Some(projection) && read.fields().len() == projection.len() {
            return Ok(plan);
        }
        // Back to the columns asked for, by name.
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
    use datafusion::prelude::{SessionContext, col, lit};

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
        ctx.register_table("audit_log", Arc::new(AdaptiveScan::new(&read).unwrap())).unwrap();
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
