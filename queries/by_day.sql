-- Events per UTC day, with distinct actors and actions.
SELECT date, count(*) AS events, count(DISTINCT email) AS actors, count(DISTINCT action) AS actions
FROM audit_log
GROUP BY date
ORDER BY date
