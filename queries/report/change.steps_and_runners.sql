-- Custom steps and runners
-- Code and execution infrastructure added to or removed from the workspace.
SELECT timestamp, action, resource_name AS resource, actor_name, actor_type, email AS actor_email,
       account_name AS workspace
FROM events
WHERE action LIKE 'Custom step %' OR action LIKE 'Runner %'
ORDER BY timestamp, id
