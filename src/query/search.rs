//! `auditlake search`: the filters a person types during an incident, without writing SQL.
//!
//! Every filter given must hold (AND); a repeated flag matches any of its values (OR). Text
//! matches are case-insensitive: exact for action, email, actor type and scenario; a substring
//! for actor name, resource and free text. Values are passed as literals, never spliced into SQL.

use datafusion::functions_nested::expr_fn::array_has;
use datafusion::prelude::{DataFrame, Expr, col, lit, lower};

use crate::engine::Session;
use crate::error::Result;
use crate::schema::{TABLE_NAME, col as c};

/// What to look for; each list is OR-ed, lists are AND-ed.
#[derive(Debug, Clone, Default)]
pub struct SearchFilters {
    pub actions: Vec<String>,
    pub emails: Vec<String>,
    /// Substring of actor_name.
    pub actors: Vec<String>,
    /// `web_app`, `api_key`, or `none` for entries without an actor type.
    pub actor_types: Vec<String>,
    pub tags: Vec<String>,
    pub scenarios: Vec<String>,
    pub ips: Vec<String>,
    pub ids: Vec<String>,
    /// resource_id exactly or a substring of resource_name.
    pub resources: Vec<String>,
    /// account_id or account_name.
    pub workspaces: Vec<String>,
    /// Substring anywhere in action, actor, email, resource name or extra_data.
    pub text: Option<String>,
    pub limit: Option<usize>,
    /// Oldest first instead of newest first.
    pub ascending: bool,
    /// All columns instead of the ones a person reads first.
    pub all_columns: bool,
}

/// The columns shown by default, in reading order.
pub const DEFAULT_COLUMNS: [&str; 10] = [
    c::TIMESTAMP,
    c::ACTION,
    c::ACTOR_NAME,
    c::ACTOR_TYPE,
    c::EMAIL,
    c::IP,
    c::RESOURCE_NAME,
    c::SCENARIO_ID,
    c::TAGS,
    c::ACCOUNT_NAME,
];

fn any_of(values: &[String], f: impl Fn(&str) -> Expr) -> Option<Expr> {
    values.iter().map(|v| f(v)).reduce(Expr::or)
}

fn ieq(column: &str, value: &str) -> Expr {
    lower(col(column)).eq(lit(value.to_lowercase()))
}

fn contains(column: &str, value: &str) -> Expr {
    // ILIKE with the user's text escaped: % and _ are literal characters here.
    let escaped = value.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    col(column).ilike(lit(format!("%{escaped}%")))
}

/// The filter expression for `f`, or `None` when nothing is filtered.
pub fn predicate(f: &SearchFilters) -> Option<Expr> {
    let mut parts: Vec<Expr> = Vec::new();
    parts.extend(any_of(&f.actions, |v| ieq(c::ACTION, v)));
    parts.extend(any_of(&f.emails, |v| ieq(c::EMAIL, v)));
    parts.extend(any_of(&f.actors, |v| contains(c::ACTOR_NAME, v)));
    parts.extend(any_of(&f.actor_types, |v| {
        if v.eq_ignore_ascii_case("none") { col(c::ACTOR_TYPE).is_null() } else { ieq(c::ACTOR_TYPE, v) }
    }));
    parts.extend(any_of(&f.tags, |v| array_has(col(c::TAGS), lit(v.to_string()))));
    parts.extend(any_of(&f.scenarios, |v| ieq(c::SCENARIO_ID, v)));
    parts.extend(any_of(&f.ips, |v| col(c::IP).eq(lit(v.to_string()))));
    parts.extend(any_of(&f.ids, |v| col(c::ID).eq(lit(v.to_string()))));
    parts
        .extend(any_of(&f.resources, |v| col(c::RESOURCE_ID).eq(lit(v.to_string())).or(contains(c::RESOURCE_NAME, v))));
    parts.extend(any_of(&f.workspaces, |v| col(c::ACCOUNT_ID).eq(lit(v.to_string())).or(ieq(c::ACCOUNT_NAME, v))));
    if let Some(t) = &f.text {
        let any = [c::ACTION, c::ACTOR_NAME, c::EMAIL, c::RESOURCE_NAME, c::EXTRA_DATA]
            .iter()
            .map(|column| contains(column, t))
            .reduce(Expr::or);
        parts.extend(any);
    }
    parts.into_iter().reduce(Expr::and)
}

/// Builds the search as a DataFrame over the session's `audit_log`.
pub async fn search(session: &Session, f: &SearchFilters) -> Result<DataFrame> {
    let mut df = session.ctx.table(TABLE_NAME).await?;
    if let Some(p) = predicate(f) {
        df = df.filter(p)?;
    }
    df = df.sort(vec![col(c::TIMESTAMP).sort(f.ascending, false), col(c::ID).sort(true, false)])?;
    if !f.all_columns {
        df = df.select_columns(&DEFAULT_COLUMNS)?;
    }
    if let Some(n) = f.limit {
        df = df.limit(0, Some(n))?;
    }
    crate::engine::scan::choose_row_filter(df)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_filters_no_predicate() {
        assert!(predicate(&SearchFilters::default()).is_none());
    }

    #[test]
    fn repeated_flags_or_and_different_flags_and() {
        let f = SearchFilters {
            actions: vec!["Secret created".into(), "Secret deleted".into()],
            emails: vec!["a@b.c".into()],
            ..Default::default()
        };
        let text = predicate(&f).unwrap().to_string();
        assert!(text.contains(" OR "), "{text}");
        assert!(text.contains(" AND "), "{text}");
    }

    #[test]
    fn wildcards_in_user_text_are_literal() {
        let text = contains(c::ACTOR_NAME, "50%_off").to_string();
        assert!(text.contains(r"50\%\_off"), "{text}");
    }
}
