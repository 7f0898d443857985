//! A client of Torq's public API for `pull`: a client-credentials token, pages of audit logs,
//! and what a collector needs against a rate-limited service that sometimes fails.
//!
//! - Requests are paced under the API's limit (50 a second) by this client itself.
//! - 429: waits as `Retry-After` says (seconds or an HTTP date), at most five minutes a time.
//! - 5xx, 408, timeouts, refused or reset connections, a page that is not JSON: exponential
//!   backoff with jitter, at most `max_retries` times in a row.
//! - 401: one new token, then a clear failure. Tokens are renewed a minute before they expire.
//!
//! The client secret and the tokens never reach a message: errors name the URL and the status,
//! and any text from the server is scrubbed of both before it is shown.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::time::Instant;
use url::Url;

use crate::error::{Error, Result};
use crate::lake::with_trailing_slash;

/// Where the API lives.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Token service, e.g. `https://auth.torq.io`.
    pub auth: Url,
    /// API, e.g. `https://api.torq.io`.
    pub api: Url,
}

impl Endpoints {
    /// Torq's hosts for a region: `us` (the default) or `eu`.
    pub fn region(region: &str) -> Result<Endpoints> {
        let (auth, api) = match region {
            "us" => ("https://auth.torq.io", "https://api.torq.io"),
            "eu" => ("https://auth.eu.torq.io", "https://api.eu.torq.io"),
            other => {
                return Err(Error::Api { url: String::new(), reason: format!("unknown region '{other}' (us, eu)") });
            }
        };
        Ok(Endpoints { auth: Url::parse(auth).expect("valid URL"), api: Url::parse(api).expect("valid URL") })
    }

    /// Endpoints from URLs checked by [`Endpoints::parse_url`]; paths are kept (a proxy's prefix).
    pub fn new(auth: Url, api: Url) -> Endpoints {
        Endpoints { auth: with_trailing_slash(auth), api: with_trailing_slash(api) }
    }

    /// Checks an overriding URL (`--auth-url`, `--api-url`): https, or http on loopback only,
    /// so that credentials never cross a network in clear.
    pub fn parse_url(flag: &str, text: &str) -> Result<Url, String> {
        let url = Url::parse(text).map_err(|e| format!("{flag} '{text}': {e}"))?;
        match url.scheme() {
            "https" => Ok(url),
            "http" if is_loopback(&url) => Ok(url),
            "http" => Err(format!(
                "{flag} '{text}': plain http is allowed only on loopback (localhost, 127.0.0.1, ::1); use https"
            )),
            other => Err(format!("{flag} '{text}': unsupported scheme '{other}' (https)")),
        }
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A workspace's API key. `Debug` never shows the secret.
#[derive(Clone)]
pub struct Credentials {
    pub client_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials { .. }")
    }
}

/// How the client behaves.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Entries a page (the API allows 1 to 500).
    pub page_size: u32,
    /// Requests a second at most (the API allows 50).
    pub max_rate: u32,
    /// One request's limit, connection to last byte.
    pub request_timeout: Duration,
    /// Failed attempts in a row before giving up on a request.
    pub max_retries: u32,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions { page_size: 500, max_rate: 40, request_timeout: Duration::from_secs(60), max_retries: 8 }
    }
}

/// What the client did, for the summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ApiStats {
    pub requests: u64,
    /// Attempts repeated after a failure or a 429.
    pub retries: u64,
    /// 429 answers among them.
    pub throttled: u64,
    /// Tokens fetched.
    pub tokens: u64,
}

