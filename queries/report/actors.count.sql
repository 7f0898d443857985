-- actors
SELECT count(*) AS actors FROM (SELECT DISTINCT actor_name, email, actor_type FROM events)
