-- Events per workspace
-- Each workspace's events, first and last event, and on how many days of the period it logged anything.
SELECT account_name AS workspace, account_id, count(*) AS events,
       count(DISTINCT local_date) AS days_with_events,
       min(timestamp) AS first_event, max(timestamp) AS last_event
FROM events
GROUP BY account_name, account_id
ORDER BY events DESC, workspace, account_id
