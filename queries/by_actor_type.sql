-- Events per actor type: web_app (people), api_key, or none (Torq's AI analyst).
SELECT coalesce(actor_type, '(none)') AS actor_type, count(*) AS events,
       count(DISTINCT actor_name) AS actors
FROM audit_log
GROUP BY 1
ORDER BY events DESC, actor_type
