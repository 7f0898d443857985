-- Events per action, most frequent first.
SELECT action, count(*) AS events
FROM audit_log
GROUP BY action
ORDER BY events DESC, action
