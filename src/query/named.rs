//! Named queries: one question per `.sql` file.
//!
//! The files in `queries/` are embedded in the binary; `--queries DIR` adds a user's own (a
//! user's file of the same name wins). A file's first `--` comment line is its description.
//! `$name` placeholders are filled from `--param name=value`; every one must be given.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use datafusion::common::ParamValues;
use datafusion::scalar::ScalarValue;

use crate::engine::sql_files;
use crate::error::{Error, Result};

/// A named query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedQuery {
    pub name: String,
    pub description: String,
    pub sql: String,
    /// `$name` placeholders the SQL uses, in order of first use.
    pub params: Vec<String>,
    /// `embedded` or the user's file path.
    pub origin: String,
}

/// The embedded queries: (name, SQL).
pub const EMBEDDED: &[(&str, &str)] = &[
    ("by_action", include_str!("../../queries/by_action.sql")),
    ("by_actor", include_str!("../../queries/by_actor.sql")),
    ("by_actor_type", include_str!("../../queries/by_actor_type.sql")),
    ("by_tag", include_str!("../../queries/by_tag.sql")),
    ("by_scenario", include_str!("../../queries/by_scenario.sql")),
    ("by_day", include_str!("../../queries/by_day.sql")),
    ("by_workspace", include_str!("../../queries/by_workspace.sql")),
    ("by_family", include_str!("../../queries/by_family.sql")),
    ("failed_logins", include_str!("../../queries/failed_logins.sql")),
    ("privileged_changes", include_str!("../../queries/privileged_changes.sql")),
    ("credential_changes", include_str!("../../queries/credential_changes.sql")),
    ("api_key_activity", include_str!("../../queries/api_key_activity.sql")),
    ("actor_timeline", include_str!("../../queries/actor_timeline.sql")),
    ("resource_history", include_str!("../../queries/resource_history.sql")),
];

impl NamedQuery {
    pub fn parse(name: &str, sql: &str, origin: &str) -> NamedQuery {
        let description = sql
            .lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix("--"))
            .map(|d| d.trim().to_string())
            .unwrap_or_default();
        NamedQuery {
            name: name.to_string(),
            description,
            sql: sql.to_string(),
            params: placeholders(sql),
            origin: origin.to_string(),
        }
    }

    /// Values for the query's placeholders; an unknown or missing parameter is an error.
    pub fn param_values(&self, given: &HashMap<String, String>) -> Result<Option<ParamValues>> {
        for key in given.keys() {
            if !self.params.contains(key) {
                let known = if self.params.is_empty() { "none".to_string() } else { self.params.join(", ") };
                return Err(Error::UnknownParam { query: self.name.clone(), param: key.clone(), known });
            }
        }
        if self.params.is_empty() {
            return Ok(None);
        }
        let mut map = HashMap::new();
        for p in &self.params {
            let value =
                given.get(p).ok_or_else(|| Error::MissingParam { query: self.name.clone(), param: p.clone() })?;
            map.insert(p.clone(), ScalarValue::Utf8(Some(value.clone())).into());
        }
        Ok(Some(ParamValues::Map(map)))
    }
}

/// `$name` placeholders outside string literals and comments.
fn placeholders(sql: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\'' => {
                i += 1;
                while i < b.len() && b[i] != b'\'' {
                    i += 1;
                }
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'$' => {
                let start = i + 1;
                let mut end = start;
                while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
                    end += 1;
                }
                let name = &sql[start..end];
                if !name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit()) && !out.iter().any(|n| n == name)
                {
                    out.push(name.to_string());
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// All named queries: embedded, then the user's folder (which may override by name).
pub fn catalog(user_dir: Option<&Path>) -> Result<BTreeMap<String, NamedQuery>> {
    let mut all: BTreeMap<String, NamedQuery> =
        EMBEDDED.iter().map(|(name, sql)| (name.to_string(), NamedQuery::parse(name, sql, "embedded"))).collect();
    if let Some(dir) = user_dir {
        for file in sql_files::read(dir)? {
            all.insert(file.name.clone(), NamedQuery::parse(&file.name, &file.sql, &file.path.display().to_string()));
        }
    }
    Ok(all)
}

/// Looks a query up by name.
pub fn find(name: &str, user_dir: Option<&Path>) -> Result<NamedQuery> {
    let mut all = catalog(user_dir)?;
    all.remove(name).ok_or_else(|| Error::UnknownQuery {
        name: name.to_string(),
        available: all.keys().cloned().collect::<Vec<_>>().join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_queries_is_embedded() {
        sql_files::assert_all_embedded("", EMBEDDED);
        for (name, sql) in EMBEDDED {
            let q = NamedQuery::parse(name, sql, "embedded");
            assert!(!q.description.is_empty(), "{name} needs a description comment");
            crate::engine::check_read_only(sql).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn placeholders_skip_strings_and_comments() {
        assert_eq!(placeholders("-- uses $no\nSELECT '$no', $email, $1 FROM t WHERE a = $email"), vec!["email"]);
    }

    #[test]
    fn params_are_checked() {
        let q = NamedQuery::parse("t", "-- d\nSELECT * FROM audit_log WHERE email = $email", "x");
        assert!(matches!(q.param_values(&HashMap::new()), Err(Error::MissingParam { .. })));
        let bad = HashMap::from([("mail".to_string(), "x".to_string())]);
        assert!(q.param_values(&bad).unwrap_err().to_string().contains("no parameter 'mail'"));
        let ok = HashMap::from([("email".to_string(), "a@b".to_string())]);
        assert!(q.param_values(&ok).unwrap().is_some());
    }

    #[test]
    fn unknown_name_lists_the_known_ones() {
        let err = find("by_nothing", None).unwrap_err().to_string();
        assert!(err.contains("by_action"), "{err}");
    }
}
