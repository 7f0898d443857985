//! The report's sections and the SQL behind each of their tables.
//!
//! A table's SQL is a file `queries/report/<section>.<table>.sql`, embedded in the binary; the
//! file's first `--` line is the table's title and the following `--` lines explain what it shows.
//! `<section>.count.sql` gives the section's headline number: one row, one column, whose name is
//! the unit (`events`, `changes`, `actors`). A user's folder (`--queries DIR`) may replace a file
//! by name or add tables, and a new `<section>` prefix becomes a section of its own at the end.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};

/// What a section is for: the shown text and the controls it gives evidence for.
#[derive(Debug, Clone, Copy)]
pub struct SectionInfo {
    pub name: &'static str,
    pub title: &'static str,
    pub controls: &'static str,
    pub explanation: &'static str,
}

/// The sections in report order.
pub const SECTIONS: &[SectionInfo] = &[
    SectionInfo {
        name: "volume",
        title: "Volume and completeness",
        controls: "ISO/IEC 27001:2022 A.8.15; PCI DSS 10.2, 10.7; SOC 2 CC7.2",
        explanation: "Shows that audit events were collected for every day of the period, per workspace, \
and flags days and long silences with no events as possible collection gaps.",
    },
    SectionInfo {
        name: "access",
        title: "Privileged access changes",
        controls: "SOC 2 CC6.1, CC6.2, CC6.3; PCI DSS 10.2.1.5; ISO/IEC 27001:2022 A.5.18",
        explanation: "Every user invited, accepted, given a new role or removed, with who made the change, \
when and from where: the provisioning and de-provisioning trail.",
    },
    SectionInfo {
        name: "authentication",
        title: "Authentication",
        controls: "SOC 2 CC6.1, CC7.2; PCI DSS 10.2.1.4, 10.2.1.5",
        explanation: "Sign-ins, sign-outs, account switches and failed logins per user and per address, \
bursts of failures, and addresses a user had not used before.",
    },
    SectionInfo {
        name: "credentials",
        title: "Credentials and secrets",
        controls: "SOC 2 CC6.1; PCI DSS 10.2.1.5, 8.6; ISO/IEC 27001:2022 A.5.17",
        explanation: "API keys enabled and deleted and what each API key did; changes to secrets, \
workspace variables, webhook authentication headers and integrations.",
    },
    SectionInfo {
        name: "idp",
        title: "Identity provider configuration",
        controls: "SOC 2 CC6.1; PCI DSS 10.2.1.5, 10.2.2",
        explanation: "Changes to IdP connections and claims mappings, which decide who can sign in and \
with which role.",
    },
    SectionInfo {
        name: "change",
        title: "Change management",
        controls: "SOC 2 CC8.1; PCI DSS 6.5.1, 10.2.2",
        explanation: "Workflows created, edited, published, unpublished, reverted, enabled, disabled and \
deleted, with revision ids and tags; custom steps and runners.",
    },
    SectionInfo {
        name: "cases",
        title: "Case activity",
        controls: "SOC 2 CC7.3, CC7.4; ISO/IEC 27001:2022 A.5.26",
        explanation: "Incident case activity by Torq scenario_id, and activity by tag.",
    },
    SectionInfo {
        name: "off_hours",
        title: "Off-hours administrative activity",
        controls: "SOC 2 CC7.2; PCI DSS 10.4.1",
        explanation: "Administrative changes made on weekends or outside business hours in the report's \
time zone. Sign-ins and case work are not counted as administrative.",
    },
    SectionInfo {
        name: "actors",
        title: "Actors",
        controls: "SOC 2 CC6.1, CC7.2; PCI DSS 10.2.1, 10.2.2",
        explanation: "Who acted: people, API keys and the AI analyst, their number of events and \
what each did.",
    },
];

