-- Activity per tag
-- Events per tag (an event with several tags counts once for each), and the resources behind them.
SELECT tag, count(*) AS events, count(DISTINCT resource_id) AS resources
FROM (SELECT unnest(tags) AS tag, resource_id FROM events WHERE tags IS NOT NULL)
GROUP BY tag
ORDER BY events DESC, tag
