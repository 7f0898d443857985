-- Addresses seen for the first time per user
-- Client IPs a person used in this period that the lake holds no earlier event of, for that person.
-- Against a short history most addresses are new; the lake's retention bounds how far back it looks.
SELECT e.email, e.ip, min(e.timestamp) AS first_seen, count(*) AS events
FROM events e
LEFT JOIN (SELECT DISTINCT email, ip FROM before_period WHERE ip IS NOT NULL AND email IS NOT NULL) b
  ON e.email = b.email AND e.ip = b.ip
WHERE e.actor_type = 'web_app' AND e.ip IS NOT NULL AND e.email IS NOT NULL AND b.ip IS NULL
GROUP BY e.email, e.ip
ORDER BY first_seen, e.email, e.ip
