-- Sign-ins, sign-outs, account switches and failures
-- Each authentication action, the users and addresses involved.
SELECT action, count(*) AS events, count(DISTINCT email) AS users, count(DISTINCT ip) AS ips
FROM events
WHERE action IN ('User logged in', 'User logged out', 'User switched accounts', 'User login failed')
GROUP BY action
ORDER BY events DESC, action
