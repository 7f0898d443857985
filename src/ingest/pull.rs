//! `pull`: collect a workspace's audit logs from Torq's API into the lake, exactly once.
//!
//! A run reads one window of time, `[start, end)`, page by page, oldest first:
//!
//! - `end` is now minus `--settle` (entries can appear minutes after their timestamp), or
//!   `--until`;
//! - `start` is the workspace's cursor minus `--overlap`; on the first run, `--since` or 24
//!   hours back. (So a scheduled `pull --since 90d` backfills once, then follows the cursor.)
//!
//! Pages go through the normal ingest pipeline ([`super::run::load`]): the same normalising,
//! quarantine and dedupe, so the overlap costs a re-read and nothing else, and a late entry inside
//! it is picked up. Every `--commit-pages` pages (or `--commit-interval`) the pages in hand are
//! committed together with the cursor, a Delta application transaction in the same commit
//! ([`write::Cursor`]): a crash can never move the cursor past rows that were not committed,
//! and a killed backfill resumes from its last commit. Memory holds one group of pages.
//!
//! The cursor says "every entry before this instant is in the table". Mid-window it is the
//! newest timestamp committed, which holds because pages come oldest first (when the API answers
//! out of order, it stays put until the window is done); at the end of the window it is `end`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use deltalake::DeltaTable;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio::sync::watch;

use super::run::{Extras, IngestMetrics, IngestOptions, load};
use super::source::{Input, Resolved};
use super::torq_api::{ApiOptions, ApiStats, Credentials, Endpoints, TorqApi};
use crate::error::{Error, Result};
use crate::lake::{KeySet, Lake, write};
use crate::time::rfc3339_us;

/// What to pull and how; resolved by the CLI from flags, environment and defaults.
#[derive(Debug, Clone)]
pub struct PullOptions {
    pub endpoints: Endpoints,
    pub credentials: Credentials,
    /// Names the cursor: one per workspace, so several workspaces can share a lake.
    pub workspace: String,
    /// Where the first pull of this workspace starts (later ones start at the cursor).
    pub since: Option<DateTime<Utc>>,
    /// End here instead of at now minus `settle`.
    pub until: Option<DateTime<Utc>>,
    /// Re-read this much before the cursor, for entries that arrived late.
    pub overlap: Duration,
    /// Leave out the newest entries, which may still be incomplete.
    pub settle: Duration,
    /// Commit after this many pages ...
    pub commit_pages: usize,
    /// ... or this long since the last commit, whichever comes first.
    pub commit_interval: Duration,
    pub api: ApiOptions,
    /// File size and entry limit, as for `ingest` (its `inputs` are ignored).
    pub ingest: IngestOptions,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

/// The summary of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PullMetrics {
    pub workspace: String,
    /// The window read, RFC 3339; `None` when there was nothing to read.
    pub window_start: Option<String>,
    pub window_end: Option<String>,
    /// The cursor before and after the run.
    pub cursor_before: Option<String>,
    pub cursor: Option<String>,
    /// No `--since` and no cursor: the window was the last 24 hours.
    pub first_run_default: bool,
    /// `--since` was given but the workspace has a cursor, which wins.
    pub since_ignored: bool,
    pub pages: u64,
    /// Commits made (groups of pages with new rows, or the cursor alone).
    pub commits: u64,
    /// Stopped by a signal before the window's end; what was in hand was committed.
    pub interrupted: bool,
    #[serde(flatten)]
    pub api: ApiStats,
    /// Entries: read, ingested, duplicates, rejected; `inputs` counts pages.
    #[serde(flatten)]
    pub rows: IngestMetrics,
}

/// App id of a workspace's cursor.
pub fn cursor_source(workspace: &str) -> String {
    format!("auditlake.pull:{workspace}")
}

/// Pages a run may hold in memory before committing, whatever `commit_pages` says.
const GROUP_BYTES: usize = 64 << 20;

/// When a window brings nothing new, its end is committed as the cursor only once it is this far
/// past the stored one: an idle workspace then costs a commit an hour, not one a run, and a
/// later run re-reads at most this much more.
const IDLE_CURSOR_STEP: TimeDelta = TimeDelta::hours(1);

