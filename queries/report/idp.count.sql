-- changes
SELECT count(*) AS changes FROM events
WHERE action LIKE 'IdP connection %' OR action LIKE 'IdP claims mapping %'
