//! `audit_log` for a long-lived session (`serve`, `shell`): every scan reads the newest committed
//! version, so a query planned now sees the commits made since the session opened, and a
//! prepared statement executed an hour later sees that hour's events.
//!
//! The newest version is probed with one listing of the log from the version last read; only
//! when it moved is the snapshot opened again. Each scan chooses its Parquet row filter from the
//! filters it receives ([`super::scan::wants_row_filter`]), as `query` does per statement.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use tokio::sync::Mutex;

use super::scan::{AdaptiveScan, read_schema, wants_row_filter};
use crate::error::Result;
use crate::lake::{Lake, ReadSnapshot};

/// The newest version of the table, resolved at each scan.
#[derive(Debug)]
pub struct LatestTable {
    lake: Lake,
    /// The version last read and its scan.
    current: Mutex<Option<(ReadSnapshot, Arc<AdaptiveScan>)>>,
}

impl LatestTable {
    /// The table, with the newest version opened once so that an unreadable lake fails now.
    pub async fn open(lake: Lake) -> Result<LatestTable> {
        let table = LatestTable { lake, current: Mutex::new(None) };
        table.newest().await?;
        Ok(table)
    }

    /// The newest version's scan and the version, or `None` while the lake has no table.
    pub async fn newest(&self) -> Result<Option<(u64, Arc<AdaptiveScan>)>> {
        let mut current = self.current.lock().await;
        if let Some((read, scan)) = current.as_ref() {
            let newest = read
                .log_store
                .get_latest_version(read.version())
                .await
                .map_err(|e| self.lake.delta_err("reading", e))?;
            if newest == read.version() {
                return Ok(Some((newest, scan.clone())));
            }
        }
        let Some(read) = self.lake.snapshot(None).await? else { return Ok(None) };
        let scan = Arc::new(AdaptiveScan::new(&read)?);
        let version = read.version();
        *current = Some((read, scan.clone()));
        Ok(Some((version, scan)))
    }
}

fn df_err(e: crate::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

#[async_trait::async_trait]
impl TableProvider for LatestTable {
    fn schema(&self) -> SchemaRef {
        read_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // The same for every version: the scan decides by the filter alone.
        Ok(super::scan::filter_pushdown(filters))
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        match self.newest().await.map_err(df_err)? {
            Some((_, scan)) => {
                let row_filters =
                    state.config_options().execution.parquet.pushdown_filters && wants_row_filter(filters);
                scan.read(row_filters, state, projection, filters, limit).await
            }
            None => {
                // No table yet: nothing matches, whatever the filters.
                let empty = MemTable::try_new(read_schema(), vec![vec![]])?;
                empty.scan(state, projection, &[], limit).await
            }
        }
    }
}
