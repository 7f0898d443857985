//! auditlake's own SQL functions, registered in every session (query, search, report, cluster).
//!
//! `action_family(action)`: the family Torq groups an action under (Users, Workflows, Secrets,
//! Cases, ...), defined once here from [`FAMILIES`] and used by the named queries and the
//! report alike. When a query is planned the call is rewritten into the equivalent `CASE`
//! expression, so a Ballista scheduler, which does not know the function, runs it unchanged.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility, when,
};
use datafusion::prelude::{Expr, SessionContext, lit};
use datafusion::scalar::ScalarValue;

/// How an action is recognised: the whole text, or how it starts.
#[derive(Debug, Clone, Copy)]
pub enum ActionMatch {
    Exact(&'static str),
    Prefix(&'static str),
}

impl ActionMatch {
    fn matches(self, action: &str) -> bool {
        match self {
            ActionMatch::Exact(a) => action == a,
            ActionMatch::Prefix(p) => action.starts_with(p),
        }
    }

    /// The test as SQL, with literals of the argument's string type (`text`): the rewrite runs
    /// after type coercion, so nothing would cast them.
    fn expr(self, action: Expr, text: fn(String) -> ScalarValue) -> Expr {
        match self {
            ActionMatch::Exact(a) => action.eq(lit(text(a.to_string()))),
            // No prefix holds `%` or `_`, so LIKE matches it literally.
            ActionMatch::Prefix(p) => action.like(lit(text(format!("{p}%")))),
        }
    }
}

use ActionMatch::{Exact, Prefix};

/// Torq's action families, first match wins; anything else is [`OTHER`].
pub const FAMILIES: &[(&str, &[ActionMatch])] = &[
    ("SSO", &[Exact("User login failed")]),
    ("Users", &[Prefix("User ")]),
    ("Workflows", &[Prefix("Workflow ")]),
    ("Workspace variables", &[Prefix("Workspace variable ")]),
    ("Workflow notifications", &[Prefix("Email address "), Prefix("Webhook ")]),
    ("API keys", &[Prefix("API key ")]),
    ("Secrets", &[Prefix("Secret ")]),
    ("Integrations", &[Prefix("Integration ")]),
    ("Custom steps", &[Prefix("Custom step ")]),
    ("Runners", &[Prefix("Runner ")]),
    ("IdP connections", &[Prefix("IdP connection ")]),
    ("IdP claims mappings", &[Prefix("IdP claims mapping ")]),
    (
        "Cases",
        &[
            Prefix("Case "),
            Prefix("Cases "),
            Prefix("Observable "),
            Prefix("Attachment "),
            Prefix("Note "),
            Prefix("Link Between Cases "),
            Exact("Workspace Configuration Updated"),
        ],
    ),
];

/// The family of an action no rule names (and of a missing action).
pub const OTHER: &str = "Other";

/// The family of one action.
pub fn family_of(action: Option<&str>) -> &'static str {
    let Some(action) = action else { return OTHER };
    FAMILIES.iter().find(|(_, rules)| rules.iter().any(|r| r.matches(action))).map_or(OTHER, |(family, _)| family)
}

/// Registers auditlake's functions in `ctx`.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::from(ActionFamily::new()));
}

/// Name, signature and description of each function, for `auditlake schema`.
pub fn describe() -> Vec<(&'static str, &'static str)> {
    vec![(
        "action_family(action) -> Utf8",
        "the family Torq groups an action under (Users, Workflows, Secrets, Cases, ..., else Other)",
    )]
}

/// `action_family(action)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ActionFamily {
    signature: Signature,
}

impl ActionFamily {
    pub fn new() -> Self {
        ActionFamily { signature: Signature::string(1, Volatility::Immutable) }
    }
}

impl Default for ActionFamily {
    fn default() -> Self {
        Self::new()
    }
}

static DOCUMENTATION: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DocSection { include: true, label: "auditlake", description: None },
        "The family Torq groups an audit action under: SSO, Users, Workflows, Workspace variables, \
         Workflow notifications, API keys, Secrets, Integrations, Custom steps, Runners, IdP connections, \
         IdP claims mappings, Cases, or Other.",
        "action_family(action)",
    )
    .with_argument("action", "The `action` column, e.g. 'Workflow updated'.")
    .build()
});

