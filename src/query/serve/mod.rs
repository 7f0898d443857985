//! `auditlake serve`: the lake over the PostgreSQL wire protocol, read-only, for psql, BI tools
//! and drivers.
//!
//! datafusion-postgres speaks the protocol and provides `pg_catalog` (what DBeaver, Grafana and
//! Metabase probe); auditlake owns what that crate leaves open ([`handler`]):
//! - every statement passes the read-only guard, at parse time too, so no write, DDL, `COPY` or
//!   engine `SET` is ever planned;
//! - each query runs in its own session copy, with its own memory pool (`--query-memory`)
//!   nested in the server's (`AUDITLAKE_MEMORY_LIMIT`), and a deadline that covers streaming the
//!   rows, not only planning (`--statement-timeout`, or a client's lower `statement_timeout`);
//! - `audit_log` resolves to the newest committed version at each scan
//!   ([`crate::engine::latest`]), so ingests, compactions and vacuums never fail a query.
//!
//! Connections: SCRAM-SHA-256 against a users file ([`auth`]); TLS from a PEM certificate and
//! key; at most `--max-connections` at once (the next gets PostgreSQL's "too many clients"); on
//! shutdown, running queries finish (up to a grace period) and idle connections are closed.

pub mod auth;
mod handler;
mod pool;

use std::future::Future;
use std::io::BufReader;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use datafusion_postgres::pgwire::tokio::process_socket;
use datafusion_postgres::pgwire::tokio::tokio_rustls::TlsAcceptor;
use datafusion_postgres::pgwire::tokio::tokio_rustls::rustls;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::error::{Error, Result};
use crate::lake::Lake;

pub use auth::{Users, hash_password};

/// How `serve` listens and what it allows.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// PEM certificate chain and private key.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub users: Users,
    /// Listen off loopback without TLS.
    pub insecure: bool,
    pub max_connections: usize,
    /// The longest a statement may run, rows streamed included.
    pub statement_timeout: Duration,
    /// The memory one query may hold before it spills or fails.
    pub query_memory: usize,
    /// The memory all queries together may hold.
    pub server_memory: usize,
    /// How long shutdown waits for running queries.
    pub shutdown_grace: Duration,
    /// The user's named queries (`query --queries`), served as views too.
    pub queries_dir: Option<PathBuf>,
}

/// What a server did, for its last words.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ServeMetrics {
    pub connections: u64,
    pub refused_busy: u64,
    /// Queries still running when the grace period ended.
    pub cancelled_at_shutdown: usize,
}

/// A bound server, ready to [`Server::run`].
pub struct Server {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    handlers: Arc<handler::Handlers>,
    max_connections: usize,
    shutdown_grace: Duration,
}

impl Server {
    /// Checks the options, opens the lake's session and binds the address.
    pub async fn bind(lake: &Lake, opts: &ServeOptions) -> Result<Server> {
        let serve_err = |reason: String| Error::Serve { reason };
        if !opts.listen.ip().is_loopback() && opts.tls.is_none() && !opts.insecure {
            return Err(serve_err(format!(
                "refusing to listen on {} without TLS: give --tls-cert and --tls-key, or --insecure \
                 if something else encrypts the network",
                opts.listen
            )));
        }
        if opts.max_connections == 0 {
            return Err(serve_err("--max-connections must be at least 1".into()));
        }
        let tls = opts.tls.as_ref().map(|(cert, key)| tls_acceptor(cert, key)).transpose()?;
        let handlers = Arc::new(handler::Handlers::new(lake, opts).await?);
        let listener = TcpListener::bind(opts.listen)
            .await
            .map_err(|e| serve_err(format!("cannot listen on {}: {e}", opts.listen)))?;
        Ok(Server {
            listener,
            tls,
            handlers,
            max_connections: opts.max_connections,
            shutdown_grace: opts.shutdown_grace,
        })
    }

