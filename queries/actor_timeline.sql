-- Everything one person or key did, in order. Needs --param email=ADDRESS.
SELECT timestamp, action, actor_name, actor_type, ip, resource_id, resource_name, account_name
FROM audit_log
WHERE lower(email) = lower($email)
ORDER BY timestamp, id
