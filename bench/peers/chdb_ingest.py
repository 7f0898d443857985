"""chDB's (ClickHouse in-process) side of the ingest benchmark: the job DuckDB and auditlake do.

  python chdb_ingest.py FEED.ndjson OUT_DIR

Reads the NDJSON feed with extra_data as JSON text, keeps the first entry of each id (by
timestamp), derives the same columns as auditlake's `audit_log` and writes zstd Parquet
partitioned by UTC date (`OUT_DIR/date=YYYY-MM-DD/data.parquet`).
"""

import os
import sys

import chdb

feed, out = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
os.makedirs(out, exist_ok=True)
columns = ", ".join(
    f"{c} Nullable(String)"
    for c in ("id", "timestamp", "account_id", "account_name", "action", "actor_name", "actor_type", "email", "ip",
              "user_agent", "resource_id", "resource_name", "scenario_id", "extra_data")
)
# ClickHouse has no nullable arrays: an entry without tags gets an empty list, which answers the
# same (`unnest` of an empty list yields no rows).
sql = f"""
INSERT INTO FUNCTION file('{out}/date={{_partition_id}}/data.parquet', Parquet)
PARTITION BY date
SELECT id, timestamp, toDate(timestamp) AS date,
       account_id, account_name, action, actor_name, actor_type, email, ip, user_agent,
       resource_id, resource_name,
       coalesce(scenario_id, nullIf(JSONExtractString(extra_data, 'scenario_id'), '')) AS scenario_id,
       JSONExtract(ifNull(extra_data, ''), 'tags', 'Array(String)') AS tags,
       nullIf(JSONExtractString(extra_data, 'revision_id'), '') AS revision_id,
       extra_data,
       CAST(NULL AS Nullable(String)) AS extra,
       now64(6, 'UTC') AS ingested_at,
       source
FROM (
  SELECT * REPLACE (parseDateTime64BestEffort(timestamp, 6, 'UTC') AS timestamp), _file AS source
  FROM file('{feed}', JSONEachRow, '{columns}')
)
ORDER BY id, timestamp
LIMIT 1 BY id
SETTINGS input_format_json_read_objects_as_strings = 1,
         output_format_parquet_compression_method = 'zstd'
"""
chdb.query(sql)
