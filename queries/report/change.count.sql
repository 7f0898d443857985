-- changes
SELECT count(*) AS changes FROM events
WHERE action LIKE 'Workflow %' OR action LIKE 'Custom step %' OR action LIKE 'Runner %'
