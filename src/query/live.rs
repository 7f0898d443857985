//! The session of a long-lived reader (`serve`, `shell`): `audit_log` read at the newest
//! committed version by every scan, and the named queries without parameters as views of the
//! same name (`SELECT * FROM by_action`).

use std::path::Path;
use std::sync::Arc;

use datafusion::prelude::SessionContext;

use super::named::{self, NamedQuery};
use crate::engine::{self, latest::LatestTable};
use crate::error::Result;
use crate::lake::Lake;
use crate::schema::TABLE_NAME;

/// Registers `audit_log` and the views in `ctx`; returns the queries that became views.
pub async fn register(lake: &Lake, ctx: &SessionContext, queries_dir: Option<&Path>) -> Result<Vec<NamedQuery>> {
    let table = LatestTable::open(lake.clone()).await?;
    ctx.register_table(TABLE_NAME, Arc::new(table))?;
    let mut views = Vec::new();
    for q in named::catalog(queries_dir)?.into_values() {
        // A query with `$name` parameters cannot be a view; `query --name` and the shell run it.
        if !q.params.is_empty() {
            continue;
        }
        let df = engine::sql_in(ctx, &q.sql).await?;
        ctx.register_table(q.name.as_str(), df.into_view())?;
        views.push(q);
    }
    Ok(views)
}
