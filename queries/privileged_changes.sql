-- User provisioning and role changes: who invited, changed or removed whom, when and from where.
SELECT timestamp, action, actor_name, email, ip, resource_name, account_name
FROM audit_log
WHERE action IN ('User invited', 'User accepted invitation', 'User role updated', 'User deleted')
ORDER BY timestamp, id
