-- changes
SELECT count(*) AS changes FROM events
WHERE action LIKE 'API key %' OR action LIKE 'Secret %' OR action LIKE 'Workspace variable %'
   OR action LIKE 'Webhook authentication headers %' OR action LIKE 'Integration %'