/// One page of audit logs.
pub struct Page {
    pub entries: Vec<Box<RawValue>>,
    /// `None` on the last page.
    pub next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct PageBody {
    #[serde(default)]
    audit_logs: Option<Vec<Box<RawValue>>>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

struct Token {
    value: String,
    renew_at: Instant,
}

/// The largest answer read: a page of 500 entries is a few MiB; anything near this is not one.
const MAX_ANSWER_BYTES: usize = 512 << 20;
/// The longest wait a `Retry-After` gets.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// Backoff after the first failure; doubled each time, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A token is renewed this long before the API says it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(60);

/// A client of one workspace's audit logs.
pub struct TorqApi {
    http: reqwest::Client,
    endpoints: Endpoints,
    credentials: Credentials,
    options: ApiOptions,
    token: Option<Token>,
    next_request_at: Instant,
    pub stats: ApiStats,
}

/// How one attempt ended.
enum Attempt<T> {
    Done(T),
    /// Worth another try after a backoff; the reason, for the final error.
    Transient(String),
    /// 429: another try after this long (or a backoff when the server does not say).
    Throttled(Option<Duration>),
    /// 401.
    Unauthorized,
}

impl TorqApi {
    pub fn new(endpoints: Endpoints, credentials: Credentials, options: ApiOptions) -> Result<TorqApi> {
        let http = reqwest::Client::builder()
            .timeout(options.request_timeout)
            .connect_timeout(options.request_timeout.min(Duration::from_secs(30)))
            .user_agent(concat!("auditlake/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Api { url: endpoints.api.to_string(), reason: e.to_string() })?;
        Ok(TorqApi {
            http,
            endpoints,
            credentials,
            options,
            token: None,
            next_request_at: Instant::now(),
            stats: ApiStats::default(),
        })
    }

    fn logs_url(&self) -> Url {
        self.endpoints.api.join("public/v1alpha/audit_logs").expect("valid path")
    }

    fn token_url(&self) -> Url {
        self.endpoints.auth.join("v1/auth/token").expect("valid path")
    }

    /// The page of entries with `start <= timestamp < end`, oldest first, after `page_token`.
    pub async fn page(&mut self, start: DateTime<Utc>, end: DateTime<Utc>, page_token: Option<&str>) -> Result<Page> {
        let url = self.logs_url();
        let mut query = vec![
            ("start_time", start.to_rfc3339_opts(SecondsFormat::Secs, true)),
            ("end_time", end.to_rfc3339_opts(SecondsFormat::Secs, true)),
            ("page_size", self.options.page_size.to_string()),
            ("order", "asc".to_string()),
        ];
        if let Some(t) = page_token.filter(|t| !t.is_empty()) {
            query.push(("page_token", t.to_string()));
        }
        let mut renewed = false;
        let mut failures = 0u32;
        loop {
            let token = self.token().await?;
            self.pace().await;
            self.stats.requests += 1;
            let request = self.http.get(url.clone()).bearer_auth(&token).query(&query);
            let attempt = match request.send().await {
                Err(e) => Attempt::Transient(describe(&e)),
                Ok(answer) => match answer.status().as_u16() {
                    200 => match read_body(answer).await {
                        Err(reason) => Attempt::Transient(reason),
                        Ok(body) => match serde_json::from_slice::<PageBody>(&body) {
                            Ok(page) => Attempt::Done(Page {
                                entries: page.audit_logs.unwrap_or_default(),
                                next_page_token: page.next_page_token.filter(|t| !t.is_empty()),
                            }),
                            Err(e) => Attempt::Transient(format!(
                                "the answer is not an audit-log page ({e}): {}",
                                self.scrub(&head(&body))
                            )),
                        },
                    },
                    401 => Attempt::Unauthorized,
                    429 => Attempt::Throttled(retry_after(&answer)),
                    408 | 500..=599 => Attempt::Transient(format!("HTTP {}", answer.status())),
                    _ => {
                        let status = answer.status();
                        let body = read_body(answer).await.unwrap_or_default();
                        return Err(Error::Api {
                            url: url.to_string(),
                            reason: format!("HTTP {status}: {}", self.scrub(&head(&body))),
                        });
                    }
                },
            };
            match attempt {
                Attempt::Done(page) => return Ok(page),
                Attempt::Unauthorized if !renewed => {
                    // An expired or revoked token: one new one, then the request again.
                    renewed = true;
                    self.token = None;
                }
                Attempt::Unauthorized => {
                    return Err(Error::ApiAuth {
                        url: url.to_string(),
                        reason: "the API refused a token it had just issued (HTTP 401); check that the API key is \
                                 enabled and allowed to read audit logs"
                            .into(),
                    });
                }
                Attempt::Throttled(wait) => {
                    self.stats.throttled += 1;
                    self.retry(&url, &mut failures, "HTTP 429 Too Many Requests", wait).await?;
                }
                Attempt::Transient(reason) => self.retry(&url, &mut failures, &reason, None).await?,
            }
        }
    }

    /// Counts a failure and sleeps before the next attempt, or gives up past `max_retries`.
    async fn retry(&mut self, url: &Url, failures: &mut u32, reason: &str, wait: Option<Duration>) -> Result<()> {
        *failures += 1;
        if *failures > self.options.max_retries {
            return Err(Error::Api {
                url: url.to_string(),
                reason: format!("{reason} (gave up after {} attempts)", self.options.max_retries + 1),
            });
        }
        self.stats.retries += 1;
        tokio::time::sleep(wait.unwrap_or_else(|| backoff(*failures))).await;
        Ok(())
    }

    /// A valid token: the one held, or a new one when there is none or it is about to expire.
    async fn token(&mut self) -> Result<String> {
        if let Some(t) = &self.token
            && Instant::now() < t.renew_at
        {
            return Ok(t.value.clone());
        }
        let url = self.token_url();
        let mut failures = 0u32;
        loop {
            self.pace().await;
            self.stats.requests += 1;
            let request = self
                .http
                .post(url.clone())
                .basic_auth(&self.credentials.client_id, Some(&self.credentials.client_secret))
                .form(&[("grant_type", "client_credentials")]);
            let attempt = match request.send().await {
                Err(e) => Attempt::Transient(describe(&e)),
                Ok(answer) => match answer.status().as_u16() {
                    200 => match read_body(answer).await {
                        Err(reason) => Attempt::Transient(reason),
                        Ok(body) => match serde_json::from_slice::<TokenBody>(&body) {
                            Ok(t) if !t.access_token.is_empty() => Attempt::Done(t),
                            _ => Attempt::Transient("the token service's answer holds no access_token".into()),
                        },
                    },
                    400 | 401 | 403 => {
                        let status = answer.status();
                        return Err(Error::ApiAuth {
                            url: url.to_string(),
                            reason: format!(
                                "the token service refused the client id and secret (HTTP {status}); check \
                                 TORQ_CLIENT_ID and TORQ_CLIENT_SECRET (or --client-secret-file) and --region"
                            ),
                        });
                    }
                    429 => Attempt::Throttled(retry_after(&answer)),
                    _ => Attempt::Transient(format!("HTTP {}", answer.status())),
                },
            };
            match attempt {
                Attempt::Done(t) => {
                    self.stats.tokens += 1;
                    let lifetime = Duration::from_secs(t.expires_in.unwrap_or(3600));
                    // A token shorter-lived than the margin is used at most for half its life.
                    let usable = lifetime.checked_sub(RENEW_BEFORE).unwrap_or(lifetime / 2);
                    self.token = Some(Token { value: t.access_token.clone(), renew_at: Instant::now() + usable });
                    return Ok(t.access_token);
                }
                Attempt::Throttled(wait) => {
                    self.stats.throttled += 1;
                    self.retry(&url, &mut failures, "HTTP 429 Too Many Requests", wait).await?;
                }
                Attempt::Transient(reason) => self.retry(&url, &mut failures, &reason, None).await?,
                Attempt::Unauthorized => unreachable!("401 is answered above"),
            }
        }
    }

    /// Waits until the next request keeps the rate under `max_rate`.
    async fn pace(&mut self) {
        let interval = Duration::from_secs_f64(1.0 / f64::from(self.options.max_rate.max(1)));
        let now = Instant::now();
        if self.next_request_at > now {
            tokio::time::sleep_until(self.next_request_at).await;
        }
        self.next_request_at = self.next_request_at.max(now) + interval;
    }

    /// Text from the server with the secret and the current token taken out (a misbehaving
    /// proxy or service may echo a request back).
    fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        let mut secrets = vec![self.credentials.client_secret.as_str()];
        if let Some(t) = &self.token {
            secrets.push(&t.value);
        }
        for s in secrets.into_iter().filter(|s| s.len() >= 4) {
            out = out.replace(s, "[redacted]");
        }
        out
    }
}

/// The error's chain in one line (reqwest puts the cause, e.g. "connection refused", below).
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() { "timed out".to_string() } else { e.to_string() };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text = format!("{text}: {s_text}");
        }
        source = s.source();
    }
    // reqwest names the URL itself; the caller's error names it once.
    match e.url() {
        Some(url) => text.replace(&format!(" for url ({url})"), ""),
        None => text,
    }
}