/// Runs one pull into `lake`. `stop` turning true (a signal) ends it after the commit in hand.
pub async fn pull(lake: &Lake, opts: &PullOptions, mut stop: watch::Receiver<bool>) -> Result<PullMetrics> {
    let started = Instant::now();
    let mut metrics = PullMetrics { workspace: opts.workspace.clone(), ..Default::default() };
    let mut table = lake.load_or_create().await?;
    let source = cursor_source(&opts.workspace);
    // µs since the epoch, as the table holds it; updated by each commit.
    let mut committed = lake.cursor(&table, &source).await?;
    let stored = committed.and_then(DateTime::from_timestamp_micros);
    metrics.cursor_before = stored.map(rfc3339);
    metrics.cursor = metrics.cursor_before.clone();

    metrics.since_ignored = stored.is_some() && opts.since.is_some();
    let now = Utc::now();
    let end = whole_second(opts.until.unwrap_or(now - opts.settle));
    let start = whole_second(match (stored, opts.since) {
        (Some(cursor), _) => cursor - opts.overlap,
        (None, Some(since)) => since,
        (None, None) => {
            metrics.first_run_default = true;
            end - TimeDelta::hours(24)
        }
    });
    if start >= end {
        metrics.rows.seconds = started.elapsed().as_secs_f64();
        return Ok(metrics);
    }
    metrics.window_start = Some(rfc3339(start));
    metrics.window_end = Some(rfc3339(end));

    let lease = write::WriterLease::take(lake, "pull").await?;
    let pulled: Result<(Option<ProgressBar>, ApiStats)> = async {
        let mut api = TorqApi::new(opts.endpoints.clone(), opts.credentials.clone(), opts.api.clone())?;
        let bar = progress_bar(opts.progress, start, end);
        let mut group = Group::default();
        let mut order = Order::default();
        let mut page_token: Option<String> = None;
        let finished = loop {
            if *stop.borrow() {
                break false;
            }
            let page = tokio::select! {
                page = api.page(start, end, page_token.as_deref()) => page?,
                _ = stop.changed() => break false,
            };
            metrics.pages += 1;
            let mut text = Vec::with_capacity(page.entries.iter().map(|e| e.get().len() + 1).sum());
            for entry in &page.entries {
                order.see(entry.get());
                // A raw newline in JSON text can only be whitespace between tokens: one entry a line.
                text.extend(entry.get().bytes().map(|b| if b == b'\n' || b == b'\r' { b' ' } else { b }));
                text.push(b'\n');
            }
            group.bytes += text.len();
            let name = format!("torq:{}/{}/{}", opts.workspace, rfc3339(start), metrics.pages);
            group.inputs.push(Input::Memory { name, bytes: Arc::from(text) });
            if let Some(bar) = &bar {
                if let Some(at) = order.newest.and_then(DateTime::from_timestamp_micros) {
                    bar.set_position((at - start).num_seconds().max(0) as u64);
                }
                bar.set_message(format!("{} pages, {} entries", metrics.pages, order.entries));
            }
            let next = page.next_page_token;
            if next.is_none() {
                break true;
            }
            if next == page_token {
                return Err(Error::Api {
                    url: opts.endpoints.api.to_string(),
                    reason: "the API answered the same page token twice; stopping rather than loop".into(),
                });
            }
            page_token = next;
            if group.inputs.len() >= opts.commit_pages.max(1)
                || group.bytes >= GROUP_BYTES
                || group.since.elapsed() >= opts.commit_interval
            {
                // Never past the window, even if the API answered entries outside it.
                let cursor = order.committed_before().map(|c| c.min(end));
                let group = std::mem::take(&mut group);
                commit(lake, &lease, &mut table, opts, &source, group, cursor, &mut committed, &mut metrics).await?;
            }
        };
        metrics.interrupted = !finished;
        let cursor = if finished { Some(end) } else { order.committed_before().map(|c| c.min(end)) };
        commit(lake, &lease, &mut table, opts, &source, group, cursor, &mut committed, &mut metrics).await?;
        Ok((bar, api.stats.clone()))
    }
    .await;
    // Released on failure too: the run's uncommitted files are garbage for vacuum now.
    lease.release().await;
    let (bar, api_stats) = pulled?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    metrics.api = api_stats;
    metrics.rows.seconds = started.elapsed().as_secs_f64();
    metrics.rows.rows_per_sec =
        if metrics.rows.seconds > 0.0 { metrics.rows.read as f64 / metrics.rows.seconds } else { 0.0 };
    Ok(metrics)
}

/// Pages fetched since the last commit.
struct Group {
    inputs: Vec<Input>,
    bytes: usize,
    since: Instant,
}

impl Default for Group {
    fn default() -> Self {
        Group { inputs: Vec::new(), bytes: 0, since: Instant::now() }
    }
}

/// The timestamps seen in this window, in the order the API gave them.
#[derive(Default)]
struct Order {
    entries: u64,
    newest: Option<i64>,
    /// Every timestamp so far was at or after the one before.
    out_of_order: bool,
}

