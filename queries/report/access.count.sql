-- changes
SELECT count(*) AS changes FROM events
WHERE action IN ('User invited', 'User accepted invitation', 'User role updated', 'User deleted')
