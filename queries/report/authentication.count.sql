-- events
SELECT count(*) AS events FROM events
WHERE action IN ('User logged in', 'User logged out', 'User switched accounts', 'User login failed')
