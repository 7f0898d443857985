-- Events per action family
-- Torq's action families (users, workflows, secrets, cases, ...) and how many events each had.
SELECT CASE
         WHEN action = 'User login failed' THEN 'SSO'
         WHEN action LIKE 'User %' THEN 'Users'
         WHEN action LIKE 'Workflow %' THEN 'Workflows'
         WHEN action LIKE 'Workspace variable %' THEN 'Workspace variables'
         WHEN action LIKE 'Email address %' OR action LIKE 'Webhook %' THEN 'Workflow notifications'
         WHEN action LIKE 'API key %' THEN 'API keys'
         WHEN action LIKE 'Secret %' THEN 'Secrets'
         WHEN action LIKE 'Integration %' THEN 'Integrations'
         WHEN action LIKE 'Custom step %' THEN 'Custom steps'
         WHEN action LIKE 'Runner %' THEN 'Runners'
         WHEN action LIKE 'IdP connection %' THEN 'IdP connections'
         WHEN action LIKE 'IdP claims mapping %' THEN 'IdP claims mappings'
         WHEN action LIKE 'Case %' OR action LIKE 'Cases %' OR action LIKE 'Observable %'
           OR action LIKE 'Attachment %' OR action LIKE 'Note %' OR action LIKE 'Link Between Cases %'
           OR action = 'Workspace Configuration Updated' THEN 'Cases'
         ELSE 'Other'
       END AS family,
       count(*) AS events
FROM events
GROUP BY 1
ORDER BY events DESC, family
