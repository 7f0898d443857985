//! Reads the string columns an aggregation groups by as Arrow dictionaries, straight from
//! Parquet's dictionary pages.
//!
//! The columns people group audit logs by (action, actor, actor type, email, scenario) hold a
//! few hundred distinct strings, and the writer stores them dictionary-encoded. Read as string
//! views, every row becomes a 16-byte view that the aggregation must then hash; read as a
//! dictionary, every row is a 4-byte code into the page's dictionary, which the aggregation maps
//! to its group with one array lookup ([`super::view_groups`]). The plan's other operators never
//! see the dictionaries: only the scan under the aggregation's partial half is changed, and that
//! half still hands on string views.
//!
//! Only the [`schema::DICTIONARY_COLUMNS`] are read this way: a column with many distinct values
//! outgrows its Parquet dictionary, and a reader asked for a dictionary would then build one by
//! hashing every value.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::physical_plan::{
    FileGroup, FileScanConfig, FileScanConfigBuilder, FileSource, ParquetSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::Result as DfResult;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{Column, IsNotNullExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::projection::ProjectionExec;

use super::drop_nulls::DropNullsExec;
use crate::schema;

/// The type the rewritten scan reads a key column as.
pub fn dictionary_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// `aggregate`'s input with its string key columns read as dictionaries, when the input is a
/// Parquet scan (under null filters and column projections) and some key qualifies; else `None`.
pub fn input_with_dictionary_keys(aggregate: &AggregateExec) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
    let input_schema = aggregate.input().schema();
    let mut names: Vec<String> = Vec::new();
    for (expr, _) in aggregate.group_expr().expr() {
        if let Some(col) = expr.downcast_ref::<Column>()
            && input_schema.field(col.index()).data_type() == &DataType::Utf8View
            && schema::DICTIONARY_COLUMNS.contains(&col.name())
        {
            names.push(col.name().to_string());
        }
    }
    // A column an aggregate function reads keeps its type: the function was planned for it.
    for a in aggregate.aggr_expr() {
        for e in a.expressions() {
            names.retain(|n| !references(&e, n, false));
        }
    }
    if names.is_empty() {
        return Ok(None);
    }
    rewrite(aggregate.input(), &names)
}

/// `plan` with `names` read as dictionaries, through the operators that pass columns on as
/// they are.
fn rewrite(plan: &Arc<dyn ExecutionPlan>, names: &[String]) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
    if let Some(scan) = plan.downcast_ref::<DataSourceExec>() {
        return rewrite_scan(scan, names);
    }
    let projection = plan.downcast_ref::<ProjectionExec>();
    let passes_through = plan.is::<DropNullsExec>()
        || projection.is_some_and(|p| {
            p.expr().iter().all(|e| e.expr.downcast_ref::<Column>().is_some_and(|c| c.name() == e.alias))
        });
    if !passes_through {
        return Ok(None);
    }
    let child = plan.children()[0];
    let Some(child) = rewrite(child, names)? else { return Ok(None) };
    // A projection is rebuilt from its expressions: replacing its child keeps the output schema
    // it computed for string views (a reordering projection then failed at run time).
    if let Some(p) = projection {
        return Ok(Some(Arc::new(ProjectionExec::try_new(p.expr().to_vec(), child)?)));
    }
    let options = ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute);
    Ok(Some(Arc::clone(plan).replace_children(vec![child], options)?))
}

fn rewrite_scan(scan: &DataSourceExec, names: &[String]) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
    let Some(config) = scan.data_source().downcast_ref::<FileScanConfig>() else { return Ok(None) };
    let Some(source) = config.file_source().downcast_ref::<ParquetSource>() else { return Ok(None) };
    let table = source.table_schema();
    let file_schema = table.file_schema();
    let names: Vec<&String> = names.iter().filter(|n| file_schema.field_with_name(n).is_ok()).collect();
    // A predicate may test the keys for null, but compares them with nothing: a comparison was
    // planned for string views.
    let predicate = source.filter();
    if let Some(p) = &predicate
        && names.iter().any(|n| references(p, n, true))
    {
        return Ok(None);
    }
    let Some(projection) = source.projection() else { return Ok(None) };
    let mut indices = Vec::new();
    for e in projection.iter() {
        let Some(col) = e.expr.downcast_ref::<Column>() else { return Ok(None) };
        indices.push(col.index());
    }
    if names.is_empty() {
        return Ok(None);
    }

    let retype = |s: &Schema| {
        let fields: Vec<Field> = s
            .fields()
            .iter()
            .map(|f| {
                let f = f.as_ref().clone();
                if names.contains(&f.name()) { f.with_data_type(dictionary_type()) } else { f }
            })
            .collect();
        Arc::new(Schema::new_with_metadata(fields, s.metadata().clone()))
    };
    let new_table = TableSchema::builder(retype(file_schema))
        .with_table_partition_cols(table.table_partition_cols().iter().cloned().collect::<Vec<_>>())
        .build();
    let mut new_source =
        ParquetSource::new(new_table).with_table_parquet_options(source.table_parquet_options().clone());
    if let Some(factory) = source.parquet_file_reader_factory() {
        new_source = new_source.with_parquet_file_reader_factory(Arc::clone(factory));
    }
    if let Some(p) = predicate {
        new_source = new_source.with_predicate(p);
    }
    // Each file's Arrow types, named up front, change with the table's.
    let groups = config
        .file_groups
        .iter()
        .map(|g| {
            let files = g
                .iter()
                .map(|f| {
                    let mut f = f.clone();
                    f.arrow_schema = f.arrow_schema.as_ref().map(|s| retype(s));
                    f
                })
                .collect();
            let group = FileGroup::new(files);
            match g.file_statistics(None) {
                Some(stats) => group.with_statistics(Arc::new(stats.clone())),
                None => group,
            }
        })
        .collect();
    let new_config = FileScanConfigBuilder::from(config.clone())
        .with_source(Arc::new(new_source))
        .with_projection_indices(Some(indices))?
        .with_file_groups(groups)
        .build();
    Ok(Some(DataSourceExec::from_data_source(new_config)))
}

/// Whether `expr` reads column `name`; with `null_tests_allowed`, a read inside `IS NOT NULL`
/// does not count.
fn references(expr: &Arc<dyn PhysicalExpr>, name: &str, null_tests_allowed: bool) -> bool {
    let mut found = false;
    let _ = expr.apply(|e| {
        let null_test = e.downcast_ref::<IsNotNullExpr>().is_some_and(|n| n.arg().downcast_ref::<Column>().is_some());
        if null_tests_allowed && null_test {
            return Ok(TreeNodeRecursion::Jump);
        }
        if e.downcast_ref::<Column>().is_some_and(|c| c.name() == name) {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}
