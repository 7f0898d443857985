-- Changes to API keys, secrets, workspace variables, webhook auth headers, integrations and IdP.
SELECT timestamp, action, actor_name, actor_type, email, resource_name, account_name
FROM audit_log
WHERE action LIKE 'API key %' OR action LIKE 'Secret %' OR action LIKE 'Workspace variable %'
   OR action LIKE 'Webhook authentication headers %' OR action LIKE 'Integration %'
   OR action LIKE 'IdP %'
ORDER BY timestamp, id
