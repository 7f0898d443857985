-- events
SELECT count(*) AS events FROM events WHERE scenario_id IS NOT NULL
