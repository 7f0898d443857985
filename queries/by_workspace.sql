-- Events per workspace (account).
SELECT account_name, account_id, count(*) AS events, min(timestamp) AS first_event, max(timestamp) AS last_event
FROM audit_log
GROUP BY account_name, account_id
ORDER BY events DESC, account_name
