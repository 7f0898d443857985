//! A generator of realistic synthetic Torq audit feeds, for demos and benchmarks.
//!
//! Deterministic for a seed. Skewed like real use: a few actors do most of the work, workflow
//! edits and case activity dominate, weekdays are busier than weekends and office hours busier
//! than nights. Every action family of Torq's list appears, with the quirks of real entries
//! (API-key actors, the AI analyst without actor_type/ip/user_agent, numeric case ids, trailing
//! spaces in names, tags and revision ids on workflow actions, scenario ids on cases).

use std::io::{self, Write};

use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc};
use serde::Serialize;

/// Output shape of the generated feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedFormat {
    /// One entry a line.
    Ndjson,
    /// One JSON array (one entry a line inside it).
    JsonArray,
    /// Torq API pages `{"audit_logs": [...], "next_page_token": ...}`, one page a line.
    Pages,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub events: u64,
    pub days: u32,
    pub workspaces: u32,
    /// First UTC day of the feed.
    pub start: NaiveDate,
    pub seed: u64,
    pub format: FeedFormat,
    /// Fraction (0..1) of entries sent twice, as Torq's re-deliveries are.
    pub duplicate_rate: f64,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            events: 10_000,
            days: 30,
            workspaces: 3,
            start: NaiveDate::from_ymd_opt(2026, 10, 1).expect("valid date"),
            seed: 42,
            format: FeedFormat::Ndjson,
            duplicate_rate: 0.0,
        }
    }
}

/// SplitMix64: small, fast, good enough for synthetic data, and stable across versions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Index in 0..n, skewed so low indices are much more likely (roughly Zipf).
    fn skewed(&mut self, n: usize) -> usize {
        let u = self.unit();
        ((n as f64).powf(u) - 1.0).floor().clamp(0.0, (n - 1) as f64) as usize
    }
    fn uuid(&mut self) -> String {
        let a = self.next();
        let b = self.next();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48) & 0x3fff,
            b & 0xffff_ffff_ffff
        )
    }
}

/// (action, weight). Weights shape the mix: edits and case work dominate.
const ACTIONS: &[(&str, u32)] = &[
    ("User invited", 4),
    ("User accepted invitation", 3),
    ("User role updated", 3),
    ("User deleted", 2),
    ("User logged in", 60),
    ("User logged out", 25),
    ("User switched accounts", 8),
    ("Workflow created", 10),
    ("Workflow deleted", 3),
    ("Workflow updated", 160),
    ("Workflow published", 30),
    ("Workflow unpublished", 4),
    ("Workflow edited", 90),
    ("Workflow reverted", 3),
    ("Workflow enabled", 8),
    ("Workflow disabled", 6),
    ("Workspace variable created", 4),
    ("Workspace variable updated", 6),
    ("Workspace variable deleted", 2),
    ("Email address added", 2),
    ("Email address removed", 1),
    ("Webhook added", 2),
    ("Webhook removed", 1),
    ("Webhook authentication headers added", 1),
    ("Webhook authentication headers removed", 1),
    ("Webhook authentication headers updated", 1),
    ("API key enabled", 2),
    ("API key deleted", 1),
    ("Secret created", 3),
    ("Secret deleted", 1),
    ("Secret updated", 4),
    ("Integration created", 4),
    ("Integration deleted", 1),
    ("Integration updated", 6),
    ("Custom step created", 2),
    ("Custom step deleted", 1),
    ("Runner created", 1),
    ("Runner deleted", 1),
    ("IdP connection created", 1),
    ("IdP connection updated", 1),
    ("IdP connection enabled", 1),
    ("IdP connection disabled", 1),
    ("IdP claims mapping created", 1),
    ("IdP claims mapping updated", 1),
    ("IdP claims mapping deleted", 1),
    ("User login failed", 12),
    ("Case Created", 40),
    ("Case Updated", 120),
    ("Case Deleted", 2),
    ("Observable Created", 30),
    ("Observable Updated", 10),
    ("Observable Associated with Case", 15),
    ("Observable Dissociated from Case", 3),
    ("Attachment Added to Case", 6),
    ("Attachment Removed from Case", 1),
    ("Workspace Configuration Updated", 1),
    ("Cases Linked", 3),
    ("Link Between Cases Updated", 1),
    ("Cases Unlinked", 1),
    ("Case Context Updated", 8),
    ("Note Created", 20),
    ("Note Updated", 6),
    ("Note Removed", 1),
];

