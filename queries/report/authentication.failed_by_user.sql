-- Failed logins per user
-- Every failed SSO login, grouped by the email it was attempted for.
SELECT email, count(*) AS failures, count(DISTINCT ip) AS ips,
       min(timestamp) AS first_failure, max(timestamp) AS last_failure
FROM events
WHERE action = 'User login failed'
GROUP BY email
ORDER BY failures DESC, email
