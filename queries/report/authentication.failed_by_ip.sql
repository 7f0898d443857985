-- Failed logins per address
-- Every failed SSO login, grouped by client IP: one address failing for many users suggests spraying.
SELECT ip, count(*) AS failures, count(DISTINCT email) AS users,
       min(timestamp) AS first_failure, max(timestamp) AS last_failure
FROM events
WHERE action = 'User login failed'
GROUP BY ip
ORDER BY failures DESC, ip
