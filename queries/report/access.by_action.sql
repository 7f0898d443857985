-- Changes per action
-- How many of each provisioning change, and by how many different actors.
SELECT action, count(*) AS events, count(DISTINCT coalesce(email, actor_name)) AS actors
FROM events
WHERE action IN ('User invited', 'User accepted invitation', 'User role updated', 'User deleted')
GROUP BY action
ORDER BY events DESC, action
