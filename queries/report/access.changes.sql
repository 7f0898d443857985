-- User provisioning and role changes
-- Every invitation, accepted invitation, role change and removal: who did it (actor), to whom
-- (resource), when, and from which address.
SELECT timestamp, action, resource_name AS target, actor_name, actor_type, email AS actor_email, ip,
       account_name AS workspace
FROM events
WHERE action IN ('User invited', 'User accepted invitation', 'User role updated', 'User deleted')
ORDER BY timestamp, id