/// The embedded report queries: (file stem, SQL).
pub const EMBEDDED: &[(&str, &str)] = &[
    ("volume.count", include_str!("../../queries/report/volume.count.sql")),
    ("volume.per_day", include_str!("../../queries/report/volume.per_day.sql")),
    ("volume.per_workspace", include_str!("../../queries/report/volume.per_workspace.sql")),
    ("volume.per_family", include_str!("../../queries/report/volume.per_family.sql")),
    ("volume.gaps", include_str!("../../queries/report/volume.gaps.sql")),
    ("access.count", include_str!("../../queries/report/access.count.sql")),
    ("access.by_action", include_str!("../../queries/report/access.by_action.sql")),
    ("access.changes", include_str!("../../queries/report/access.changes.sql")),
    ("authentication.count", include_str!("../../queries/report/authentication.count.sql")),
    ("authentication.by_action", include_str!("../../queries/report/authentication.by_action.sql")),
    ("authentication.failed_by_user", include_str!("../../queries/report/authentication.failed_by_user.sql")),
    ("authentication.failed_by_ip", include_str!("../../queries/report/authentication.failed_by_ip.sql")),
    ("authentication.failure_bursts", include_str!("../../queries/report/authentication.failure_bursts.sql")),
    ("authentication.first_seen_ips", include_str!("../../queries/report/authentication.first_seen_ips.sql")),
    ("credentials.count", include_str!("../../queries/report/credentials.count.sql")),
    ("credentials.changes", include_str!("../../queries/report/credentials.changes.sql")),
    ("credentials.api_key_actions", include_str!("../../queries/report/credentials.api_key_actions.sql")),
    ("idp.count", include_str!("../../queries/report/idp.count.sql")),
    ("idp.changes", include_str!("../../queries/report/idp.changes.sql")),
    ("change.count", include_str!("../../queries/report/change.count.sql")),
    ("change.by_action", include_str!("../../queries/report/change.by_action.sql")),
    ("change.workflows", include_str!("../../queries/report/change.workflows.sql")),
    ("change.steps_and_runners", include_str!("../../queries/report/change.steps_and_runners.sql")),
    ("cases.count", include_str!("../../queries/report/cases.count.sql")),
    ("cases.by_scenario", include_str!("../../queries/report/cases.by_scenario.sql")),
    ("cases.by_tag", include_str!("../../queries/report/cases.by_tag.sql")),
    ("off_hours.count", include_str!("../../queries/report/off_hours.count.sql")),
    ("off_hours.activity", include_str!("../../queries/report/off_hours.activity.sql")),
    ("off_hours.by_actor", include_str!("../../queries/report/off_hours.by_actor.sql")),
    ("actors.count", include_str!("../../queries/report/actors.count.sql")),
    ("actors.by_type", include_str!("../../queries/report/actors.by_type.sql")),
    ("actors.top", include_str!("../../queries/report/actors.top.sql")),
    ("actors.actions", include_str!("../../queries/report/actors.actions.sql")),
];

/// One table's query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableQuery {
    /// `<section>.<table>`.
    pub key: String,
    pub title: String,
    pub explanation: String,
    pub sql: String,
    /// `embedded` or the user's file.
    pub origin: String,
}

/// A section's queries: its count query (if any) and its tables in order.
#[derive(Debug, Clone)]
pub struct SectionQueries {
    pub name: String,
    pub info: Option<SectionInfo>,
    pub count: Option<TableQuery>,
    pub tables: Vec<TableQuery>,
}

impl TableQuery {
    fn parse(key: &str, sql: &str, origin: &str) -> TableQuery {
        // The leading `--` lines: the first is the title, the rest the explanation.
        let comments: Vec<&str> =
            sql.lines().map(str::trim).take_while(|l| l.starts_with("--")).map(|l| l[2..].trim()).collect();
        TableQuery {
            key: key.to_string(),
            title: comments.first().map(|s| s.to_string()).unwrap_or_else(|| key.to_string()),
            explanation: comments.get(1..).map(|c| c.join(" ")).unwrap_or_default(),
            sql: sql.to_string(),
            origin: origin.to_string(),
        }
    }

