//! Scale-out: the same SQL on a Ballista cluster (DataFusion's distributed engine).
//!
//! auditlake stays the client. It opens the table's log, resolves the live files and hands
//! the cluster a plan over plain Parquet (see [`super::listing`]); the scheduler splits
//! it into stages and the executors read the files themselves, with object-store credentials
//! from their own environment. Nothing is written: the read-only guard runs before planning.
//!
//! [`start_standalone`] runs a scheduler and an executor inside this process, on loopback, for
//! trying a cluster out, for the tests and for the benchmark's "distributed" row.

use std::net::SocketAddr;
use std::sync::Arc;

use ballista::prelude::{SessionConfigExt, SessionContextExt};
use ballista_core::extension::{ballista_aggregate_functions, ballista_scalar_functions, ballista_window_functions};
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use object_store::ObjectStore;
use url::Url;

use crate::error::{Error, Result};
use crate::lake;

/// Checks a `--cluster` URL: `df://HOST:PORT` (Ballista's scheme; the port defaults to 50050).
pub fn parse_url(text: &str) -> Result<Url> {
    let bad = |why: &str| Error::ClusterUrl { url: text.to_string(), reason: why.to_string() };
    let url = Url::parse(text).map_err(|e| bad(&e.to_string()))?;
    if url.scheme() != "df" {
        return Err(bad(&format!("the scheme is '{}'", url.scheme())));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    Ok(url)
}

/// Session settings (auditlake's, from the engine) adjusted for Ballista.
fn for_ballista(config: SessionConfig) -> SessionConfig {
    // Sorting each partition and merging lets DataFusion push a sort below the union of days,
    // where Ballista 55 runs every union branch in every task and returns rows many times over.
    // Coalescing first and sorting once keeps the union inside one stage, as Ballista expects.
    config.set_bool("datafusion.optimizer.repartition_sorts", false).upgrade_for_ballista()
}

/// A session whose queries run on the Ballista scheduler at `url`, with `config` (auditlake's
/// settings) adjusted for Ballista.
pub async fn context(url: &str, config: SessionConfig) -> Result<SessionContext> {
    let parsed = parse_url(url)?;
    // Ballista only connects when the first query runs, and then reports a transport error
    // inside an execution error; asking first gives a message that names the scheduler.
    let endpoint = format!("http://{}:{}", parsed.host_str().unwrap_or_default(), parsed.port().unwrap_or(50050));
    let probe = tokio::time::timeout(std::time::Duration::from_secs(20), SchedulerGrpcClient::connect(endpoint)).await;
    match probe {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(unreachable(url, &root_cause(&e))),
        Err(_) => return Err(unreachable(url, "no answer within 20 s")),
    }
    let state = SessionStateBuilder::new().with_default_features().with_config(for_ballista(config)).build();
    Ok(SessionContext::remote_with_state(url, state).await?)
}

fn unreachable(url: &str, why: &str) -> Error {
    Error::ClusterUnreachable { url: url.to_string(), reason: why.to_string() }
}

/// The innermost error's message ("Connection refused (os error 111)"), not tonic's debug chain.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}

/// Resolves `s3://`, `gs://` and `az://` URLs with auditlake's own store settings (the same
/// environment variables as `--lake`), so in-process executors read what the CLI reads.
#[derive(Debug, Default)]
struct LakeStores {
    known: DefaultObjectStoreRegistry,
}

impl ObjectStoreRegistry for LakeStores {
    fn register_store(&self, url: &Url, store: Arc<dyn ObjectStore>) -> Option<Arc<dyn ObjectStore>> {
        self.known.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        self.known.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        if let Ok(store) = self.known.get_store(url) {
            return Ok(store);
        }
        let store = lake::cloud_store(url).map_err(DataFusionError::Configuration)?;
        self.known.register_store(url, store.clone());
        Ok(store)
    }
}

/// Starts a Ballista scheduler and one executor with `vcores` task slots in this process, on
/// loopback, with `config` (auditlake's settings), and returns the scheduler's address (a free
/// port the OS picked). They run until the process ends.
pub async fn start_standalone(vcores: usize, config: SessionConfig) -> Result<SocketAddr> {
    let runtime = RuntimeEnvBuilder::new().with_object_store_registry(Arc::new(LakeStores::default())).build()?;
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(for_ballista(config))
        .with_runtime_env(Arc::new(runtime))
        .with_optimizer_rules(ballista_core::optimizer::ballista_default_optimizer_rules())
        .with_scalar_functions(ballista_scalar_functions())
        .with_aggregate_functions(ballista_aggregate_functions())
        .with_window_functions(ballista_window_functions())
        .build();
    let failed = |part: &'static str, e: &dyn std::fmt::Display| Error::ClusterStart { part, reason: e.to_string() };
    let addr = ballista_scheduler::standalone::new_standalone_scheduler_from_state(&state)
        .await
        .map_err(|e| failed("scheduler", &e))?;
    let endpoint = format!("http://localhost:{}", addr.port());
    let mut tries = 0;
    let scheduler = loop {
        match SchedulerGrpcClient::connect(endpoint.clone()).await {
            Ok(client) => break client,
            Err(e) if tries >= 50 => return Err(failed("scheduler", &e)),
            Err(_) => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    };
    ballista_executor::new_standalone_executor_from_state(scheduler, vcores.max(1), &state)
        .await
        .map_err(|e| failed("executor", &e))?;
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_are_checked() {
        assert!(parse_url("df://localhost:50050").is_ok());
        assert!(parse_url("df://scheduler.internal").is_ok());
        for bad in ["http://localhost:50050", "localhost:50050", "df://", "df:///x"] {
            let e = parse_url(bad).unwrap_err().to_string();
            assert!(e.contains("df://HOST:PORT"), "{bad}: {e}");
        }
    }
}
