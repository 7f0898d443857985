-- Bursts of failed logins
-- Users and addresses with at least --burst-failures failed logins within --burst-minutes; the
-- busiest such window of each is shown.
WITH failures AS (
  SELECT 'user' AS kind, email AS who, timestamp FROM events WHERE action = 'User login failed' AND email IS NOT NULL
  UNION ALL
  SELECT 'ip' AS kind, ip AS who, timestamp FROM events WHERE action = 'User login failed' AND ip IS NOT NULL
),
windows AS (
  SELECT a.kind, a.who, a.timestamp AS window_start, max(b.timestamp) AS window_end, count(*) AS failures
  FROM failures a
  JOIN failures b ON a.kind = b.kind AND a.who = b.who AND b.timestamp >= a.timestamp
  CROSS JOIN report_params p
  WHERE date_part('epoch', b.timestamp) - date_part('epoch', a.timestamp) < p.burst_minutes * 60
  GROUP BY a.kind, a.who, a.timestamp
),
ranked AS (
  SELECT w.*, row_number() OVER (PARTITION BY kind, who ORDER BY failures DESC, window_start) AS busiest
  FROM windows w
)
SELECT r.kind, r.who, r.failures, r.window_start, r.window_end
FROM ranked r CROSS JOIN report_params p
WHERE r.busiest = 1 AND r.failures >= p.burst_failures
ORDER BY r.failures DESC, r.kind, r.who
