-- API keys, secrets, workspace variables, webhook authentication headers and integrations
-- Every change to a credential or to where credentials are kept: what, by whom, when, from where.
SELECT timestamp, action, resource_name AS resource, actor_name, actor_type, email AS actor_email, ip,
       account_name AS workspace
FROM events
WHERE action LIKE 'API key %' OR action LIKE 'Secret %' OR action LIKE 'Workspace variable %'
   OR action LIKE 'Webhook authentication headers %' OR action LIKE 'Integration %'
ORDER BY timestamp, id
