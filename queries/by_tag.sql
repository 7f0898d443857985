-- Events per workflow tag (an event with several tags counts once for each).
SELECT tag, count(*) AS events, count(DISTINCT resource_id) AS workflows
FROM (SELECT unnest(tags) AS tag, resource_id FROM audit_log WHERE tags IS NOT NULL)
GROUP BY tag
ORDER BY events DESC, tag
