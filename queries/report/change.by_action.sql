-- Workflow changes per action
-- How many workflows were created, edited, published, reverted, disabled or deleted, and by how many people.
SELECT action, count(*) AS events, count(DISTINCT resource_id) AS workflows,
       count(DISTINCT coalesce(email, actor_name)) AS actors
FROM events
WHERE action LIKE 'Workflow %'
GROUP BY action
ORDER BY events DESC, action
