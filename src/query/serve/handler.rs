//! The protocol handlers: datafusion-postgres' session service, run per query in a session copy
//! with its own memory pool and deadline, behind the read-only guard.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Set, Statement};
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::setup_pg_catalog;
use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use datafusion_postgres::hooks::QueryHook;
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::pgwire::api::auth::DefaultServerParameterProvider;
use datafusion_postgres::pgwire::api::auth::sasl::SASLAuthStartupHandler;
use datafusion_postgres::pgwire::api::auth::sasl::scram::ScramAuth;
use datafusion_postgres::pgwire::api::cancel::DefaultCancelHandler;
use datafusion_postgres::pgwire::api::portal::{Format, Portal};
use datafusion_postgres::pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use datafusion_postgres::pgwire::api::results::{FieldInfo, Response};
use datafusion_postgres::pgwire::api::stmt::QueryParser;
use datafusion_postgres::pgwire::api::store::PortalStore;
use datafusion_postgres::pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionHandle, ConnectionManager, PgWireServerHandlers, Type,
};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::PgWireBackendMessage;
use datafusion_postgres::{DfSessionService, Parser};
use futures::{Sink, Stream};

use super::pool::QueryPool;
use super::{Running, ServeOptions};
use crate::engine::{self, guard};
use crate::error::Result;
use crate::lake::Lake;

/// What every connection shares.
pub struct Handlers {
    service: Arc<ReadOnly>,
    users: Arc<super::Users>,
    connections: Arc<ConnectionManager>,
    cancel: Arc<DefaultCancelHandler>,
    /// Queries planning or streaming rows now.
    pub(super) running: Arc<AtomicUsize>,
}

/// The statement type datafusion-postgres' parser produces: the SQL and its plan.
type Planned = (String, Option<(Statement, LogicalPlan)>);

fn hooks() -> Vec<Arc<dyn QueryHook>> {
    vec![Arc::new(CursorStatementHook), Arc::new(SetShowHook), Arc::new(TransactionStatementHook)]
}

impl Handlers {
    pub async fn new(lake: &Lake, opts: &ServeOptions) -> Result<Handlers> {
        let server_pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(opts.server_memory));
        let runtime = RuntimeEnvBuilder::new().with_memory_pool(server_pool.clone()).build_arc()?;
        let ctx = engine::local_context(engine::session_config()?, runtime);
        engine::functions::register(&ctx);
        crate::query::live::register(lake, &ctx, opts.queries_dir.as_deref()).await?;
        setup_pg_catalog(&ctx, "datafusion", EmptyContextProvider).map_err(crate::Error::Query)?;
        let base = Arc::new(ctx);
        let planning = DfSessionService::new_with_hooks(base.clone(), hooks());
        let parser = Arc::new(ReadOnlyParser {
            inner: ExtendedQueryHandler::query_parser(&planning),
            sql_parser: PostgresCompatibilityParser::new(),
        });
        let running = Arc::new(AtomicUsize::new(0));
        let service = Arc::new(ReadOnly {
            base: base.clone(),
            parser: parser.clone(),
            server_pool,
            query_memory: opts.query_memory,
            statement_timeout: opts.statement_timeout,
            running: running.clone(),
        });
        let connections = Arc::new(ConnectionManager::new());
        Ok(Handlers {
            service,
            users: Arc::new(opts.users.clone()),
            cancel: Arc::new(DefaultCancelHandler::new(connections.clone())),
            connections,
            running,
        })
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.service.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.service.clone()
    }

    fn startup_handler(&self) -> Arc<impl datafusion_postgres::pgwire::api::auth::StartupHandler> {
        // One a connection: the SASL exchange keeps its state in the handler.
        let mut params = DefaultServerParameterProvider::default();
        params.default_transaction_read_only = true;
        params.is_superuser = false;
        let scram = ScramAuth::new(self.users.clone());
        Arc::new(
            SASLAuthStartupHandler::new(Arc::new(params))
                .with_scram(scram)
                .with_connection_manager(self.connections.clone()),
        )
    }

    fn cancel_handler(&self) -> Arc<impl datafusion_postgres::pgwire::api::cancel::CancelHandler> {
        self.cancel.clone()
    }
}

/// The query handler: guard, session copy, deadline.
pub struct ReadOnly {
    /// The session queries are copied from: `audit_log`, the views, `pg_catalog`.
    base: Arc<SessionContext>,
    /// Plans the extended protocol's statements in `base`, and guards both protocols.
    parser: Arc<ReadOnlyParser>,
    server_pool: Arc<dyn MemoryPool>,
    query_memory: usize,
    statement_timeout: Duration,
    running: Arc<AtomicUsize>,
}

