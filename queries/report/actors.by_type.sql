-- Events per actor type
-- People in the web app, API keys, and Torq's AI analyst (which logs no actor type).
SELECT CASE WHEN actor_type IS NULL THEN 'none (AI analyst)' ELSE actor_type END AS actor_type,
       count(*) AS events, count(DISTINCT coalesce(email, actor_name)) AS actors
FROM events
GROUP BY 1
ORDER BY events DESC, actor_type