/// Reads an answer's body, refusing one larger than any page.
async fn read_body(mut answer: reqwest::Response) -> Result<Vec<u8>, String> {
    if answer.content_length().is_some_and(|n| n > MAX_ANSWER_BYTES as u64) {
        return Err(format!("the answer is over {} MiB", MAX_ANSWER_BYTES >> 20));
    }
    let mut body = Vec::new();
    loop {
        match answer.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(format!("the answer is over {} MiB", MAX_ANSWER_BYTES >> 20));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(format!("reading the answer failed: {}", describe(&e))),
        }
    }
}

/// The first 200 characters of a body, for an error.
fn head(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    crate::text::visible(&text).into_owned()
}

/// `Retry-After` as seconds or an HTTP date, capped at [`MAX_RETRY_AFTER`].
fn retry_after(answer: &reqwest::Response) -> Option<Duration> {
    let value = answer.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match value.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64())),
        _ => {
            let at = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
            (at - Utc::now()).to_std().unwrap_or_default()
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// Exponential backoff with jitter for the `failures`-th failure in a row: a random time between
/// half and all of `FIRST_BACKOFF * 2^(failures-1)`, at most [`MAX_BACKOFF`].
fn backoff(failures: u32) -> Duration {
    let full = FIRST_BACKOFF.saturating_mul(1 << failures.saturating_sub(1).min(16)).min(MAX_BACKOFF);
    let jitter = (uuid::Uuid::new_v4().as_u128() % 1000) as f64 / 1000.0;
    full.mul_f64(0.5 + jitter / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_a_bound_with_jitter() {
        for failures in 1..40 {
            let d = backoff(failures);
            let full = FIRST_BACKOFF.saturating_mul(1 << (failures - 1).min(16)).min(MAX_BACKOFF);
            assert!(d >= full / 2 && d <= full, "{failures}: {d:?} outside {full:?}/2..{full:?}");
        }
        assert!(backoff(30) <= MAX_BACKOFF);
    }

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(Endpoints::parse_url("--api-url", "http://127.0.0.1:8080").is_ok());
        assert!(Endpoints::parse_url("--api-url", "http://localhost:1/").is_ok());
        assert!(Endpoints::parse_url("--api-url", "http://[::1]:9/").is_ok());
        assert!(Endpoints::parse_url("--api-url", "https://proxy.example/torq/").is_ok());
        let err = Endpoints::parse_url("--api-url", "http://proxy.example/").unwrap_err();
        assert!(err.contains("only on loopback"), "{err}");
        assert!(Endpoints::parse_url("--api-url", "ftp://x/").is_err());
    }

    #[test]
    fn credentials_debug_hides_the_secret() {
        let c = Credentials { client_id: "id".into(), client_secret: "s3cr3t-value".into() };
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }
}