    pub fn section(&self) -> &str {
        self.key.split_once('.').map_or(self.key.as_str(), |(s, _)| s)
    }
}

/// All sections with their queries: embedded files, then a user's folder. The embedded order is
/// kept; a user's new tables come after a section's own, sorted by name.
pub fn sections(user_dir: Option<&Path>) -> Result<Vec<SectionQueries>> {
    let mut queries: Vec<TableQuery> =
        EMBEDDED.iter().map(|(key, sql)| TableQuery::parse(key, sql, "embedded")).collect();
    if let Some(dir) = user_dir {
        let mut found: BTreeMap<String, TableQuery> = BTreeMap::new();
        for file in crate::engine::sql_files::read(dir)? {
            if !file.name.contains('.') {
                return Err(Error::ReportQueryFile {
                    path: file.path.display().to_string(),
                    reason: "must be named <section>.<table>.sql".into(),
                });
            }
            found.insert(file.name.clone(), TableQuery::parse(&file.name, &file.sql, &file.path.display().to_string()));
        }
        for q in &mut queries {
            if let Some(mine) = found.remove(&q.key) {
                *q = mine;
            }
        }
        queries.extend(found.into_values());
    }
    for q in &queries {
        crate::engine::check_read_only(&q.sql).map_err(|e| Error::ReportQueryFile {
            path: format!("{} ({})", q.key, q.origin),
            reason: format!("not a single read-only query: {e}"),
        })?;
    }

    let mut out: Vec<SectionQueries> = SECTIONS
        .iter()
        .map(|info| SectionQueries { name: info.name.to_string(), info: Some(*info), count: None, tables: vec![] })
        .collect();
    for q in queries {
        let name = q.section().to_string();
        let idx = match out.iter().position(|s| s.name == name) {
            Some(i) => i,
            None => {
                out.push(SectionQueries { name, info: None, count: None, tables: vec![] });
                out.len() - 1
            }
        };
        if q.key.ends_with(".count") {
            out[idx].count = Some(q);
        } else {
            out[idx].tables.push(q);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_queries_report_is_embedded_once() {
        crate::engine::sql_files::assert_all_embedded("report", EMBEDDED);
    }

    #[test]
    fn every_section_has_a_count_and_tables_with_titles() {
        let all = sections(None).unwrap();
        assert_eq!(all.len(), SECTIONS.len(), "no stray section prefix in queries/report");
        for s in &all {
            assert!(s.count.is_some(), "{} has no count query", s.name);
            assert!(!s.tables.is_empty(), "{} has no tables", s.name);
            for t in &s.tables {
                assert_ne!(t.title, t.key, "{} needs a title comment", t.key);
                assert!(!t.explanation.is_empty(), "{} needs an explanation comment", t.key);
            }
        }
    }

    #[test]
    fn a_users_folder_replaces_and_adds() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("access.changes.sql"), "-- Mine\n-- why\nSELECT 1 AS one").unwrap();
        std::fs::write(dir.path().join("sox.logins.sql"), "-- SOX logins\n-- why\nSELECT 2 AS two").unwrap();
        let all = sections(Some(dir.path())).unwrap();
        let access = all.iter().find(|s| s.name == "access").unwrap();
        assert!(access.tables.iter().any(|t| t.title == "Mine" && t.origin.ends_with("access.changes.sql")));
        let sox = all.last().unwrap();
        assert_eq!((sox.name.as_str(), sox.tables[0].title.as_str()), ("sox", "SOX logins"));

        std::fs::write(dir.path().join("bad.sql"), "SELECT 1").unwrap();
        assert!(sections(Some(dir.path())).unwrap_err().to_string().contains("<section>.<table>.sql"));
        std::fs::remove_file(dir.path().join("bad.sql")).unwrap();
        std::fs::write(dir.path().join("x.drop.sql"), "DROP TABLE audit_log").unwrap();
        assert!(sections(Some(dir.path())).unwrap_err().to_string().contains("read-only"));
    }
}
