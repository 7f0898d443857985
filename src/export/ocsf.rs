//! Torq audit entries as OCSF 1.1 events: [`MAPPING`] says which class and activity each action
//! is, [`event`] builds one event from a row of the table, [`arrow_schema`] is each class's
//! Parquet schema.
//!
//! The README shows [`MAPPING`] as a table; `tests/export.rs` checks that the two agree and that
//! every event validates against the OCSF 1.1.0 schema.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use serde::Serialize;

/// The OCSF version every event declares in `metadata.version`.
pub const OCSF_VERSION: &str = "1.1.0";

/// The four OCSF classes Torq's actions map to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// 3001: users invited, accepted, deleted.
    AccountChange,
    /// 3002: logins, logouts, account switches, failed logins.
    Authentication,
    /// 3005: role changes.
    UserAccess,
    /// 6003: create, update and delete of everything else, and any action not in [`MAPPING`].
    ApiActivity,
}

impl Class {
    pub const ALL: [Class; 4] = [Class::AccountChange, Class::Authentication, Class::UserAccess, Class::ApiActivity];

    pub fn uid(self) -> i32 {
        match self {
            Class::AccountChange => 3001,
            Class::Authentication => 3002,
            Class::UserAccess => 3005,
            Class::ApiActivity => 6003,
        }
    }

    pub fn caption(self) -> &'static str {
        match self {
            Class::AccountChange => "Account Change",
            Class::Authentication => "Authentication",
            Class::UserAccess => "User Access Management",
            Class::ApiActivity => "API Activity",
        }
    }

    /// The class's name in output paths: a Security Lake custom source holds one class.
    pub fn slug(self) -> &'static str {
        match self {
            Class::AccountChange => "account-change",
            Class::Authentication => "authentication",
            Class::UserAccess => "user-access",
            Class::ApiActivity => "api-activity",
        }
    }

    pub fn category_uid(self) -> i32 {
        self.uid() / 1000
    }

    pub fn category_name(self) -> &'static str {
        match self.category_uid() {
            3 => "Identity & Access Management",
            _ => "Application Activity",
        }
    }

    /// The caption of an activity id, as the schema's enum names it.
    pub fn activity_caption(self, activity_id: i32) -> &'static str {
        match (self, activity_id) {
            (Class::AccountChange, 1) => "Create",
            (Class::AccountChange, 2) => "Enable",
            (Class::AccountChange, 6) => "Delete",
            (Class::Authentication, 1) => "Logon",
            (Class::Authentication, 2) => "Logoff",
            (Class::UserAccess, 1) => "Assign Privileges",
            (Class::UserAccess, 2) => "Revoke Privileges",
            (Class::ApiActivity, 1) => "Create",
            (Class::ApiActivity, 2) => "Read",
            (Class::ApiActivity, 3) => "Update",
            (Class::ApiActivity, 4) => "Delete",
            (_, 0) => "Unknown",
            _ => "Other",
        }
    }
}

use Class::{AccountChange, ApiActivity, Authentication, UserAccess};

/// OCSF API Activity ids, by the verb of the action.
const CREATE: i32 = 1;
const UPDATE: i32 = 3;
const DELETE: i32 = 4;
const OTHER: i32 = 99;

/// One row of the mapping: a Torq action, its class, its activity, and for API Activity the type
/// of the resource it acts on.
#[derive(Debug, Clone, Copy)]
pub struct Mapping {
    pub action: &'static str,
    pub class: Class,
    pub activity_id: i32,
    pub resource_type: &'static str,
}

const fn m(action: &'static str, class: Class, activity_id: i32, resource_type: &'static str) -> Mapping {
    Mapping { action, class, activity_id, resource_type }
}

