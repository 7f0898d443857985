-- Case events per scenario_id.
SELECT scenario_id, count(*) AS events, count(DISTINCT resource_id) AS cases
FROM audit_log
WHERE scenario_id IS NOT NULL
GROUP BY scenario_id
ORDER BY events DESC, scenario_id