impl Order {
    fn see(&mut self, entry: &str) {
        self.entries += 1;
        #[derive(serde::Deserialize)]
        struct Stamp<'a> {
            #[serde(borrow, default)]
            timestamp: Option<std::borrow::Cow<'a, str>>,
        }
        // Read as the pipeline reads it. An entry without a readable timestamp is quarantined by
        // the pipeline; it moves nothing.
        let Some(at) = serde_json::from_str::<Stamp>(entry)
            .ok()
            .and_then(|s| s.timestamp)
            .and_then(|t| super::normalise::parse_timestamp(&t))
            .map(|(micros, _date)| micros)
        else {
            return;
        };
        if self.newest.is_some_and(|n| at < n) {
            self.out_of_order = true;
        }
        self.newest = Some(self.newest.map_or(at, |n| n.max(at)));
    }

    /// Where the cursor may stand once the pages seen are committed: the newest timestamp (all
    /// older entries came on earlier pages), or nowhere new when the API broke its order.
    fn committed_before(&self) -> Option<DateTime<Utc>> {
        if self.out_of_order { None } else { self.newest.and_then(DateTime::from_timestamp_micros) }
    }
}

/// Commits a group of pages with the cursor; a group with nothing new commits the cursor alone
/// when it has moved far enough (see [`IDLE_CURSOR_STEP`]).
#[allow(clippy::too_many_arguments)]
async fn commit(
    lake: &Lake,
    lease: &write::WriterLease,
    table: &mut DeltaTable,
    opts: &PullOptions,
    source: &str,
    group: Group,
    cursor: Option<DateTime<Utc>>,
    committed: &mut Option<i64>,
    metrics: &mut PullMetrics,
) -> Result<()> {
    let cursor = cursor.map(|at| write::Cursor { source: source.to_string(), until_us: at.timestamp_micros() });
    let mut metadata = write::CommitMetadata::new();
    metadata.insert("auditlake.pull.workspace".into(), opts.workspace.clone().into());
    if let Some(c) = &cursor {
        metadata.insert("auditlake.pull.cursor".into(), rfc3339_us(c.until_us).into());
    }
    let mut version = None;
    if !group.inputs.is_empty() {
        let pages = Resolved { inputs: group.inputs, skipped: Vec::new() };
        let extras = Extras { cursor: cursor.clone(), metadata: metadata.clone(), stop_on_ctrl_c: false };
        let m = load(lake, lease, table, &opts.ingest, pages, extras).await?;
        version = m.table_version;
        add(&mut metrics.rows, m);
    }
    if version.is_none()
        && let Some(c) = &cursor
    {
        let step = IDLE_CURSOR_STEP.num_microseconds().expect("an hour in µs");
        if committed.is_none_or(|at| c.until_us - at >= step) {
            let v =
                write::append(lake, lease, table, Vec::new(), metadata, &BTreeSet::new(), &KeySet::default(), Some(c))
                    .await?;
            version = Some(v);
            metrics.rows.table_version = Some(v);
        }
    }
    if version.is_some() {
        metrics.commits += 1;
        table.update_state().await.map_err(|e| lake.delta_err("reloading", e))?;
        *committed = lake.cursor(table, source).await?;
        metrics.cursor = committed.map(rfc3339_us);
    }
    Ok(())
}

/// Adds one group's counts to the run's.
fn add(total: &mut IngestMetrics, m: IngestMetrics) {
    total.inputs += m.inputs;
    total.read += m.read;
    total.ingested += m.ingested;
    total.duplicates += m.duplicates;
    total.rejected += m.rejected;
    total.rejected_files.extend(m.rejected_files);
    total.skipped_inputs.extend(m.skipped_inputs);
    let mut dates: BTreeSet<String> = total.partitions.drain(..).collect();
    dates.extend(m.partitions);
    total.partitions = dates.into_iter().collect();
    total.bytes_read += m.bytes_read;
    total.files_written += m.files_written;
    total.bytes_written += m.bytes_written;
    if m.table_version.is_some() {
        total.table_version = m.table_version;
    }
}

fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).expect("in range")
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn progress_bar(enabled: bool, start: DateTime<Utc>, end: DateTime<Utc>) -> Option<ProgressBar> {
    if !enabled {
        return None;
    }
    let bar = ProgressBar::new((end - start).num_seconds().max(1) as u64).with_style(
        ProgressStyle::with_template("{spinner} pull [{bar:30}] {percent}% of the window, {msg}, eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_follows_ordered_timestamps_and_stops_on_disorder() {
        let mut o = Order::default();
        o.see(r#"{"id":"a","timestamp":"2026-10-01T00:00:01Z"}"#);
        o.see(r#"{"id":"b","timestamp":"2026-10-01T00:00:03.5Z"}"#);
        o.see(r#"{"id":"c"}"#);
        let at = o.committed_before().unwrap();
        assert_eq!(rfc3339(at), "2026-10-01T00:00:03.500Z");
        o.see(r#"{"id":"d","timestamp":"2026-10-01T00:00:02Z"}"#);
        assert_eq!(o.committed_before(), None);
        assert_eq!(o.entries, 4);
    }

    #[test]
    fn timestamps_with_escapes_are_read() {
        let mut o = Order::default();
        o.see(r#"{"timestamp":"2026-10-01T00:00:01\u005A"}"#);
        assert!(o.committed_before().is_some());
    }
}