/// Every action of ../shared/TORQ-AUDIT-LOGS.md, by family. Matched ignoring case; anything
/// else is API Activity, activity 99 (Other), with the action as `activity_name`.
pub const MAPPING: &[Mapping] = &[
    // Users
    m("User invited", AccountChange, 1, "User"),
    m("User accepted invitation", AccountChange, 2, "User"),
    m("User deleted", AccountChange, 6, "User"),
    m("User role updated", UserAccess, 1, "User"),
    m("User logged in", Authentication, 1, ""),
    m("User logged out", Authentication, 2, ""),
    m("User switched accounts", Authentication, OTHER, ""),
    // SSO: a failed logon (status Failure)
    m("User login failed", Authentication, 1, ""),
    // Workflows
    m("Workflow created", ApiActivity, CREATE, "Workflow"),
    m("Workflow deleted", ApiActivity, DELETE, "Workflow"),
    m("Workflow updated", ApiActivity, UPDATE, "Workflow"),
    m("Workflow published", ApiActivity, UPDATE, "Workflow"),
    m("Workflow unpublished", ApiActivity, UPDATE, "Workflow"),
    m("Workflow edited", ApiActivity, UPDATE, "Workflow"),
    m("Workflow reverted", ApiActivity, UPDATE, "Workflow"),
    m("Workflow enabled", ApiActivity, UPDATE, "Workflow"),
    m("Workflow disabled", ApiActivity, UPDATE, "Workflow"),
    // Workspace variables
    m("Workspace variable created", ApiActivity, CREATE, "Workspace variable"),
    m("Workspace variable updated", ApiActivity, UPDATE, "Workspace variable"),
    m("Workspace variable deleted", ApiActivity, DELETE, "Workspace variable"),
    // Workflow notifications
    m("Email address added", ApiActivity, CREATE, "Notification email address"),
    m("Email address removed", ApiActivity, DELETE, "Notification email address"),
    m("Webhook added", ApiActivity, CREATE, "Notification webhook"),
    m("Webhook removed", ApiActivity, DELETE, "Notification webhook"),
    m("Webhook authentication headers added", ApiActivity, CREATE, "Webhook authentication headers"),
    m("Webhook authentication headers removed", ApiActivity, DELETE, "Webhook authentication headers"),
    m("Webhook authentication headers updated", ApiActivity, UPDATE, "Webhook authentication headers"),
    // API keys
    m("API key enabled", ApiActivity, UPDATE, "API key"),
    m("API key deleted", ApiActivity, DELETE, "API key"),
    // Secrets
    m("Secret created", ApiActivity, CREATE, "Secret"),
    m("Secret deleted", ApiActivity, DELETE, "Secret"),
    m("Secret updated", ApiActivity, UPDATE, "Secret"),
    // Integrations
    m("Integration created", ApiActivity, CREATE, "Integration"),
    m("Integration deleted", ApiActivity, DELETE, "Integration"),
    m("Integration updated", ApiActivity, UPDATE, "Integration"),
    // Custom steps
    m("Custom step created", ApiActivity, CREATE, "Custom step"),
    m("Custom step deleted", ApiActivity, DELETE, "Custom step"),
    // Runners
    m("Runner created", ApiActivity, CREATE, "Runner"),
    m("Runner deleted", ApiActivity, DELETE, "Runner"),
    // IdP connections
    m("IdP connection created", ApiActivity, CREATE, "IdP connection"),
    m("IdP connection updated", ApiActivity, UPDATE, "IdP connection"),
    m("IdP connection enabled", ApiActivity, UPDATE, "IdP connection"),
    m("IdP connection disabled", ApiActivity, UPDATE, "IdP connection"),
    // IdP claims mappings
    m("IdP claims mapping created", ApiActivity, CREATE, "IdP claims mapping"),
    m("IdP claims mapping updated", ApiActivity, UPDATE, "IdP claims mapping"),
    m("IdP claims mapping deleted", ApiActivity, DELETE, "IdP claims mapping"),
    // Cases
    m("Case Created", ApiActivity, CREATE, "Case"),
    m("Case Updated", ApiActivity, UPDATE, "Case"),
    m("Case Deleted", ApiActivity, DELETE, "Case"),
    m("Observable Created", ApiActivity, CREATE, "Observable"),
    m("Observable Updated", ApiActivity, UPDATE, "Observable"),
    m("Observable Associated with Case", ApiActivity, CREATE, "Case observable"),
    m("Observable Dissociated from Case", ApiActivity, DELETE, "Case observable"),
    m("Attachment Added to Case", ApiActivity, CREATE, "Case attachment"),
    m("Attachment Removed from Case", ApiActivity, DELETE, "Case attachment"),
    m("Workspace Configuration Updated", ApiActivity, UPDATE, "Cases configuration"),
    m("Cases Linked", ApiActivity, CREATE, "Case link"),
    m("Link Between Cases Updated", ApiActivity, UPDATE, "Case link"),
    m("Cases Unlinked", ApiActivity, DELETE, "Case link"),
    m("Case Context Updated", ApiActivity, UPDATE, "Case context"),
    m("Note Created", ApiActivity, CREATE, "Case note"),
    m("Note Updated", ApiActivity, UPDATE, "Case note"),
    m("Note Removed", ApiActivity, DELETE, "Case note"),
];