const SCENARIOS: &[&str] = &[
    "ASSOCIATED_OBSERVABLE_CREATED",
    "ATTACHMENT_CREATED",
    "CASE_ASSIGNEE_UPDATED",
    "CASE_CATEGORY_UPDATED",
    "CASE_CREATED",
    "CASE_EVENT_UPDATED",
    "CASE_SEVERITY_UPDATED",
    "CASE_STATE_UPDATED",
    "CASE_TAGS_UPDATED",
    "CASE_UPDATED",
    "CASE_VIEW_CHANGED",
    "COMMENT_CREATED",
    "CUSTOM_FIELD_UPDATED",
    "LINK_UPDATED",
    "NOTE_UPDATED",
    "OBSERVABLE_CREATED",
    "OBSERVABLE_UPDATED",
    "REQUEST_FOR_REVIEW",
    "SHARE_REQUEST_CREATED",
    "STEP_FAILURE",
    "USER_MENTIONED",
    "WORKFLOW_FAILURE",
];

const FIRST: &[&str] = &[
    "Dana", "Avi", "Noa", "Lior", "Maya", "Omer", "Tal", "Yael", "Eitan", "Shira", "Ron", "Gal", "Amit", "Roni", "Ido",
    "Hila",
];
const LAST: &[&str] =
    &["Levi", "Cohen", "Mizrahi", "Peretz", "Biton", "Friedman", "Katz", "Azulay", "Shapiro", "Klein"];
const TAGS: &[&str] =
    &["phishing", "edr", "iam", "soc-tier1", "enrichment", "cloud", "prod", "experimental", "jira", "slack"];
const WORKFLOWS: &[&str] = &[
    "Phishing triage",
    "Impossible travel",
    "EDR isolate host",
    "Okta MFA reset",
    "Enrich IOC",
    "Offboard user",
    "S3 bucket exposure",
    "Audit log (step)",
    "Daily report",
    "Slack approvals",
];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "python-requests/2.32.3",
];

struct Actor {
    name: String,
    email: String,
    kind: Option<&'static str>,
    ip: String,
}

struct Workspace {
    id: String,
    name: String,
    actors: Vec<Actor>,
    workflows: Vec<(String, String, Vec<&'static str>)>,
}

#[derive(Serialize)]
struct Entry<'a> {
    account_id: &'a str,
    account_name: &'a str,
    action: &'a str,
    actor_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor_type: Option<&'a str>,
    email: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    extra_data: Option<serde_json::Value>,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<&'a str>,
    resource_id: &'a str,
    resource_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scenario_id: Option<&'a str>,
    timestamp: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'a str>,
}

fn workspaces(rng: &mut Rng, n: u32) -> Vec<Workspace> {
    (0..n.max(1))
        .map(|w| {
            let mut actors: Vec<Actor> = (0..12 + rng.below(20))
                .map(|i| {
                    let first = FIRST[rng.below(FIRST.len() as u64) as usize];
                    let last = LAST[rng.below(LAST.len() as u64) as usize];
                    // Torq keeps names as typed; some carry a trailing space.
                    let name = if i % 7 == 3 { format!("{first} {last} ") } else { format!("{first} {last}") };
                    Actor {
                        email: format!("{}.{}{}@acme{}.example", first.to_lowercase(), last.to_lowercase(), i, w),
                        name,
                        kind: Some("web_app"),
                        ip: format!("198.51.{}.{}", rng.below(255), 1 + rng.below(254)),
                    }
                })
                .collect();
            for k in 0..3 {
                let creator = actors[k].email.clone();
                actors.insert(
                    1 + k,
                    Actor {
                        name: format!("ci-key-{k}"),
                        email: creator,
                        kind: Some("api_key"),
                        ip: format!("203.0.113.{}", 10 + k),
                    },
                );
            }
            actors.push(Actor {
                name: "Socrates".into(),
                email: "socrates@torq.io".into(),
                kind: None,
                ip: String::new(),
            });
            let workflows = WORKFLOWS
                .iter()
                .map(|name| {
                    let tags: Vec<&str> = (0..rng.below(4))
                        .map(|_| TAGS[rng.skewed(TAGS.len())])
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .collect();
                    (rng.uuid(), name.to_string(), tags)
                })
                .collect();
            Workspace { id: rng.uuid(), name: format!("acme-{w}"), actors, workflows }
        })
        .collect()
}