    /// The address bound (the port chosen when `--listen` gave port 0).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener.local_addr().map_err(|e| Error::Serve { reason: e.to_string() })
    }

    /// Serves until `shutdown` resolves; then lets running queries finish, up to the grace
    /// period, and closes every connection.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<ServeMetrics> {
        let limiter = Arc::new(Semaphore::new(self.max_connections));
        let connections = AtomicU64::new(0);
        let refused = AtomicU64::new(0);
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((socket, _)) => {
                        let _ = socket.set_nodelay(true);
                        match limiter.clone().try_acquire_owned() {
                            Ok(permit) => {
                                connections.fetch_add(1, Ordering::Relaxed);
                                let (tls, handlers) = (self.tls.clone(), self.handlers.clone());
                                tasks.spawn(async move {
                                    let _permit = permit;
                                    if tls.is_some() && !asks_for_tls(&socket).await {
                                        refuse(socket, "28000", "this server requires TLS: connect with sslmode=require").await;
                                        return;
                                    }
                                    // A client that breaks the protocol or hangs up only ends its
                                    // own connection.
                                    let _ = process_socket(socket, tls, handlers).await;
                                });
                            }
                            Err(_) => {
                                refused.fetch_add(1, Ordering::Relaxed);
                                let message = format!(
                                    "sorry, too many clients already (auditlake serve --max-connections {})",
                                    self.max_connections
                                );
                                tasks.spawn(async move { refuse(socket, "53300", &message).await });
                            }
                        }
                    }
                    // Out of file descriptors and the like: wait a little rather than spin.
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                },
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        drop(self.listener);
        let busy = self.handlers.running.clone();
        let _ = tokio::time::timeout(self.shutdown_grace, async {
            while busy.load(Ordering::SeqCst) > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        let cancelled = busy.load(Ordering::SeqCst);
        tasks.shutdown().await;
        Ok(ServeMetrics {
            connections: connections.into_inner(),
            refused_busy: refused.into_inner(),
            cancelled_at_shutdown: cancelled,
        })
    }
}

/// Counts a query as running while it lives (planning and streaming its rows).
pub(crate) struct Running(Arc<AtomicUsize>);

impl Running {
    pub(crate) fn start(count: &Arc<AtomicUsize>) -> Running {
        count.fetch_add(1, Ordering::SeqCst);
        Running(count.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether a client's first message asks for TLS (SSLRequest, or TLS itself), or is one that
/// may come in the clear (GSSENCRequest, which the client follows with SSLRequest, or a cancel
/// request, which carries no data). A plain startup message is not.
async fn asks_for_tls(socket: &TcpStream) -> bool {
    const SSL_REQUEST: u32 = 80_877_103;
    const GSSENC_REQUEST: u32 = 80_877_104;
    const CANCEL_REQUEST: u32 = 80_877_102;
    let mut head = [0u8; 8];
    let peeked = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match socket.peek(&mut head).await {
                Ok(n) if n >= 8 || (n >= 1 && head[0] == 0x16) => return true,
                Ok(0) | Err(_) => return false,
                Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    })
    .await;
    if peeked != Ok(true) {
        return false;
    }
    // 0x16: a TLS handshake record (PostgreSQL 17's sslnegotiation=direct).
    head[0] == 0x16
        || matches!(
            u32::from_be_bytes([head[4], head[5], head[6], head[7]]),
            SSL_REQUEST | GSSENC_REQUEST | CANCEL_REQUEST
        )
}

/// A FATAL error before the startup exchange, as PostgreSQL sends it when it turns a client away
/// (libpq and JDBC show the message), then the connection closed.
async fn refuse(mut socket: TcpStream, sqlstate: &str, message: &str) {
    let mut body = Vec::new();
    for (code, value) in [(b'S', "FATAL"), (b'V', "FATAL"), (b'C', sqlstate), (b'M', message)] {
        body.push(code);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut frame = vec![b'E'];
    frame.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    frame.extend_from_slice(&body);
    let _ = tokio::time::timeout(Duration::from_secs(2), socket.write_all(&frame)).await;
    let _ = socket.shutdown().await;
}

/// A TLS acceptor from PEM files; any problem is an error, never a silent fall back to plain text.
fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> Result<TlsAcceptor> {
    let serve_err = |reason: String| Error::Serve { reason };
    let open = |p: &std::path::Path| {
        std::fs::File::open(p).map(BufReader::new).map_err(|e| serve_err(format!("cannot read {}: {e}", p.display())))
    };
    let certs = rustls_pemfile::certs(&mut open(cert)?)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| serve_err(format!("{}: not a PEM certificate: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(serve_err(format!("{}: no PEM certificate in it", cert.display())));
    }
    let key_der = rustls_pemfile::private_key(&mut open(key)?)
        .map_err(|e| serve_err(format!("{}: not a PEM private key: {e}", key.display())))?
        .ok_or_else(|| serve_err(format!("{}: no private key in it", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| serve_err(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| serve_err(format!("{} and {} do not make a TLS identity: {e}", cert.display(), key.display())))?;
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
