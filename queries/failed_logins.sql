-- Failed SSO logins per email and IP, most first.
SELECT email, ip, count(*) AS failures, min(timestamp) AS first_failure, max(timestamp) AS last_failure
FROM audit_log
WHERE action = 'User login failed'
GROUP BY email, ip
ORDER BY failures DESC, email, ip