/// The action whose logons failed.
const LOGIN_FAILED: &str = "user login failed";

static EXACT: LazyLock<HashMap<&'static str, Mapping>> =
    LazyLock::new(|| MAPPING.iter().map(|m| (m.action, *m)).collect());
static BY_ACTION: LazyLock<HashMap<String, Mapping>> =
    LazyLock::new(|| MAPPING.iter().map(|m| (m.action.to_lowercase(), *m)).collect());

/// The mapping of `action`, or API Activity / Other for an action not in [`MAPPING`].
pub fn mapping(action: &str) -> Mapping {
    if let Some(m) = EXACT.get(action) {
        return *m; // the usual case, without lowercasing a copy
    }
    BY_ACTION.get(&action.trim().to_lowercase()).copied().unwrap_or(Mapping {
        action: "",
        class: ApiActivity,
        activity_id: OTHER,
        resource_type: "",
    })
}

/// One row of the table, as the mapping reads it.
#[derive(Debug, Clone, Default)]
pub struct Entry<'a> {
    pub id: &'a str,
    pub timestamp_us: i64,
    pub account_id: Option<&'a str>,
    pub account_name: Option<&'a str>,
    pub action: Option<&'a str>,
    pub actor_name: Option<&'a str>,
    pub actor_type: Option<&'a str>,
    pub email: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub resource_id: Option<&'a str>,
    pub resource_name: Option<&'a str>,
    pub scenario_id: Option<&'a str>,
    pub tags: Vec<&'a str>,
    pub revision_id: Option<&'a str>,
    /// `extra_data` as JSON text.
    pub extra_data: Option<&'a str>,
    /// Top-level fields the table has no column for, as a JSON object.
    pub extra: Option<&'a str>,
    pub ingested_at_us: Option<i64>,
}

