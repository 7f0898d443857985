"""Polars' side of the ingest benchmark: the job DuckDB and auditlake do (bench/bench.py).

  python polars_ingest.py FEED.ndjson OUT_DIR

Reads the NDJSON feed, keeps the first entry of each id (by timestamp), derives the same columns
as auditlake's `audit_log` (date, scenario_id, tags, revision_id, extra_data as JSON text) and
writes zstd Parquet partitioned by UTC date (`OUT_DIR/date=YYYY-MM-DD/...`). Streaming where
Polars can; the dedup is what needs the whole feed in memory.
"""

import datetime
import sys

import polars as pl

feed, out = sys.argv[1], sys.argv[2]
text = pl.String
# Polars has no "object as JSON text" read: infer extra_data as a struct over the whole feed (its
# keys vary by action) and encode it back to JSON below.
lf = pl.scan_ndjson(feed, infer_schema_length=None)
names = lf.collect_schema().names()


def col(name):
    """A top-level field, or null when no entry of the feed has it."""
    return pl.col(name) if name in names else pl.lit(None, dtype=text)


extra = pl.col("extra_data")
has_extra = "extra_data" in names
extra_fields = lf.collect_schema()["extra_data"].fields if has_extra else []
extra_names = {f.name for f in extra_fields}


def extra_field(name):
    return extra.struct.field(name) if name in extra_names else pl.lit(None)


ts = pl.col("timestamp").str.to_datetime(time_zone="UTC", time_unit="us")
(
    lf.with_columns(ts.alias("timestamp"))
    .sort("timestamp")
    .unique(subset="id", keep="first", maintain_order=False)
    .select(
        col("id"),
        pl.col("timestamp"),
        pl.col("timestamp").dt.date().alias("date"),
        *(col(c).alias(c) for c in ("account_id", "account_name", "action", "actor_name", "actor_type",
                                    "email", "ip", "user_agent", "resource_id", "resource_name")),
        pl.coalesce(col("scenario_id"), extra_field("scenario_id").cast(text)).alias("scenario_id"),
        extra_field("tags").cast(pl.List(text)).alias("tags"),
        extra_field("revision_id").cast(text).alias("revision_id"),
        (pl.when(extra.is_not_null()).then(extra.struct.json_encode()) if has_extra else pl.lit(None, dtype=text))
        .alias("extra_data"),
        pl.lit(None, dtype=text).alias("extra"),
        pl.lit(datetime.datetime.now(datetime.timezone.utc)).alias("ingested_at"),
        pl.lit(feed).alias("source"),
    )
    .sink_parquet(pl.PartitionBy(out, key="date"), compression="zstd", mkdir=True)
)
