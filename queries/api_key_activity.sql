-- What each API key did: actions per key (actor_name is the key's name, email its creator).
SELECT actor_name AS api_key, email AS created_by, action, count(*) AS events, max(timestamp) AS last_used
FROM audit_log
WHERE actor_type = 'api_key'
GROUP BY actor_name, email, action
ORDER BY api_key, events DESC, action
