-- Events per action family
-- Torq's action families (users, workflows, secrets, cases, ...) and how many events each had.
SELECT action_family(action) AS family,
       count(*) AS events
FROM events
GROUP BY 1
ORDER BY events DESC, family
