-- Actors by number of events
-- Every actor in the period, busiest first.
SELECT actor_name, email AS actor_email, actor_type, count(*) AS events, count(DISTINCT action) AS actions,
       min(timestamp) AS first_event, max(timestamp) AS last_event
FROM events
GROUP BY actor_name, email, actor_type
ORDER BY events DESC, actor_name, actor_email, actor_type
