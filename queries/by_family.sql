-- Events per action family (users, workflows, secrets, cases, ...), as Torq groups its actions.
SELECT action_family(action) AS family,
       count(*) AS events
FROM audit_log
GROUP BY 1
ORDER BY events DESC, family
