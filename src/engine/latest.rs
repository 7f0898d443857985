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
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use tokio::sync::Mutex;

use super::scan::{AdaptiveScan, wants_row_filter};
use crate::error::Result;
use crate::lake::{Lake, ReadSnapshot};
use crate::schema;

/// The newest version of the table, resolved at each scan.
#[derive(Debug)]
pub struct LatestTable {
    lake: Lake,
    /// The scan's schema (delta-rs reads strings as view types), fixed for the session.
    schema: SchemaRef,
    /// The settings delta-rs' providers are built with (Parquet options, view types).
    state: SessionState,
    /// The scan of the version read at open, which answers what filters push down (the same for
    /// every version: delta-rs decides by column). `None` if there was no table yet.
    first: Option<Arc<AdaptiveScan>>,
    /// The version last read and its scan.
    current: Mutex<Option<(ReadSnapshot, Arc<AdaptiveScan>)>>,
}

impl std::fmt::Debug for ReadSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadSnapshot").field("version", &self.version()).finish()
    }
}

impl LatestTable {
    /// The table, with the newest version opened once so that planning knows its scan.
    pub async fn open(lake: Lake, state: SessionState) -> Result<LatestTable> {
        let mut table =
            LatestTable { lake, schema: schema::arrow_schema(), state, first: None, current: Mutex::new(None) };
        table.first = table.newest().await?.map(|(_, scan)| scan);
        table.schema = match &table.first {
            Some(scan) => scan.schema(),
            // No table yet: the schema its scan will have once the first ingest creates it, read
            // from the same table created in memory.
            None => {
                let model = Lake::open(&format!("memory://auditlake-schema-{}", uuid::Uuid::new_v4()))?;
                model.load_or_create().await?;
                let read = model.snapshot(None).await?.expect("the table just created");
                AdaptiveScan::with_state(|| read.provider(), table.state.clone()).await?.schema()
            }
        };
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
        let scan = Arc::new(AdaptiveScan::with_state(|| read.provider(), self.state.clone()).await?);
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
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // Inexact when the lake had no table at open: DataFusion then filters above the scan too.
        match &self.first {
            Some(scan) => scan.supports_filters_pushdown(filters),
            None => Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()]),
        }
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
                let empty = MemTable::try_new(self.schema.clone(), vec![vec![]])?;
                empty.scan(state, projection, &[], limit).await
            }
        }
    }
}
