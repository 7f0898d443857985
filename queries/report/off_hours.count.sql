-- events
SELECT count(*) AS events FROM events WHERE off_hours AND administrative
