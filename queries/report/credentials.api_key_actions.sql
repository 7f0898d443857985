-- What each API key did
-- Actions taken with API keys: the key's name, the person who created it, and each action it took.
SELECT actor_name AS api_key, email AS created_by, action, count(*) AS events,
       min(timestamp) AS first_event, max(timestamp) AS last_event
FROM events
WHERE actor_type = 'api_key'
GROUP BY actor_name, email, action
ORDER BY api_key, created_by, events DESC, action