/// datafusion-postgres keeps a client's `SET statement_timeout` in the connection's metadata
/// under this key (milliseconds).
const CLIENT_TIMEOUT_KEY: &str = "statement_timeout_ms";

impl ReadOnly {
    /// A copy of the base session with a memory pool of its own, and a service over it.
    fn service(&self) -> PgWireResult<DfSessionService> {
        let state = self.base.state();
        let pool = Arc::new(QueryPool::new(self.query_memory, self.server_pool.clone()));
        let runtime = RuntimeEnvBuilder::from_runtime_env(state.runtime_env())
            .with_memory_pool(pool)
            .build_arc()
            .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
        let state = SessionStateBuilder::new_from_existing(state).with_runtime_env(runtime).build();
        Ok(DfSessionService::new_with_hooks(Arc::new(SessionContext::new_with_state(state)), hooks()))
    }

    /// The server's limit, or the client's `statement_timeout` when lower.
    fn timeout(&self, client: &(impl ClientInfo + ?Sized)) -> Duration {
        let client_ms = client.metadata().get(CLIENT_TIMEOUT_KEY).and_then(|v| v.parse::<u64>().ok());
        client_ms.map_or(self.statement_timeout, |ms| self.statement_timeout.min(Duration::from_millis(ms)))
    }
}

fn user_error(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("ERROR".into(), code.into(), message)))
}

fn timed_out(limit: Duration) -> PgWireError {
    user_error("57014", format!("canceling statement due to statement timeout ({} s)", limit.as_secs_f64()))
}

/// `None` when the statement may run here; otherwise the error the client gets.
fn refusal(s: &Statement) -> Option<PgWireError> {
    let refused = |message: String| Some(user_error("25006", message));
    match s {
        Statement::Set(Set::SingleAssignment { variable, .. }) => {
            let name = variable.to_string().to_lowercase();
            // DataFusion's and auditlake's settings are dotted names; the client's are not.
            if !name.contains('.') {
                return None;
            }
            refused(format!(
                "refused: SET {name}: engine settings are the server's; a client may set \
                 statement_timeout, TimeZone, DateStyle, search_path, application_name"
            ))
        }
        Statement::Set(_)
        | Statement::ShowVariable { .. }
        | Statement::ShowStatus { .. }
        | Statement::ShowCatalogs { .. }
        | Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Fetch { .. }
        | Statement::Close { .. } => None,
        Statement::Declare { stmts } => stmts.iter().filter_map(|d| d.for_query.as_ref()).find_map(|q| {
            guard::check_statement(&Statement::Query(q.clone())).err().and_then(|e| refused(e.to_string()))
        }),
        other => guard::check_statement(other).err().and_then(|e| refused(e.to_string())),
    }
}

#[async_trait]
impl SimpleQueryHandler for ReadOnly {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.parser.check(query)?;
        let running = Running::start(&self.running);
        let limit = self.timeout(client);
        let deadline = tokio::time::Instant::now() + limit;
        let service = self.service()?;
        let responses = tokio::time::timeout_at(deadline, SimpleQueryHandler::do_query(&service, client, query))
            .await
            .map_err(|_| timed_out(limit))??;
        let guard = Arc::new(Guard { _running: running, cancel: CancelSignal::take(client).await, limit });
        Ok(responses.into_iter().map(|r| within(r, deadline, guard.clone())).collect())
    }
}

#[async_trait]
impl ExtendedQueryHandler for ReadOnly {
    type Statement = Planned;
    type QueryParser = ReadOnlyParser;

    fn query_parser(&self) -> Arc<ReadOnlyParser> {
        self.parser.clone()
    }

    async fn do_query<C>(&self, client: &mut C, portal: &Portal<Planned>, max_rows: usize) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Planned>,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // Checked when parsed too; a portal is only ever built from a parsed statement.
        if let (_, Some((statement, _))) = &portal.statement.statement
            && let Some(refused) = refusal(statement)
        {
            return Err(refused);
        }
        let running = Running::start(&self.running);
        let limit = self.timeout(client);
        let deadline = tokio::time::Instant::now() + limit;
        let service = self.service()?;
        let response =
            tokio::time::timeout_at(deadline, ExtendedQueryHandler::do_query(&service, client, portal, max_rows))
                .await
                .map_err(|_| timed_out(limit))??;
        let guard = Arc::new(Guard { _running: running, cancel: CancelSignal::take(client).await, limit });
        Ok(within(response, deadline, guard))
    }
}

