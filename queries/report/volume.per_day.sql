-- Events per day
-- Every day of the period in the report's time zone. Torq records every change as it happens, so a
-- day with no events at all is flagged: collection may have stopped.
SELECT d.local_date AS day,
       coalesce(c.events, 0) AS events,
       coalesce(c.workspaces, 0) AS workspaces,
       CASE WHEN c.events IS NULL THEN 'no events: possible collection gap' ELSE '' END AS flag
FROM report_days d
LEFT JOIN (SELECT local_date, count(*) AS events, count(DISTINCT account_id) AS workspaces
           FROM events GROUP BY local_date) c
  ON d.local_date = c.local_date
ORDER BY day
