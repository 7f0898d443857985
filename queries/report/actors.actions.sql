-- Actions per actor
-- What each actor did, and how often.
SELECT actor_name, email AS actor_email, action, count(*) AS events
FROM events
GROUP BY actor_name, email, action
ORDER BY actor_name, actor_email, events DESC, action
