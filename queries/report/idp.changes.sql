-- Identity provider connections and claims mappings
-- Every change to how people sign in and which roles their IdP claims grant.
SELECT timestamp, action, resource_name AS resource, actor_name, actor_type, email AS actor_email, ip,
       account_name AS workspace
FROM events
WHERE action LIKE 'IdP connection %' OR action LIKE 'IdP claims mapping %'
ORDER BY timestamp, id
