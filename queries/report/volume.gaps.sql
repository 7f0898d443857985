-- Silences longer than the gap threshold
-- Stretches of the period (its start and end included) with no event at all for longer than
-- --gap-hours. Quiet nights are normal for a small workspace; a silence of days is worth explaining.
WITH points AS (
  SELECT timestamp AS t FROM events
  UNION ALL SELECT period_start FROM report_params
  UNION ALL SELECT period_end FROM report_params
),
steps AS (
  SELECT lag(t) OVER (ORDER BY t) AS silent_from, t AS silent_until FROM points
)
SELECT s.silent_from, s.silent_until,
       round((date_part('epoch', s.silent_until) - date_part('epoch', s.silent_from)) / 3600.0, 1) AS hours
FROM steps s CROSS JOIN report_params p
WHERE s.silent_from IS NOT NULL
  AND date_part('epoch', s.silent_until) - date_part('epoch', s.silent_from) > p.gap_hours * 3600
ORDER BY s.silent_from
