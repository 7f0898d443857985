-- Administrative changes outside business hours
-- Changes (not sign-ins and not case work) made on a weekend or outside --business-hours, in the
-- report's time zone.
SELECT local_time, to_char(local_time, '%A') AS weekday, action, resource_name AS resource,
       actor_name, actor_type, email AS actor_email, ip, account_name AS workspace
FROM events
WHERE off_hours AND administrative
ORDER BY timestamp, id
