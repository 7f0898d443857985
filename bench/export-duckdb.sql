-- The peer of `auditlake export ocsf` (README, Performance): DuckDB reads the lake's Parquet
-- files and writes OCSF-shaped events (the same classes and activities and the main attributes,
-- as SQL structs; no extra_data parsing, no per-class schema) as zstd Parquet partitioned by
-- class and day. LAKE and OUT are placeholders:
--   sed "s#LAKE#$PWD/lake#; s#OUT#$PWD/duck-out#" bench/export-duckdb.sql > /tmp/x.sql
--   /usr/bin/time -v duckdb -c '.read /tmp/x.sql'
COPY (
  WITH t AS (
    SELECT *,
      CASE WHEN action IN ('User logged in','User logged out','User switched accounts','User login failed') THEN 3002
           WHEN action IN ('User invited','User accepted invitation','User deleted') THEN 3001
           WHEN action = 'User role updated' THEN 3005 ELSE 6003 END AS class_uid,
      CASE WHEN action IN ('User logged in','User login failed','User invited','User role updated') THEN 1
           WHEN action IN ('User logged out','User accepted invitation') THEN 2
           WHEN action = 'User deleted' THEN 6
           WHEN action = 'User switched accounts' THEN 99
           WHEN regexp_matches(lower(action), '(created|added|added to case|associated with case|cases linked)$') THEN 1
           WHEN regexp_matches(lower(action), '(deleted|removed|dissociated from case|unlinked)$') THEN 4
           WHEN regexp_matches(lower(action), '(updated|edited|published|reverted|enabled|disabled)$') THEN 3
           ELSE 99 END AS activity_id
    FROM read_parquet('LAKE/audit_log/date=*/*.parquet', hive_partitioning = true)
  )
  SELECT
    epoch_ms("timestamp") AS time, class_uid, class_uid // 1000 AS category_uid, activity_id,
    class_uid * 100 + activity_id AS type_uid, 1 AS severity_id,
    CASE WHEN action = 'User login failed' THEN 2 ELSE 1 END AS status_id,
    CASE WHEN resource_name IS NULL THEN action ELSE action || ': ' || resource_name END AS message,
    {'uid': id, 'version': '1.1.0', 'product': {'name': 'Torq', 'vendor_name': 'Torq'},
     'tenant_uid': account_id, 'original_time': strftime("timestamp", '%Y-%m-%dT%H:%M:%S.%fZ'),
     'logged_time': epoch_ms(ingested_at)} AS metadata,
    {'user': {'name': actor_name, 'email_addr': email,
              'type_id': CASE WHEN actor_type = 'web_app' THEN 1 ELSE 99 END, 'type': actor_type}} AS actor,
    {'ip': ip} AS src_endpoint, {'user_agent': user_agent} AS http_request,
    {'operation': action, 'service': {'name': 'Torq'}} AS api,
    [{'uid': resource_id, 'name': resource_name, 'labels': tags}] AS resources,
    map(['account_name', 'scenario_id', 'revision_id', 'extra_data'],
        [account_name, scenario_id, revision_id, extra_data]) AS unmapped,
    strftime("timestamp", '%Y%m%d') AS eventDay
  FROM t
  ORDER BY time, id
) TO 'OUT' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (class_uid, eventDay), OVERWRITE_OR_IGNORE);
