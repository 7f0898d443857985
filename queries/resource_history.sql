-- Every change to one resource (workflow, case, secret ...), in order. Needs --param resource=ID.
SELECT timestamp, action, actor_name, email, revision_id, scenario_id, resource_name
FROM audit_log
WHERE resource_id = $resource
ORDER BY timestamp, id
