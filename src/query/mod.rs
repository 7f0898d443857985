//! Ask: SQL over `audit_log` through DataFusion, read-only.
//!
//! The table is registered through delta-rs' table provider, so a filter on `date` prunes
//! partitions and Parquet statistics prune row groups. A `--since/--until` window is applied
//! by registering `audit_log` as the table filtered to the window: every query, named or not,
//! sees only those rows, and the filter is pushed down to the scan.
//!
//! Guarantee: statements that create, change or write anything (DDL, DML, `COPY`, `SET`) are
//! refused before planning.

pub mod drop_nulls;
pub mod listing;
pub mod named;
pub mod output;
pub mod scan;
pub mod search;
pub mod window;

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::datasource::MemTable;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext, col, lit};
use datafusion::scalar::ScalarValue;
use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::Statement;

use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::schema::{self, TABLE_NAME};

pub use output::OutputFormat;
pub use window::Window;

/// A session with `audit_log` registered, and the table version it reads.
pub struct Session {
    pub ctx: SessionContext,
    /// `None` when the lake has no table yet (queries see an empty table).
    pub version: Option<u64>,
}

/// Days since the epoch, as DataFusion's Date32 literal.
pub(crate) fn date_lit(d: NaiveDate) -> datafusion::prelude::Expr {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    lit(ScalarValue::Date32(Some((d - epoch).num_days() as i32)))
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
            config
                .options_mut()
                .set(&key, &value)
                .map_err(|e| Error::InvalidArgument(format!("environment variable {var}={value}: {e}")))?;
        }
    }
    Ok(config)
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
    /// A session for this engine, with auditlake's settings.
    pub async fn context(&self) -> Result<SessionContext> {
        match self {
            Engine::Local => Ok(SessionContext::new_with_config(session_config()?)),
            #[cfg(feature = "cluster")]
            Engine::Cluster(url) => crate::cluster::context(url).await,
            #[cfg(not(feature = "cluster"))]
            Engine::Cluster(_) => Err(Error::Cluster(
                "--cluster needs a build with the Ballista client: cargo build --release --features cluster".into(),
            )),
        }
    }
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
            Some(table) => (listing::table(table, ctx)?, table.version()),
            None => (listing::empty(ctx)?, None),
        });
    }
    Ok(match lake.snapshot(version).await? {
        Some(read) => {
            let provider = scan::AdaptiveScan::new(|| read.provider(), ctx).await?;
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

/// Refuses anything but a single read-only statement.
pub fn check_read_only(sql: &str) -> Result<()> {
    let statements = DFParser::parse_sql(sql)?;
    if statements.len() != 1 {
        return Err(Error::InvalidArgument(format!("expected exactly one SQL statement, found {}", statements.len())));
    }
    let refused = |what: &str| Err(Error::ReadOnly { statement: what.to_string() });
    match &statements[0] {
        DfStatement::Statement(s) => statement_read_only(s).map_or(Ok(()), |w| refused(&w)),
        DfStatement::Explain(e) => match e.statement.as_ref() {
            DfStatement::Statement(s) => statement_read_only(s).map_or(Ok(()), |w| refused(&w)),
            _ => refused("EXPLAIN of a write"),
        },
        DfStatement::CreateExternalTable(_) => refused("CREATE EXTERNAL TABLE"),
        DfStatement::CopyTo(_) => refused("COPY"),
        DfStatement::Reset(_) => refused("RESET"),
    }
}

/// `None` when the statement only reads; otherwise its leading keywords, for the message.
fn statement_read_only(s: &Statement) -> Option<String> {
    match s {
        Statement::Query(_)
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowFunctions { .. }
        | Statement::ExplainTable { .. } => None,
        other => {
            let text = other.to_string();
            let words: Vec<&str> = text.split_whitespace().take(2).collect();
            let first = words.first().copied().unwrap_or("statement").to_uppercase();
            // "DROP TABLE", "CREATE VIEW", but "INSERT", "DELETE", "SET".
            let two = matches!(first.as_str(), "CREATE" | "DROP" | "ALTER" | "TRUNCATE");
            Some(if two && words.len() > 1 { format!("{first} {}", words[1].to_uppercase()) } else { first })
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_allowed() {
        for sql in [
            "SELECT count(*) FROM audit_log",
            "WITH a AS (SELECT 1) SELECT * FROM a",
            "EXPLAIN SELECT 1",
            "SHOW TABLES",
            "select action from audit_log where date = '2026-09-01' order by 1",
        ] {
            check_read_only(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }

    #[test]
    fn writes_are_refused_with_their_name() {
        for (sql, name) in [
            ("DROP TABLE audit_log", "DROP TABLE"),
            ("CREATE TABLE x AS SELECT 1", "CREATE TABLE"),
            ("INSERT INTO audit_log VALUES (1)", "INSERT"),
            ("DELETE FROM audit_log", "DELETE"),
            ("COPY (SELECT 1) TO '/tmp/x.csv'", "COPY"),
            ("CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'", "CREATE EXTERNAL TABLE"),
            ("SET datafusion.execution.batch_size = 1", "SET"),
            ("EXPLAIN INSERT INTO audit_log VALUES (1)", "INSERT"),
        ] {
            let err = check_read_only(sql).unwrap_err();
            match &err {
                Error::ReadOnly { statement } => assert_eq!(statement, name, "{sql}"),
                other => panic!("{sql}: {other}"),
            }
            assert!(err.to_string().contains("read-only"));
        }
    }

    #[test]
    fn several_statements_are_refused() {
        assert!(check_read_only("SELECT 1; DROP TABLE audit_log").is_err());
    }
}
