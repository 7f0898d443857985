-- Events per actor (name, type and email), most active first.
SELECT actor_name, actor_type, email, count(*) AS events,
       min(timestamp) AS first_seen, max(timestamp) AS last_seen
FROM audit_log
GROUP BY actor_name, actor_type, email
ORDER BY events DESC, actor_name, email
