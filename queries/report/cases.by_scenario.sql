-- Case activity per scenario_id
-- Case events by Torq's scenario_id, with how many cases each touched.
SELECT scenario_id, count(*) AS events, count(DISTINCT resource_id) AS cases,
       min(timestamp) AS first_event, max(timestamp) AS last_event
FROM events
WHERE scenario_id IS NOT NULL
GROUP BY scenario_id
ORDER BY events DESC, scenario_id
