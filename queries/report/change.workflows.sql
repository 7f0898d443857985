-- Workflow changes
-- Every workflow change with its revision id and tags, so a published revision can be traced to who made it.
SELECT timestamp, action, resource_name AS workflow, resource_id AS workflow_id, revision_id,
       array_to_string(tags, ', ') AS tags, actor_name, actor_type, email AS actor_email,
       account_name AS workspace
FROM events
WHERE action LIKE 'Workflow %'
ORDER BY timestamp, id
