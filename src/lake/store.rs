//! From a lake URL to an object store: which schemes this build can open, where their settings
//! and credentials come from (the environment, as each cloud's SDKs read it), and how transient
//! failures are retried. The one place that builds a store, for the lake and for inputs alike.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use deltalake::ObjectStore;
use object_store::memory::InMemory;
use url::Url;

/// Transient store errors (timeouts, 5xx, throttling) are retried with exponential backoff,
/// for up to three minutes, before an operation fails.
fn retry_config() -> object_store::RetryConfig {
    object_store::RetryConfig {
        max_retries: 10,
        retry_timeout: std::time::Duration::from_secs(180),
        ..Default::default()
    }
}

/// URL schemes of object stores this build can use, for messages.
pub fn cloud_schemes() -> Vec<&'static str> {
    let mut schemes = vec!["s3://"];
    if cfg!(feature = "gcs") {
        schemes.push("gs://");
    }
    if cfg!(feature = "azure") {
        schemes.push("az://");
    }
    schemes
}

/// The object store for a cloud URL's bucket or container, configured from the environment.
/// Errors name the scheme when this build lacks it (gs:// and az:// are cargo features).
pub fn cloud_store(url: &Url) -> std::result::Result<Arc<dyn ObjectStore>, String> {
    // Listings resume after a failed page (see `resume`).
    bare_cloud_store(url).map(|store| Arc::new(super::resume::ResumingList(store)) as Arc<dyn ObjectStore>)
}

fn bare_cloud_store(url: &Url) -> std::result::Result<Arc<dyn ObjectStore>, String> {
    match url.scheme() {
        "s3" | "s3a" => s3_store(url).map_err(|e| e.to_string()),
        #[cfg(feature = "gcs")]
        "gs" => {
            static HANDLERS: std::sync::Once = std::sync::Once::new();
            HANDLERS.call_once(|| deltalake::gcp::register_handlers(None));
            let store = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(url.host_str().unwrap_or_default())
                .with_retry(retry_config())
                .build()
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(store))
        }
        #[cfg(feature = "azure")]
        "az" | "abfs" | "abfss" | "azure" => {
            static HANDLERS: std::sync::Once = std::sync::Once::new();
            HANDLERS.call_once(|| deltalake::azure::register_handlers(None));
            let store = object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(url.as_str())
                .with_retry(retry_config())
                .build()
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(store))
        }
        #[cfg(not(feature = "gcs"))]
        "gs" => Err("gs:// needs a build with `--features gcs`".to_string()),
        #[cfg(not(feature = "azure"))]
        "az" | "abfs" | "abfss" | "azure" => Err(format!("{}:// needs a build with `--features azure`", url.scheme())),
        other => Err(format!(
            "the '{other}' scheme is not supported; use a path, file://, {}, or memory://",
            cloud_schemes().join(", ")
        )),
    }
}

/// An S3 store for the URL's bucket, configured from the environment (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`,
/// `AWS_ALLOW_HTTP`, ...; instance and container credentials when no keys are set).
/// Transient errors (timeouts, 5xx, throttling) are retried with exponential backoff for up to
/// three minutes before an operation fails. Commits rely on S3 conditional puts
/// (`If-None-Match`), which AWS S3 and most S3-compatible stores honour: no lock table needed.
pub fn s3_store(url: &Url) -> std::result::Result<Arc<dyn ObjectStore>, object_store::Error> {
    static HANDLERS: std::sync::Once = std::sync::Once::new();
    HANDLERS.call_once(register_s3_log_store);
    let bucket = url.host_str().unwrap_or_default();
    let mut builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
    // object_store reads AWS_ENDPOINT; the AWS SDKs' name for it is AWS_ENDPOINT_URL.
    if std::env::var_os("AWS_ENDPOINT").is_none()
        && let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL")
    {
        builder = builder.with_endpoint(endpoint);
    }
    // object_store panics on the first request when the endpoint is not a URL: say so now.
    for name in ["AWS_ENDPOINT", "AWS_ENDPOINT_URL"] {
        if let Ok(endpoint) = std::env::var(name)
            && Url::parse(&endpoint).ok().and_then(|u| u.host_str().map(str::len)).unwrap_or(0) == 0
        {
            return Err(object_store::Error::Generic {
                store: "S3",
                source: format!("{name}={endpoint:?} is not a URL like http://127.0.0.1:9000").into(),
            });
        }
    }
    Ok(Arc::new(builder.with_retry(retry_config()).build()?))
}

/// delta-rs picks a table's log store by URL scheme and knows only `file://` and `memory://` on
/// its own. Its `s3` feature (the `deltalake-aws` crate) registers, for `s3://` and `s3a://`,
/// the same default log store (commits by conditional put) and pulls in the whole AWS SDK, which
/// auditlake never calls: the store itself is object_store's. Registering the default log store
/// here keeps the behaviour and drops about 40 crates from the build.
fn register_s3_log_store() {
    use deltalake::logstore::{LogStore, LogStoreFactory, StorageConfig, default_logstore, logstore_factories};

    struct ConditionalPutLogStore;
    impl LogStoreFactory for ConditionalPutLogStore {
        fn with_options(
            &self,
            prefixed_store: Arc<dyn ObjectStore>,
            root_store: Arc<dyn ObjectStore>,
            location: &Url,
            options: &StorageConfig,
        ) -> deltalake::DeltaResult<Arc<dyn LogStore>> {
            Ok(default_logstore(prefixed_store, root_store, location, options))
        }
    }
    let factory = Arc::new(ConditionalPutLogStore);
    for scheme in ["s3://", "s3a://"] {
        logstore_factories().insert(Url::parse(scheme).expect("a scheme URL"), factory.clone());
    }
}

/// `memory://NAME` lakes of this process, so that two opens of one name share their contents.
pub(super) fn memory_stores() -> &'static Mutex<HashMap<String, Arc<InMemory>>> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<InMemory>>>> = OnceLock::new();
    STORES.get_or_init(Default::default)
}