/// Writes the feed to `out`; returns the number of entries written (duplicates included).
pub fn generate(opts: &GenerateOptions, out: &mut dyn Write) -> io::Result<u64> {
    let mut rng = Rng(opts.seed);
    let spaces = workspaces(&mut rng, opts.workspaces);
    let total_weight: u32 = ACTIONS.iter().map(|(_, w)| w).sum();
    let days = opts.days.max(1);

    // Weekdays get three times the events of weekend days.
    let weights: Vec<f64> = (0..days)
        .map(|d| {
            let wd = (opts.start + Duration::days(d as i64)).weekday().number_from_monday();
            if wd >= 6 { 1.0 } else { 3.0 }
        })
        .collect();
    let weight_sum: f64 = weights.iter().sum();
    let mut written = 0u64;
    let mut assigned = 0u64;
    let mut page: Vec<String> = Vec::new();
    let mut first = true;
    if opts.format == FeedFormat::JsonArray {
        out.write_all(b"[\n")?;
    }
    let mut emit = |line: String, out: &mut dyn Write| -> io::Result<()> {
        match opts.format {
            FeedFormat::Ndjson => {
                out.write_all(line.as_bytes())?;
                out.write_all(b"\n")
            }
            FeedFormat::JsonArray => {
                if !first {
                    out.write_all(b",\n")?;
                }
                first = false;
                out.write_all(line.as_bytes())
            }
            FeedFormat::Pages => {
                page.push(line);
                if page.len() == 500 {
                    write_page(out, &mut page, true)?;
                }
                Ok(())
            }
        }
    };

    for (d, w) in weights.iter().enumerate() {
        let n = if d as u32 == days - 1 {
            opts.events - assigned
        } else {
            ((opts.events as f64) * w / weight_sum).round() as u64
        }
        .min(opts.events - assigned);
        assigned += n;
        let day =
            Utc.from_utc_datetime(&(opts.start + Duration::days(d as i64)).and_hms_opt(0, 0, 0).expect("midnight"));
        // Office hours (07-19 UTC) get most of the day's events.
        let mut times: Vec<i64> = (0..n)
            .map(|_| {
                let office = rng.unit() < 0.8;
                let secs = if office { 7 * 3600 + rng.below(12 * 3600) } else { rng.below(86_400) };
                secs as i64 * 1_000_000 + rng.below(1_000_000) as i64
            })
            .collect();
        times.sort_unstable();
        for t in times {
            let line = entry(&mut rng, &spaces, total_weight, day + Duration::microseconds(t));
            if opts.duplicate_rate > 0.0 && rng.unit() < opts.duplicate_rate {
                emit(line.clone(), out)?;
                written += 1;
            }
            emit(line, out)?;
            written += 1;
        }
    }
    match opts.format {
        FeedFormat::JsonArray => out.write_all(b"\n]\n")?,
        FeedFormat::Pages if !page.is_empty() => write_page(out, &mut page, false)?,
        _ => {}
    }
    out.flush()?;
    Ok(written)
}

fn write_page(out: &mut dyn Write, page: &mut Vec<String>, more: bool) -> io::Result<()> {
    writeln!(
        out,
        "{{\"audit_logs\":[{}],\"next_page_token\":\"{}\"}}",
        page.join(","),
        if more { "more" } else { "" }
    )?;
    page.clear();
    Ok(())
}