impl ScalarUDFImpl for ActionFamily {
    fn name(&self) -> &str {
        "action_family"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    /// Never null: a missing action is `Other`, as in the `CASE` it becomes.
    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(self.name(), DataType::Utf8, false)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let input = args.args[0].to_array(args.number_rows)?;
        let text = cast(&input, &DataType::Utf8)?;
        let families: StringArray = text.as_string::<i32>().iter().map(|a| Some(family_of(a))).collect();
        debug_assert_eq!(families.len(), args.number_rows);
        Ok(ColumnarValue::Array(Arc::new(families)))
    }

    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        let text: fn(String) -> ScalarValue = match info.get_data_type(&args[0]) {
            Ok(DataType::Utf8View) => ScalarValue::new_utf8view,
            Ok(DataType::LargeUtf8) => |s| ScalarValue::LargeUtf8(Some(s)),
            Ok(DataType::Utf8) => ScalarValue::new_utf8,
            // NULL, or a type not known here: evaluated row by row instead.
            _ => return Ok(ExprSimplifyResult::Original(args)),
        };
        let action = args.into_iter().next().expect("one argument, checked by the signature");
        Ok(ExprSimplifyResult::Simplified(case_expr(action, text)?))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOCUMENTATION)
    }
}

/// `CASE WHEN action = 'User login failed' THEN 'SSO' WHEN action LIKE 'User %' ... ELSE 'Other' END`.
fn case_expr(action: Expr, text: fn(String) -> ScalarValue) -> Result<Expr> {
    let rule = |rules: &[ActionMatch]| {
        rules.iter().map(|r| r.expr(action.clone(), text)).reduce(Expr::or).expect("every family has a rule")
    };
    let (first, rest) = FAMILIES.split_first().expect("families");
    let mut case = when(rule(first.1), lit(first.0));
    for (family, rules) in rest {
        case.when(rule(rules), lit(*family));
    }
    case.otherwise(lit(OTHER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_follow_torqs_grouping() {
        assert_eq!(family_of(Some("User login failed")), "SSO");
        assert_eq!(family_of(Some("User role updated")), "Users");
        assert_eq!(family_of(Some("Workspace variable created")), "Workspace variables");
        assert_eq!(family_of(Some("Workspace Configuration Updated")), "Cases");
        assert_eq!(family_of(Some("Link Between Cases created")), "Cases");
        assert_eq!(family_of(Some("Something new")), OTHER);
        assert_eq!(family_of(None), OTHER);
    }

    #[tokio::test]
    async fn the_sql_function_and_its_case_agree() {
        let ctx = SessionContext::new();
        register(&ctx);
        let actions = [
            "User login failed",
            "User invited",
            "Webhook created",
            "Cases bulk updated",
            "Note added",
            "Runner deleted",
            "Usher",
            "",
        ];
        let values: Vec<String> = actions.iter().map(|a| format!("('{a}')")).collect();
        let sql = format!(
            "SELECT a, action_family(a) AS f FROM (VALUES {}, (NULL)) AS t(a) ORDER BY a NULLS LAST",
            values.join(", ")
        );
        let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
        let mut got = Vec::new();
        for b in &batches {
            let a = cast(b.column(0), &DataType::Utf8).unwrap();
            let f = cast(b.column(1), &DataType::Utf8).unwrap();
            for i in 0..b.num_rows() {
                let action = a.as_string::<i32>().is_valid(i).then(|| a.as_string::<i32>().value(i).to_string());
                got.push((action, f.as_string::<i32>().value(i).to_string()));
            }
        }
        assert_eq!(got.len(), actions.len() + 1);
        for (action, family) in got {
            assert_eq!(family, family_of(action.as_deref()), "{action:?}");
        }
        // The plan carries the CASE, not the function: a cluster needs no registration.
        let explain = "EXPLAIN SELECT action_family(a) AS f FROM (VALUES ('x')) AS t(a)";
        let plan = ctx.sql(explain).await.unwrap().collect().await.unwrap();
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&plan).unwrap().to_string();
        assert!(text.contains("CASE WHEN") && !text.contains("action_family(t.a)"), "{text}");
    }
}