/// An OCSF 1.1 event. Attributes absent from the source are left out, never written as null.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Event {
    /// Milliseconds since the epoch (OCSF `timestamp_t`).
    pub time: i64,
    pub class_uid: i32,
    pub class_name: &'static str,
    pub category_uid: i32,
    pub category_name: &'static str,
    pub activity_id: i32,
    pub activity_name: String,
    pub type_uid: i64,
    pub type_name: String,
    pub severity_id: i32,
    pub severity: &'static str,
    pub status_id: i32,
    pub status: &'static str,
    pub message: String,
    pub metadata: Metadata,
    /// Who acted; User Access Management has no `actor` in OCSF 1.1 (see [`event`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_endpoint: Option<Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_request: Option<HttpRequest>,
    /// Authentication: who logged in; Account Change and User Access: whose account changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    /// User Access Management's privileges.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privileges: Option<Vec<String>>,
    /// API Activity's operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<Api>,
    /// API Activity's resources: the one the action changed, with its tags as labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<Resource>>,
    /// Everything the classes have no attribute for, as text.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub unmapped: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Metadata {
    /// Torq's event id.
    pub uid: String,
    pub version: &'static str,
    pub product: Product,
    /// The Torq workspace (account) id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_uid: Option<String>,
    /// The event time as stored, RFC 3339 with microseconds.
    pub original_time: String,
    /// When auditlake ingested it (ms since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logged_time: Option<i64>,
    pub log_name: &'static str,
    pub log_provider: &'static str,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Product {
    pub name: &'static str,
    pub vendor_name: &'static str,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Actor {
    pub user: User,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct User {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub type_id: Option<i32>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Endpoint {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HttpRequest {
    pub user_agent: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Api {
    pub operation: String,
    pub service: Service,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Service {
    pub name: &'static str,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Resource {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

/// OCSF user `type_id` and `type` of a Torq `actor_type`: people are users; API keys and
/// Torq's AI analyst (no `actor_type`) are Other, named in `type`.
fn actor_kind(actor_type: Option<&str>) -> (i32, Cow<'static, str>) {
    match actor_type {
        Some("web_app") => (1, "User".into()),
        Some("api_key") => (99, "API key".into()),
        None => (99, "AI analyst".into()),
        Some(other) => (99, other.to_string().into()),
    }
}

/// OCSF's `email_t` pattern; an address that does not match goes to `unmapped`.
fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else { return false };
    let local_ok = !local.is_empty() && local.chars().all(|c| c.is_ascii_alphanumeric() || "_.+-".contains(c));
    let Some((host, rest)) = domain.split_once('.') else { return false };
    let host_ok = !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let rest_ok = !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    local_ok && host_ok && rest_ok
}

fn owned(text: Option<&str>) -> Option<String> {
    text.filter(|t| !t.is_empty()).map(str::to_string)
}

/// The OCSF event of one entry.
pub fn event(entry: &Entry) -> Event {
    let action = entry.action.unwrap_or("");
    let mapped = mapping(action);
    let class = mapped.class;
    let failed = action.trim().eq_ignore_ascii_case(LOGIN_FAILED);
    let activity_name = if mapped.activity_id == OTHER {
        if action.is_empty() { "Other".to_string() } else { action.to_string() }
    } else {
        class.activity_caption(mapped.activity_id).to_string()
    };
    let mut unmapped = BTreeMap::new();
    let mut keep = |key: &str, value: Option<&str>| {
        if let Some(v) = value {
            unmapped.insert(key.to_string(), v.to_string());
        }
    };
    keep("account_name", entry.account_name);
    keep("actor_type", entry.actor_type);
    keep("scenario_id", entry.scenario_id);
    keep("revision_id", entry.revision_id);

    let email = entry.email.filter(|e| is_email(e));
    if email.is_none() {
        keep("email", entry.email);
    }
    let ip = entry.ip.filter(|ip| ip.trim().parse::<IpAddr>().is_ok());
    if ip.is_none() {
        keep("ip", entry.ip);
    }
    let (type_id, kind) = actor_kind(entry.actor_type);
    let is_key = entry.actor_type == Some("api_key");
    // An API key's `email` is its creator's, not the key's.
    if is_key {
        keep("api_key_creator_email", entry.email);
    }
    let actor_user = User {
        uid: None,
        name: owned(entry.actor_name),
        email_addr: if is_key { None } else { email.map(str::to_string) },
        type_id: Some(type_id),
        kind: Some(kind.into_owned()),
    };

    // `extra_data` and unnamed top-level fields, one level deep; what is mapped already is
    // skipped (tags, revision_id, scenario_id).
    for (prefix, json) in [("extra_data.", entry.extra_data), ("", entry.extra)] {
        let Some(serde_json::Value::Object(map)) = json.and_then(|j| serde_json::from_str(j).ok()) else { continue };
        for (key, value) in map {
            if prefix == "extra_data." && matches!(key.as_str(), "tags" | "revision_id" | "scenario_id") {
                continue;
            }
            let text = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => continue,
                other => other.to_string(),
            };
            unmapped.insert(format!("{prefix}{key}"), text);
        }
    }

    let tags: Vec<String> = entry.tags.iter().map(|t| t.to_string()).collect();
    let target = || User { uid: owned(entry.resource_id), name: owned(entry.resource_name), ..User::default() };
    let (user, privileges, api, resources) = match class {
        Authentication => (Some(actor_user.clone()), None, None, None),
        AccountChange => (Some(target()), None, None, None),
        UserAccess => {
            // Torq does not say which role; a role named in extra_data is kept, else the privilege is "role".
            let role = unmapped.get("extra_data.role").or_else(|| unmapped.get("extra_data.new_role")).cloned();
            (Some(target()), Some(vec![role.unwrap_or_else(|| "role".to_string())]), None, None)
        }
        ApiActivity => {
            let resource =
                (entry.resource_id.is_some() || entry.resource_name.is_some() || !tags.is_empty()).then(|| {
                    vec![Resource {
                        uid: owned(entry.resource_id),
                        name: owned(entry.resource_name),
                        kind: (!mapped.resource_type.is_empty()).then(|| mapped.resource_type.to_string()),
                        labels: tags.clone(),
                    }]
                });
            let api = Api { operation: action.to_string(), service: Service { name: "Torq" } };
            (None, None, Some(api), resource)
        }
    };
    if class != ApiActivity && !tags.is_empty() {
        unmapped.insert("tags".into(), serde_json::to_string(&tags).expect("strings serialise"));
    }
    let src_endpoint = Endpoint {
        ip: ip.map(|i| i.trim().to_string()),
        // Torq's AI analyst acts inside Torq; it sends no address.
        name: (ip.is_none() && entry.actor_type.is_none()).then(|| "Torq".to_string()),
    };
    let http_request = owned(entry.user_agent).map(|user_agent| HttpRequest { user_agent });
    let (actor, src_endpoint, http_request) = if class == UserAccess {
        // OCSF 1.1's User Access Management has no actor, source or request: they are kept under
        // `unmapped`, named by the attribute paths the other classes use.
        let fields = [
            ("actor.user.name", actor_user.name.clone()),
            ("actor.user.email_addr", actor_user.email_addr.clone()),
            ("actor.user.type", actor_user.kind.clone()),
            ("src_endpoint.ip", src_endpoint.ip),
            ("http_request.user_agent", http_request.map(|h| h.user_agent)),
        ];
        for (key, value) in fields {
            if let Some(v) = value {
                unmapped.insert(key.to_string(), v);
            }
        }
        (None, None, None)
    } else {
        (Some(Actor { user: actor_user }), Some(src_endpoint), http_request)
    };
    let message = match entry.resource_name.filter(|n| !n.is_empty()) {
        Some(name) => format!("{action}: {name}"),
        None => action.to_string(),
    };
    Event {
        time: entry.timestamp_us.div_euclid(1000),
        class_uid: class.uid(),
        class_name: class.caption(),
        category_uid: class.category_uid(),
        category_name: class.category_name(),
        activity_id: mapped.activity_id,
        type_uid: i64::from(class.uid()) * 100 + i64::from(mapped.activity_id),
        type_name: format!("{}: {}", class.caption(), class.activity_caption(mapped.activity_id)),
        activity_name,
        severity_id: 1,
        severity: "Informational",
        status_id: if failed { 2 } else { 1 },
        status: if failed { "Failure" } else { "Success" },
        message,
        metadata: Metadata {
            uid: entry.id.to_string(),
            version: OCSF_VERSION,
            product: Product { name: "Torq", vendor_name: "Torq" },
            tenant_uid: owned(entry.account_id),
            original_time: crate::time::rfc3339_us(entry.timestamp_us),
            logged_time: entry.ingested_at_us.map(|t| t.div_euclid(1000)),
            log_name: "audit_log",
            log_provider: "auditlake",
        },
        actor,
        src_endpoint,
        http_request,
        user,
        privileges,
        api,
        resources,
        unmapped,
    }
}

/// The Parquet (Arrow) schema of a class's events: the fields [`Event`] writes for it.
pub fn arrow_schema(class: Class) -> SchemaRef {
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    let int = |name: &str| Field::new(name, DataType::Int32, true);
    let long = |name: &str| Field::new(name, DataType::Int64, true);
    let object = |name: &str, fields: Vec<Field>| Field::new(name, DataType::Struct(Fields::from(fields)), true);
    let list = |name: &str, item: DataType| {
        Field::new(name, DataType::List(Arc::new(Field::new("element", item, true))), true)
    };
    let user =
        |name: &str| object(name, vec![text("uid"), text("name"), text("email_addr"), int("type_id"), text("type")]);
    let mut fields = vec![
        long("time"),
        int("class_uid"),
        text("class_name"),
        int("category_uid"),
        text("category_name"),
        int("activity_id"),
        text("activity_name"),
        long("type_uid"),
        text("type_name"),
        int("severity_id"),
        text("severity"),
        int("status_id"),
        text("status"),
        text("message"),
        object(
            "metadata",
            vec![
                text("uid"),
                text("version"),
                object("product", vec![text("name"), text("vendor_name")]),
                text("tenant_uid"),
                text("original_time"),
                long("logged_time"),
                text("log_name"),
                text("log_provider"),
            ],
        ),
    ];
    if class != UserAccess {
        fields.push(object("actor", vec![user("user")]));
        fields.push(object("src_endpoint", vec![text("ip"), text("name")]));
        fields.push(object("http_request", vec![text("user_agent")]));
    }
    match class {
        Authentication | AccountChange => fields.push(user("user")),
        UserAccess => {
            fields.push(user("user"));
            fields.push(list("privileges", DataType::Utf8));
        }
        ApiActivity => {
            fields.push(object("api", vec![text("operation"), object("service", vec![text("name")])]));
            let resource = DataType::Struct(Fields::from(vec![
                text("uid"),
                text("name"),
                text("type"),
                list("labels", DataType::Utf8),
            ]));
            fields.push(list("resources", resource));
        }
    }
    let entries = Field::new(
        "key_value",
        DataType::Struct(Fields::from(vec![Field::new("key", DataType::Utf8, false), text("value")])),
        false,
    );
    fields.push(Field::new("unmapped", DataType::Map(Arc::new(entries), false), true));
    Arc::new(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_mapped_once_and_type_uid_is_class_times_100_plus_activity() {
        let mut seen = std::collections::HashSet::new();
        for m in MAPPING {
            assert!(seen.insert(m.action.to_lowercase()), "{} twice", m.action);
            let e = event(&Entry { id: "x", action: Some(m.action), ..Entry::default() });
            assert_eq!(e.class_uid, m.class.uid());
            assert_eq!(e.type_uid, i64::from(m.class.uid()) * 100 + i64::from(m.activity_id));
            assert_ne!(e.activity_name, "Other", "{}: a mapped action names its activity", m.action);
        }
    }

    #[test]
    fn the_readme_table_says_what_mapping_does() {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
        // API Activity rows list the verbs of each activity in italics.
        let verbs = |activity: &str| -> Vec<String> {
            let row = readme
                .lines()
                .find(|l| l.contains("| API Activity (6003) |") && l.ends_with(&format!("| {activity} |")))
                .unwrap_or_else(|| panic!("README has no API Activity row for {activity}"));
            let listed = row.split('*').nth(1).expect("verbs in italics");
            listed.split(", ").map(str::to_lowercase).collect()
        };
        let by_verb = [(CREATE, verbs("1 Create")), (UPDATE, verbs("3 Update")), (DELETE, verbs("4 Delete"))];
        for m in MAPPING {
            if m.class == ApiActivity {
                let action = m.action.to_lowercase();
                let stated: Vec<i32> = by_verb
                    .iter()
                    .filter(|(_, vs)| vs.iter().any(|v| action.ends_with(v.as_str())))
                    .map(|(a, _)| *a)
                    .collect();
                assert_eq!(stated, vec![m.activity_id], "{}: README verbs vs code", m.action);
            } else {
                let row = format!(
                    "| {} | {} ({}) | {} {}",
                    m.action,
                    m.class.caption(),
                    m.class.uid(),
                    m.activity_id,
                    m.class.activity_caption(m.activity_id)
                );
                assert!(readme.contains(&row), "README lacks {row}");
            }
        }
    }

    #[test]
    fn an_unknown_action_is_api_activity_other_named_by_the_action() {
        let e = event(&Entry { id: "x", action: Some("Dashboard exported"), ..Entry::default() });
        assert_eq!((e.class_uid, e.activity_id, e.type_uid), (6003, 99, 600399));
        assert_eq!(e.activity_name, "Dashboard exported");
        assert_eq!(e.api.unwrap().operation, "Dashboard exported");
    }

    #[test]
    fn matching_ignores_case_and_failed_logins_fail() {
        let e = event(&Entry { id: "x", action: Some("user LOGIN failed"), ..Entry::default() });
        assert_eq!((e.class_uid, e.activity_id, e.status_id, e.status), (3002, 1, 2, "Failure"));
    }

    #[test]
    fn bad_addresses_and_emails_are_kept_unmapped() {
        let e = event(&Entry {
            id: "x",
            action: Some("Secret created"),
            ip: Some("77.***.***.237"),
            email: Some("not an email"),
            actor_type: Some("web_app"),
            ..Entry::default()
        });
        assert_eq!(e.src_endpoint, Some(Endpoint::default()));
        assert_eq!(e.unmapped["ip"], "77.***.***.237");
        assert_eq!(e.unmapped["email"], "not an email");
        assert_eq!(e.actor.unwrap().user.email_addr, None);
        assert!(is_email("mrs.actor@torqy.io") && !is_email("a@b") && !is_email("@b.io"));
    }
}
