#!/usr/bin/env python3
"""Writes sample-data/: small Torq-shaped batches in every input format auditlake reads.

The files are committed; rerun this only to change them. Deterministic (fixed seed).
Covers every action family of Torq's list, case activity with scenario ids (top level and in
extra_data), API-key and AI-analyst actors, trailing spaces, offsets crossing midnight, numeric
case ids, unknown fields, nulls, re-deliveries across files, and malformed records.
"""
import gzip
import json
import random
import uuid
from pathlib import Path

random.seed(7)
OUT = Path(__file__).resolve().parent.parent / "sample-data"
ACCOUNTS = [("1d8a5f2e-0c1b-4f2a-9e77-3b5c2fe50a57", "acme-secops"),
            ("7f3e9c1d-2b4a-4e8f-8d6c-5a1b0c9d8e7f", "acme-dev")]
PEOPLE = [("Mrs. Actor ", "mrs.actor@torqy.io"), ("Dana Levi", "dana.levi@acme.example"),
          ("Avi Cohen", "avi.cohen@acme.example"), ("Noa Katz", "noa.katz@acme.example")]
KEYS = [("ci-deployer", "dana.levi@acme.example"), ("siem-export", "avi.cohen@acme.example")]
UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
WORKFLOWS = [("a0f5b2c1-1111-4a1a-9b9b-7d91d38aa001", "Audit log (step)", ["tag1", "tag2", "tag3"]),
             ("a0f5b2c1-2222-4a1a-9b9b-7d91d38aa002", "Phishing triage", ["phishing", "prod"]),
             ("a0f5b2c1-3333-4a1a-9b9b-7d91d38aa003", "Offboard user", [])]

FAMILIES = {
    "users": ["User invited", "User accepted invitation", "User role updated", "User deleted",
              "User logged in", "User logged out", "User switched accounts"],
    "workflows": ["Workflow " + v for v in ["created", "deleted", "updated", "published", "unpublished",
                                             "edited", "reverted", "enabled", "disabled"]],
    "variables": ["Workspace variable created", "Workspace variable updated", "Workspace variable deleted"],
    "notifications": ["Email address added", "Email address removed", "Webhook added", "Webhook removed",
                      "Webhook authentication headers added", "Webhook authentication headers removed",
                      "Webhook authentication headers updated"],
    "api_keys": ["API key enabled", "API key deleted"],
    "secrets": ["Secret created", "Secret deleted", "Secret updated"],
    "integrations": ["Integration created", "Integration deleted", "Integration updated"],
    "custom_steps": ["Custom step created", "Custom step deleted"],
    "runners": ["Runner created", "Runner deleted"],
    "idp": ["IdP connection created", "IdP connection updated", "IdP connection enabled",
            "IdP connection disabled", "IdP claims mapping created", "IdP claims mapping updated",
            "IdP claims mapping deleted"],
    "sso": ["User login failed"],
}
CASE_ACTIONS = ["Case Created", "Case Updated", "Case Deleted", "Observable Created", "Observable Updated",
                "Observable Associated with Case", "Observable Dissociated from Case",
                "Attachment Added to Case", "Attachment Removed from Case",
                "Workspace Configuration Updated", "Cases Linked", "Link Between Cases Updated",
                "Cases Unlinked", "Case Context Updated", "Note Created", "Note Updated", "Note Removed"]
SCENARIOS = ["ASSOCIATED_OBSERVABLE_CREATED", "ATTACHMENT_CREATED", "CASE_ASSIGNEE_UPDATED",
             "CASE_CATEGORY_UPDATED", "CASE_CREATED", "CASE_EVENT_UPDATED", "CASE_SEVERITY_UPDATED",
             "CASE_STATE_UPDATED", "CASE_TAGS_UPDATED", "CASE_UPDATED", "CASE_VIEW_CHANGED",
             "COMMENT_CREATED", "CUSTOM_FIELD_UPDATED", "LINK_UPDATED", "NOTE_UPDATED",
             "OBSERVABLE_CREATED", "OBSERVABLE_UPDATED", "REQUEST_FOR_REVIEW",
             "SHARE_REQUEST_CREATED", "STEP_FAILURE", "USER_MENTIONED", "WORKFLOW_FAILURE"]


def uid():
    return str(uuid.UUID(int=random.getrandbits(128), version=4))


def ts(day, sec, offset="Z"):
    h, rem = divmod(sec, 3600)
    m, s = divmod(rem, 60)
    frac = random.randrange(1_000_000)
    return f"2026-09-{day:02d}T{h:02d}:{m:02d}:{s:02d}.{frac:06d}{offset}"


def base(action, day, sec, actor=None, account=None):
    acc = account or random.choice(ACCOUNTS)
    name, email = actor or random.choice(PEOPLE)
    return {"account_id": acc[0], "account_name": acc[1], "action": action, "actor_name": name,
            "actor_type": "web_app", "email": email, "id": uid(),
            "ip": f"77.{random.randrange(1, 255)}.{random.randrange(255)}.237",
            "resource_id": uid(), "resource_name": action.split(" ")[0] + " resource",
            "timestamp": ts(day, sec), "user_agent": UA}


