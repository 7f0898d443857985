-- Off-hours changes per actor
-- Who makes changes outside business hours, and how often.
SELECT actor_name, email AS actor_email, actor_type, count(*) AS events,
       count(DISTINCT local_date) AS days
FROM events
WHERE off_hours AND administrative
GROUP BY actor_name, email, actor_type
ORDER BY events DESC, actor_name, actor_email