/// datafusion-postgres' parser behind the guard: a refused statement is not even planned.
pub struct ReadOnlyParser {
    inner: Arc<Parser>,
    sql_parser: PostgresCompatibilityParser,
}

impl ReadOnlyParser {
    /// Refuses SQL any of whose statements may not run here.
    fn check(&self, sql: &str) -> PgWireResult<()> {
        let statements = self.sql_parser.parse(sql).map_err(|e| PgWireError::ApiError(Box::new(e)))?;
        statements.iter().find_map(refusal).map_or(Ok(()), Err)
    }
}

#[async_trait]
impl QueryParser for ReadOnlyParser {
    type Statement = Planned;

    async fn parse_sql<C>(&self, client: &C, sql: &str, types: &[Option<Type>]) -> PgWireResult<Option<Planned>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        // The guard runs on the statement as parsed, before any hook or planning.
        self.check(sql)?;
        self.inner.parse_sql(client, sql, types).await
    }

    fn get_parameter_types(&self, stmt: &Planned) -> PgWireResult<Vec<Type>> {
        self.inner.get_parameter_types(stmt)
    }

    fn get_result_schema(&self, stmt: &Planned, column_format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        self.inner.get_result_schema(stmt, column_format)
    }
}

/// What a response's rows carry: the query counted as running, its cancel signal, its limit.
struct Guard {
    _running: Running,
    cancel: CancelSignal,
    limit: Duration,
}

/// A client's cancel request (psql's Ctrl-C, `conn.cancel()`) for the rows of a query.
///
/// pgwire honours a cancel only while `do_query` runs, but DataFusion does its work while the
/// rows stream afterwards. So the last thing `do_query` does is take the connection's cancel
/// signal for the stream. (pgwire's own receiver then resolves too, but pgwire polls the
/// finished `do_query` first, so it does not take that for a cancel.)
struct CancelSignal {
    receiver: std::sync::Mutex<Option<futures::channel::oneshot::Receiver<()>>>,
    fired: std::sync::atomic::AtomicBool,
}

impl CancelSignal {
    async fn take(client: &(impl ClientInfo + ?Sized)) -> CancelSignal {
        let handle = client.session_extensions().get::<Arc<ConnectionHandle>>();
        let receiver = match handle {
            Some(h) => Some(h.start_query().await),
            None => None,
        };
        CancelSignal { receiver: std::sync::Mutex::new(receiver), fired: std::sync::atomic::AtomicBool::new(false) }
    }

    fn poll_fired(&self, cx: &mut Context<'_>) -> bool {
        use std::sync::atomic::Ordering;
        if self.fired.load(Ordering::SeqCst) {
            return true;
        }
        let mut receiver = self.receiver.lock().expect("the cancel signal's lock");
        if let Some(rx) = receiver.as_mut() {
            match std::pin::Pin::new(rx).poll(cx) {
                Poll::Ready(Ok(())) => {
                    self.fired.store(true, Ordering::SeqCst);
                    *receiver = None;
                    return true;
                }
                // The next query took the signal, or the connection is gone.
                Poll::Ready(Err(_)) => *receiver = None,
                Poll::Pending => {}
            }
        }
        false
    }
}

/// A response whose rows stop with an error at `deadline` or on a client's cancel, and which
/// counts as running until its rows are sent.
fn within(response: Response, deadline: tokio::time::Instant, guard: Arc<Guard>) -> Response {
    match response {
        Response::Query(mut q) => {
            let rows = std::mem::replace(&mut q.data_rows, Box::pin(futures::stream::empty()));
            q.data_rows =
                Box::pin(Deadline { rows, sleep: Box::pin(tokio::time::sleep_until(deadline)), done: false, guard });
            Response::Query(q)
        }
        other => other,
    }
}

struct Deadline {
    rows: datafusion_postgres::pgwire::api::results::SendableRowStream,
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    done: bool,
    guard: Arc<Guard>,
}

impl Stream for Deadline {
    type Item = PgWireResult<datafusion_postgres::pgwire::messages::data::DataRow>;

    fn poll_next(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            self.done = true;
            return Poll::Ready(Some(Err(timed_out(self.guard.limit))));
        }
        if self.guard.cancel.poll_fired(cx) {
            self.done = true;
            return Poll::Ready(Some(Err(user_error("57014", "canceling statement due to user request".into()))));
        }
        self.rows.as_mut().poll_next(cx)
    }
}