def audit_entries():
    out = []
    day, sec = 1, 8 * 3600
    for family, actions in FAMILIES.items():
        for action in actions:
            e = base(action, day, sec)
            if family == "workflows":
                wid, wname, tags = random.choice(WORKFLOWS)
                e["resource_id"], e["resource_name"] = wid, wname
                e["extra_data"] = {"revision_id": uid()}
                if tags:
                    e["extra_data"]["tags"] = tags
            if family == "users" and action != "User logged in":
                e["resource_name"] = random.choice(PEOPLE)[1]
            if family in ("secrets", "variables", "api_keys", "integrations") and len(out) % 2 == 0:
                key = KEYS[(len(out) // 2) % len(KEYS)]
                e["actor_type"], e["actor_name"], e["email"] = "api_key", key[0], key[1]
            out.append(e)
            sec += random.randrange(1800, 7200)
            if sec > 20 * 3600:
                day, sec = day + 1, 8 * 3600
    # A burst of failed logins from one IP.
    for i in range(6):
        e = base("User login failed", 3, 2 * 3600 + i * 20, actor=("Noa Katz", "noa.katz@acme.example"))
        e["ip"] = "203.0.113.66"
        out.append(e)
    return out


def case_entries():
    out = []
    for i, action in enumerate(CASE_ACTIONS * 2):
        day = 4 + i // 12
        e = base(action, day, 9 * 3600 + i * 600)
        e["resource_id"] = str(1000 + i % 7)  # cases use numbers
        e["resource_name"] = f"Case #{e['resource_id']}"
        scenario = SCENARIOS[i % len(SCENARIOS)]
        extra = {"scenario_id": scenario}
        if action.startswith("Cases") or action.startswith("Link"):
            extra["linked_case_id"] = str(2000 + i)
        if i % 3 == 0:
            extra["requesting_actor"] = json.dumps({"type": "user", "email": e["email"]})
        if i % 2 == 0:
            e["scenario_id"] = scenario  # top level on some, extra_data only on others
        e["extra_data"] = extra
        if i % 5 == 0:  # Torq's AI analyst: no actor_type, ip or user_agent
            for k in ("actor_type", "ip", "user_agent"):
                e.pop(k)
            e["actor_name"], e["email"] = "Socrates", "socrates@torq.io"
        out.append(e)
    return out


def awkward_entries():
    """Valid but unusual records."""
    e1 = base("Workflow published", 9, 23 * 3600 + 1800)
    e1["timestamp"] = "2026-09-10T01:30:00.123456789+02:00"  # nanoseconds; UTC date is 09-09
    e1["extra_data"] = {"revision_id": uid(), "tags": ["prod", "edr"]}
    e2 = base("Secret updated", 10, 0)
    e2["timestamp"] = "2026-09-09T21:15:00-05:00"  # UTC date is 09-10
    e3 = base("Case Updated", 10, 3600)
    e3["resource_id"] = 4711  # a number, kept as its text
    e3["extra_data"] = {"scenario_id": "CASE_SEVERITY_UPDATED", "linked_case_id": "4712"}
    e4 = base("User logged in", 10, 7200)
    e4["ip"] = None
    e4["user_agent"] = None
    e4["new_field_from_torq"] = {"region": "eu", "sso": True}  # unknown: kept in `extra`
    e5 = base("Integration updated", 10, 9000, actor=("Avi Cohen   ", "avi.cohen@acme.example"))
    e6 = base("Workflow updated", 10, 9500)
    e6["actor_name"] = "<script>alert('x')</script>"
    e6["resource_name"] = "=HYPERLINK(\"http://evil.example\",\"click\")"
    e6["extra_data"] = {"revision_id": uid(), "tags": ["évasion", "tag with space"]}
    return [e1, e2, e3, e4, e5, e6]


MALFORMED = [
    '{"action": "Secret created", "timestamp": "2026-09-11T10:00:00Z", "email": "no-id@acme.example"}',
    '{"id": "bad-ts-1", "action": "Secret created", "timestamp": "last tuesday"}',
    '{"id": "bad-ts-2", "action": "Secret created", "timestamp": "2026-09-11T10:00:00"}',
    '{"id": "no-ts", "action": "Secret created"}',
    '{"id": "wrong-type", "timestamp": "2026-09-11T10:00:00Z", "email": {"address": "x@y"}}',
    '["not", "an", "object"]',
    '{"id": "truncated", "timestamp": "2026-09-11T10:00:00Z", "action": "Wor',
]


def write_json(path, obj):
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def main():
    OUT.mkdir(exist_ok=True)
    audit = audit_entries()
    cases = case_entries()
    awkward = awkward_entries()
    # 1. A JSON array, as the "Collect Torq audit logs" template returns.
    write_json(OUT / "audit-2026-09-array.json", audit[:40])
    # 2. Two Torq API pages, pretty-printed.
    write_json(OUT / "api-page-1.json", {"audit_logs": audit[40:], "next_page_token": "eyJwYWdlIjoyfQ=="})
    write_json(OUT / "api-page-2.json", {"audit_logs": awkward, "next_page_token": ""})
    # 3. NDJSON of case activity.
    (OUT / "cases.ndjson").write_text("".join(json.dumps(e) + "\n" for e in cases))
    # 4. gzip NDJSON re-delivering an overlapping window (every entry here is a duplicate)
    #    under a name that does not say gzip.
    redelivered = audit[30:45] + cases[:10]
    with gzip.open(OUT / "redelivery-overlap.ndjson.gz", "wt") as f:
        f.write("".join(json.dumps(e) + "\n" for e in redelivered))
    # 5. Malformed records mixed with good ones: the good ones are ingested.
    good = [base("Runner created", 11, 3600 * 9), base("Runner deleted", 11, 3600 * 10)]
    lines = [json.dumps(good[0])] + MALFORMED + [json.dumps(good[1])]
    (OUT / "malformed" ).mkdir(exist_ok=True)
    (OUT / "malformed" / "mixed.ndjson").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
