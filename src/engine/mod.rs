//! The read side every job that asks shares: a DataFusion session with `audit_log`, the
//! `action_family` function and auditlake's settings, on this machine or on a Ballista cluster.
//!
//! The table is registered as a scan of the live files its Delta log lists ([`scan`]), so a
//! filter on `date` picks files and Parquet statistics prune row groups. A `--since/--until`
//! window is applied by registering `audit_log` as the table filtered to the window: every query,
//! named or not, sees only those rows, and the filter is pushed down to the scan.
//!
//! Guarantee: statements that create, change or write anything (DDL, DML, `COPY`, `SET`) are
//! refused before planning ([`guard`]), and DataFusion's own guard is kept as a second line.

#[cfg(feature = "cluster")]
pub mod cluster;
pub mod dictionary_keys;
pub mod distinct_count;
pub mod drop_nulls;
pub mod functions;
pub mod guard;
pub mod latest;
pub mod listing;
pub mod scan;
pub mod sql_files;
pub mod view_groups;

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::datasource::MemTable;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext, col, lit};
use datafusion::scalar::ScalarValue;

use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::schema::{self, TABLE_NAME};
use crate::time::{Window, days_since_epoch};

pub use guard::check_read_only;

/// A session with `audit_log` registered, and the table version it reads.
pub struct Session {
    pub ctx: SessionContext,
    /// `None` when the lake has no table yet (queries see an empty table).
    pub version: Option<u64>,
}

/// Days since the epoch, as DataFusion's Date32 literal.
pub(crate) fn date_lit(d: NaiveDate) -> datafusion::prelude::Expr {
    lit(date_scalar(d))
}

/// Days since the epoch, as DataFusion's Date32 value.
pub(crate) fn date_scalar(d: NaiveDate) -> ScalarValue {
    ScalarValue::Date32(Some(days_since_epoch(d)))
}

/// An instant, as a literal of the table's timestamp type.
pub(crate) fn ts_lit(t: chrono::DateTime<chrono::Utc>) -> datafusion::prelude::Expr {
    lit(ScalarValue::TimestampMicrosecond(Some(t.timestamp_micros()), Some("UTC".into())))
}

/// The session settings every read uses: auditlake's defaults, then any `DATAFUSION_*`
/// environment variable on top (as datafusion-cli reads them), e.g.
/// `DATAFUSION_EXECUTION_TARGET_PARTITIONS=8` sets `datafusion.execution.target_partitions`.
pub fn session_config() -> Result<SessionConfig> {
    // DataFusion's default is one partition per core. Parquet filter pushdown lets point lookups
    // skip pages, not only row groups.
    let mut config = SessionConfig::new()
        .with_information_schema(true)
        .set_bool("datafusion.execution.parquet.pushdown_filters", true)
        .set_bool("datafusion.execution.parquet.reorder_filters", true);
    let keys: Vec<String> = config.options().entries().into_iter().map(|e| e.key).collect();
    for key in keys {
        let var = key.to_uppercase().replace('.', "_");
        if let Some(value) = std::env::var_os(&var) {
            let value = value.to_string_lossy();
            config.options_mut().set(&key, &value).map_err(|e| Error::Setting {
                name: var.clone(),
                value: value.to_string(),
                reason: e.to_string(),
            })?;
        }
    }
    Ok(config)
}

/// The memory a local query may hold (hash tables, sorts, aggregates) before it spills to disk
/// where DataFusion can, or fails with "resources exhausted": `AUDITLAKE_MEMORY_LIMIT` (e.g.
/// `2GiB`), by default half of this machine's memory. Without a limit, a query that wants every
/// byte (a runaway recursive CTE, `array_agg` over everything) aborts the process instead.
pub fn memory_limit() -> Result<usize> {
    const VAR: &str = "AUDITLAKE_MEMORY_LIMIT";
    if let Some(value) = std::env::var_os(VAR) {
        let value = value.to_string_lossy().into_owned();
        return crate::units::parse_size(&value)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
            .map_err(|reason| Error::Setting { name: VAR.into(), value, reason });
    }
    Ok(physical_memory().map_or(4 << 30, |m| m / 2))
}