fn entry(rng: &mut Rng, spaces: &[Workspace], total_weight: u32, at: chrono::DateTime<Utc>) -> String {
    let ws = &spaces[rng.skewed(spaces.len())];
    let mut pick = rng.below(total_weight as u64) as u32;
    let action = ACTIONS
        .iter()
        .find(|(_, w)| {
            if pick < *w {
                true
            } else {
                pick -= w;
                false
            }
        })
        .map(|(a, _)| *a)
        .unwrap_or("Workflow updated");
    let case = action.contains("Case")
        || action.starts_with("Observable")
        || action.starts_with("Attachment")
        || action.starts_with("Note");
    // The AI analyst works cases; people do everything.
    let actor = if case && rng.below(5) == 0 {
        ws.actors.last().expect("analyst")
    } else {
        &ws.actors[rng.skewed(ws.actors.len() - 1)]
    };
    let id = rng.uuid();
    let ts = at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let (resource_id, resource_name, extra_data, scenario) = if action.starts_with("Workflow ") {
        let (wid, name, tags) = &ws.workflows[rng.skewed(ws.workflows.len())];
        let mut extra = serde_json::json!({ "revision_id": rng.uuid() });
        if !tags.is_empty() {
            extra["tags"] = serde_json::json!(tags);
        }
        (wid.clone(), name.clone(), Some(extra), None)
    } else if case {
        let case_id = (1000 + rng.below(4000)).to_string();
        let scenario = SCENARIOS[rng.skewed(SCENARIOS.len())];
        let mut extra = serde_json::json!({ "scenario_id": scenario });
        if action.starts_with("Cases") || action.starts_with("Link") {
            extra["linked_case_id"] = serde_json::json!((1000 + rng.below(4000)).to_string());
        }
        // Where scenario_id sits is not documented: use both places.
        let top = rng.below(2) == 0;
        (case_id.clone(), format!("Case #{case_id}"), Some(extra), top.then_some(scenario))
    } else if action.starts_with("User") {
        let other = &ws.actors[rng.below(ws.actors.len() as u64) as usize];
        (rng.uuid(), other.email.clone(), None, None)
    } else {
        (rng.uuid(), format!("{} {}", action.split(' ').next().unwrap_or("item"), rng.below(50)), None, None)
    };
    let analyst = actor.kind.is_none();
    let e = Entry {
        account_id: &ws.id,
        account_name: &ws.name,
        action,
        actor_name: &actor.name,
        actor_type: actor.kind,
        email: &actor.email,
        extra_data,
        id: &id,
        ip: (!analyst).then_some(actor.ip.as_str()),
        resource_id: &resource_id,
        resource_name: &resource_name,
        scenario_id: scenario,
        timestamp: &ts,
        user_agent: (!analyst).then(|| AGENTS[rng.skewed(AGENTS.len())]),
    };
    serde_json::to_string(&e).expect("entry serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(opts: &GenerateOptions) -> Vec<serde_json::Value> {
        let mut buf = Vec::new();
        generate(opts, &mut buf).unwrap();
        buf.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect()
    }

    #[test]
    fn deterministic_and_exact_count() {
        let opts = GenerateOptions { events: 500, days: 7, ..Default::default() };
        let a = lines(&opts);
        assert_eq!(a.len(), 500);
        assert_eq!(a, lines(&opts));
        let days: std::collections::BTreeSet<_> =
            a.iter().map(|e| e["timestamp"].as_str().unwrap()[..10].to_string()).collect();
        assert_eq!(days.len(), 7);
    }

    #[test]
    fn duplicates_are_exact_copies() {
        let opts = GenerateOptions { events: 1000, duplicate_rate: 0.1, ..Default::default() };
        let all = lines(&opts);
        let ids: std::collections::HashSet<_> = all.iter().map(|e| e["id"].as_str().unwrap().to_string()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(all.len() > 1050);
    }

    #[test]
    fn pages_hold_500_entries() {
        let opts = GenerateOptions { events: 1200, format: FeedFormat::Pages, ..Default::default() };
        let pages = lines(&opts);
        assert_eq!(pages.len(), 3);
        assert_eq!(pages[0]["audit_logs"].as_array().unwrap().len(), 500);
        assert_eq!(pages[2]["next_page_token"], "");
    }
}