fn physical_memory() -> Option<usize> {
    #[cfg(unix)]
    {
        // SAFETY: sysconf only reads system constants.
        let (pages, size) = unsafe { (libc::sysconf(libc::_SC_PHYS_PAGES), libc::sysconf(libc::_SC_PAGESIZE)) };
        (pages > 0 && size > 0).then(|| (pages as usize).saturating_mul(size as usize))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Where a read runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Engine {
    /// In this process (the default).
    #[default]
    Local,
    /// On the Ballista scheduler at this `df://HOST:PORT` URL (the `cluster` feature).
    Cluster(String),
}

impl Engine {
    /// A session for this engine, with auditlake's settings and functions.
    pub async fn context(&self) -> Result<SessionContext> {
        let ctx = match self {
            Engine::Local => {
                let runtime = RuntimeEnvBuilder::new().with_memory_limit(memory_limit()?, 1.0).build_arc()?;
                local_context(session_config()?, runtime)
            }
            #[cfg(feature = "cluster")]
            Engine::Cluster(url) => cluster::context(url, session_config()?).await?,
            #[cfg(not(feature = "cluster"))]
            Engine::Cluster(_) => return Err(Error::ClusterNotBuilt),
        };
        functions::register(&ctx);
        Ok(ctx)
    }
}

/// Stack of the threads that plan and run queries (the binary's runtime, and any runtime that
/// hosts a cluster in-process). DataFusion and Ballista plan, decode and evaluate recursively;
/// a deep expression (thousands of terms) needs more than the default 2 MiB, and so does
/// Ballista's planning in unoptimised (dev-profile) builds. Only the pages a thread touches are
/// committed, so a large reservation costs nothing for ordinary queries.
pub const THREAD_STACK_BYTES: usize = 256 << 20;

/// A session that runs in this process: DataFusion's planner with auditlake's own physical
/// operators ([`view_groups`]), which a cluster could not carry. `AUDITLAKE_VIEW_GROUPS=off`
/// plans DataFusion's operators alone, to compare the two.
pub fn local_context(config: SessionConfig, runtime: Arc<RuntimeEnv>) -> SessionContext {
    let mut state = SessionStateBuilder::new().with_config(config).with_runtime_env(runtime).with_default_features();
    if std::env::var("AUDITLAKE_VIEW_GROUPS").map_or(true, |v| v != "off") {
        state = state.with_physical_optimizer_rule(Arc::new(view_groups::ViewGroupsRule));
    }
    SessionContext::new_with_state(state.build())
}

/// The whole table at its latest version (or `version`) as a DataFrame in `ctx`, and the version
/// read; an empty table of the right schema when the lake has none yet. On a cluster the table
/// is handed over as its live Parquet files ([`listing`]).
pub async fn base_table(
    lake: &Lake,
    ctx: &SessionContext,
    version: Option<u64>,
    engine: &Engine,
) -> Result<(DataFrame, Option<u64>)> {
    if *engine != Engine::Local {
        let table = lake.load(version).await?;
        return Ok(match &table {
            Some(table) => (listing::table(lake, table, ctx)?, table.version()),
            None => (listing::empty(ctx)?, None),
        });
    }
    Ok(match lake.snapshot(version).await? {
        Some(read) => {
            let provider = scan::AdaptiveScan::new(&read)?;
            (ctx.read_table(Arc::new(provider))?, Some(read.version()))
        }
        None => {
            let empty = MemTable::try_new(schema::arrow_schema(), vec![vec![]])?;
            (ctx.read_table(Arc::new(empty))?, None)
        }
    })
}

/// Opens a read session over the lake at its latest version (or `version`), restricted to
/// `window`, running on `engine`.
pub async fn open(lake: &Lake, window: &Window, version: Option<u64>, engine: &Engine) -> Result<Session> {
    let ctx = engine.context().await?;
    let (df, version) = base_table(lake, &ctx, version, engine).await?;
    let df = apply_window(df, window)?;
    ctx.register_table(TABLE_NAME, df.into_view())?;
    Ok(Session { ctx, version })
}

pub fn apply_window(mut df: DataFrame, window: &Window) -> Result<DataFrame> {
    let (first, last) = window.dates();
    if let Some(d) = first {
        df = df.filter(col(schema::col::DATE).gt_eq(date_lit(d)))?;
    }
    if let Some(d) = last {
        df = df.filter(col(schema::col::DATE).lt_eq(date_lit(d)))?;
    }
    if let Some(t) = window.since {
        df = df.filter(col(schema::col::TIMESTAMP).gt_eq(ts_lit(t)))?;
    }
    if let Some(t) = window.until {
        df = df.filter(col(schema::col::TIMESTAMP).lt(ts_lit(t)))?;
    }
    Ok(df)
}

/// Plans a user's SQL in `session`, refusing writes. DataFusion's own guard is kept as a second
/// line of defence.
pub async fn sql(session: &Session, sql: &str) -> Result<DataFrame> {
    sql_in(&session.ctx, sql).await
}

/// [`sql`] in any context, for sessions that register more tables than `audit_log` (the report).
pub async fn sql_in(ctx: &SessionContext, sql: &str) -> Result<DataFrame> {
    check_read_only(sql)?;
    let options = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
    scan::choose_row_filter(ctx.sql_with_options(sql, options).await?)
}
