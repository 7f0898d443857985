#!/usr/bin/env python3
"""auditlake against DuckDB on the same feed, side by side, as whole processes.

Run through bench/run.sh, which builds auditlake in release mode and installs the DuckDB CLI.
Every measurement alternates the two sides (A B A B ...) so that the machine's drift hits both,
and reports min, median and max of wall time, CPU time and peak RSS (from wait4, per process).
Before timing a query, both sides' answers are compared: a ratio only counts when the results
are the same rows.
"""

import argparse
import csv
import datetime
import io
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def run(cmd, stdout=subprocess.DEVNULL, env=None, check=True):
    """Runs cmd; returns (wall s, cpu s, peak RSS bytes, stdout bytes or None). With check=False
    a failure is returned as stdout None and the exit status in `run.last_status`."""
    out_file = subprocess.PIPE if stdout is None else stdout
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=out_file, stderr=subprocess.PIPE, env=env)
    captured = proc.stdout.read() if out_file == subprocess.PIPE else None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    run.last_status = proc.returncode
    run.last_stderr = err.decode(errors="replace")
    if check and proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{err.decode(errors='replace')}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, captured


def summary(samples):
    return {
        "min": min(samples),
        "median": statistics.median(samples),
        "max": max(samples),
        "samples": samples,
    }


class Side:
    def __init__(self, name):
        self.name = name
        self.wall, self.cpu, self.rss = [], [], []

    def add(self, wall, cpu, rss):
        self.wall.append(wall)
        self.cpu.append(cpu)
        self.rss.append(rss)

    def result(self):
        return {"wall_s": summary(self.wall), "cpu_s": summary(self.cpu), "peak_rss_bytes": summary(self.rss)}


def alternate(runs, a, b):
    """Runs a() and b() `runs` times each, alternating which goes first."""
    rotate(runs, [a, b])


def rotate(runs, sides):
    """Runs every side `runs` times, in a rotated order each round (A B C, B C A, ...), so that
    the machine's drift hits all of them alike."""
    for i in range(runs):
        k = i % len(sides)
        for f in sides[k:] + sides[:k]:
            f()


PEER_NAMES = {"polars": "Polars", "chdb": "chDB"}


# What each side's ingest wrote, read back by DuckDB: it must be the same for every peer, or the
# ingest ratios compare different jobs. Counts, plus every column the queries read hashed row by
# row (order-free), with the partition each row's file sits in; all as text, so that the writers'
# string and timestamp types and chDB's empty list for "no tags" compare equal.
FINGERPRINT_SQL = """SET TimeZone = 'UTC';
SELECT count(*) AS events, count(DISTINCT id) AS ids,
       count(DISTINCT regexp_extract(filename, 'date=([0-9-]+)', 1)) AS days,
       count(scenario_id) AS with_scenario, sum(len(coalesce(tags, []))) AS tags,
       count(revision_id) AS with_revision, count(extra_data) AS with_extra,
       bit_xor(hash(id::VARCHAR, epoch_us(timestamp), regexp_extract(filename, 'date=([0-9-]+)', 1),
                    action::VARCHAR, actor_name::VARCHAR, actor_type::VARCHAR, email::VARCHAR,
                    resource_id::VARCHAR, resource_name::VARCHAR, scenario_id::VARCHAR,
                    revision_id::VARCHAR, coalesce(array_to_string(tags, ','), ''))) AS row_hash
FROM read_parquet('{dir}/**/*.parquet', hive_partitioning = false, filename = true)"""


DUCK_COLUMNS = (
    "{id: 'VARCHAR', timestamp: 'VARCHAR', account_id: 'VARCHAR', account_name: 'VARCHAR', "
    "action: 'VARCHAR', actor_name: 'VARCHAR', actor_type: 'VARCHAR', email: 'VARCHAR', ip: 'VARCHAR', "
    "user_agent: 'VARCHAR', resource_id: 'VARCHAR', resource_name: 'VARCHAR', scenario_id: 'VARCHAR', "
    "extra_data: 'JSON'}"
)


def duck_ingest_sql(feed, out_dir):
    """DuckDB's side of the ingest: the same columns as audit_log, zstd Parquet partitioned by
    UTC date, deduplicated by id."""
    return f"""SET TimeZone = 'UTC';
COPY (
  SELECT id,
         CAST(timestamp AS TIMESTAMPTZ) AS timestamp,
         CAST(timezone('UTC', CAST(timestamp AS TIMESTAMPTZ)) AS DATE) AS date,
         account_id, account_name, action, actor_name, actor_type, email, ip, user_agent,
         resource_id, resource_name,
         coalesce(scenario_id, json_extract_string(extra_data, '$.scenario_id')) AS scenario_id,
         CAST(json_extract(extra_data, '$.tags') AS VARCHAR[]) AS tags,
         json_extract_string(extra_data, '$.revision_id') AS revision_id,
         CAST(extra_data AS VARCHAR) AS extra_data,
         NULL::VARCHAR AS extra,
         now() AS ingested_at,
         filename AS source
  FROM read_json('{feed}', format = 'newline_delimited', filename = true, columns = {DUCK_COLUMNS})
  QUALIFY row_number() OVER (PARTITION BY id ORDER BY timestamp) = 1
) TO '{out_dir}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (date));
"""


def named_sql(name):
    with open(os.path.join(ROOT, "queries", f"{name}.sql")) as f:
        return f.read()


def queries(point_id, first_day):
    d0 = datetime.date.fromisoformat(first_day)
    d1, d2 = d0 + datetime.timedelta(days=10), d0 + datetime.timedelta(days=12)
    return {
        "by_action": ("named", "by_action", named_sql("by_action")),
        "by_actor": ("named", "by_actor", named_sql("by_actor")),
        "by_tag": ("named", "by_tag", named_sql("by_tag")),
        "by_scenario": ("named", "by_scenario", named_sql("by_scenario")),
        "three_days_api_keys": (
            "sql",
            None,
            "SELECT action, count(*) AS events FROM audit_log "
            f"WHERE date BETWEEN DATE '{d1}' AND DATE '{d2}' AND actor_type = 'api_key' "
            "GROUP BY action ORDER BY events DESC, action",
        ),
        "point_lookup_id": (
            "sql",
            None,
            f"SELECT id, action, actor_name, email, resource_name FROM audit_log WHERE id = '{point_id}'",
        ),
    }


def query_cmd(al, lake, kind, qname, sql):
    """auditlake's side of a query from queries(): a named query or the SQL text, as CSV."""
    return [al, "--quiet", "--lake", lake, "query", "--format", "csv"] + (["--name", qname] if kind == "named" else [sql])


def normalise_rows(text):
    """CSV rows as comparable tuples: timestamps to one spelling, numbers to numbers."""
    rows = list(csv.reader(io.StringIO(text.decode())))[1:]
    out = []
    for row in rows:
        norm = []
        for v in row:
            if v == "NULL":  # DuckDB's CSV spelling of null; auditlake writes an empty field
                v = ""
            m = re.fullmatch(r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|\+00(?::00)?)?", v)
            if m:
                # One spelling of an instant: no zone suffix, no trailing zeros in the fraction.
                frac = (m.group(3) or "").rstrip("0")
                v = f"{m.group(1)} {m.group(2)}" + (f".{frac}" if frac else "")
            else:
                try:
                    v = str(float(v))
                except ValueError:
                    pass
            norm.append(v)
        out.append(tuple(norm))
    return sorted(out)


def markdown(results):
    env = results["environment"]
    lines = [
        f"# auditlake vs DuckDB{''.join(', ' + PEER_NAMES[n] for n in env.get('peers', {}))}: {results['feed']['events']:,} events",
        "",
        f"{env['date']} on {env['machine']} ({env['cpus']} cores); {env['auditlake']}; DuckDB {env['duckdb']}"
        + "".join(f"; {PEER_NAMES[n]} {v}" for n, v in env.get("peers", {}).items()) + ". "
        f"Feed: {results['feed']['bytes'] / 1e6:.0f} MB NDJSON, {results['feed']['entries']:,} entries over "
        f"{results['feed']['days']} days. Each side ran {results['runs']} times for ingest and "
        f"{results['query_runs']} times per query, alternating; min / median / max shown. "
        "Ratio = auditlake median / DuckDB median (below 1: auditlake is faster).",
        "",
        "| step | auditlake wall s | DuckDB wall s | ratio | auditlake peak RSS MiB | DuckDB peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]

    def fmt(s):
        return f"{s['min']:.3f} / **{s['median']:.3f}** / {s['max']:.3f}"

    def mib(s):
        return f"{s['median'] / 2**20:.0f} (max {s['max'] / 2**20:.0f})"

    for step in results["steps"]:
        a, d = step["auditlake"], step.get("duckdb")
        lines.append(
            f"| {step['name']} | {fmt(a['wall_s'])} | {fmt(d['wall_s']) if d else '-'} | "
            f"{step['ratio']:.2f} | {mib(a['peak_rss_bytes'])} | {mib(d['peak_rss_bytes']) if d else '-'} |"
            if d
            else f"| {step['name']} | {fmt(a['wall_s'])} | - | - | {mib(a['peak_rss_bytes'])} | - |"
        )
    ingest = next(s for s in results["steps"] if s["name"] == "ingest")
    if ingest.get("peers") or ingest.get("peer_failures"):
        lines += ["", "Ingest, the same job on every side (deduplicated by id, date-partitioned zstd Parquet); "
                  "ratio = auditlake median / that side's median:", "",
                  "| side | wall s | peak RSS MiB | auditlake / side |", "|---|---:|---:|---:|"]
        a_med = ingest["auditlake"]["wall_s"]["median"]
        sides = [("auditlake", ingest["auditlake"]), ("DuckDB CLI", ingest["duckdb"])] + [
            (PEER_NAMES[n], r) for n, r in ingest["peers"].items()]
        for name, r in sides:
            lines.append(f"| {name} | {fmt(r['wall_s'])} | {mib(r['peak_rss_bytes'])} | {a_med / r['wall_s']['median']:.2f} |")
        for name, f in ingest["peer_failures"].items():
            lines.append(f"| {PEER_NAMES[name]} | failed (exit {f['exit_status']}) | {f['peak_rss_bytes'] / 2**20:.0f} at exit | - |")
        fp = ingest["fastest_peer"]
        lines += ["", f"auditlake / the fastest peer ({PEER_NAMES.get(fp['name'], 'DuckDB CLI')}): **{fp['ratio']:.2f}**."]
    lines += ["", "Checks:", ""]
    for c in results["checks"]:
        lines.append(f"- {c}")
    lines.append("")
    return "\n".join(lines)


def svg_chart(results):
    """Horizontal bars of the ratio per step, with the 1.0 line."""
    steps = [s for s in results["steps"] if s.get("duckdb")]
    row, left, width = 26, 190, 640
    height = row * len(steps) + 40
    scale = (width - left - 60) / max(1.5, max(s["ratio"] for s in steps) * 1.1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
        f'<text x="{left}" y="14">auditlake / DuckDB, median wall time (lower is better)</text>',
    ]
    for i, s in enumerate(steps):
        y = 24 + i * row
        w = s["ratio"] * scale
        color = "#2b6cb0" if s["ratio"] < 1 else "#c05621"
        parts.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end">{s["name"]}</text>')
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="{color}"/>')
        parts.append(f'<text x="{left + w + 4:.1f}" y="{y + 15}">{s["ratio"]:.2f}</text>')
    one = left + scale
    parts.append(f'<line x1="{one:.1f}" y1="20" x2="{one:.1f}" y2="{height - 8}" stroke="#333" stroke-dasharray="4 3"/>')
    parts.append("</svg>\n")
    return "\n".join(parts)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--auditlake", required=True)
    p.add_argument("--duckdb", required=True)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--runs", type=int, default=3, help="ingest runs per side")
    p.add_argument("--query-runs", type=int, default=5, help="runs per query per side")
    p.add_argument("--work", default="/var/tmp/auditlake-bench")
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    p.add_argument("--skip-pruning", action="store_true", help="skip the year-vs-day partition pruning step")
    p.add_argument("--skip-cluster", action="store_true", help="skip the local-vs-Ballista step")
    p.add_argument("--polars-python", help="a Python with polars, for the Polars ingest peer")
    p.add_argument("--chdb-python", help="a Python with chdb, for the chDB ingest peer")
    args = p.parse_args()

    al, duck = os.path.abspath(args.auditlake), os.path.abspath(args.duckdb)
    peers = {name: py for name, py in (("polars", args.polars_python), ("chdb", args.chdb_python)) if py}
    os.makedirs(args.work, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    first_day = "2026-10-01"
    feed = os.path.join(args.work, f"feed-{args.events}-{args.days}d.ndjson")
    if not os.path.exists(feed):
        log(f"generating {args.events:,} events over {args.days} days -> {feed}")
        run([al, "--quiet", "generate", "--events", str(args.events), "--days", str(args.days),
             "--start", first_day, "--duplicates", "0.01", "--out", feed])
    entries = sum(1 for _ in open(feed, "rb"))
    # An id from the middle of the feed, for the point lookup.
    with open(feed, "rb") as f:
        f.seek(os.path.getsize(feed) // 2)
        f.readline()
        point_id = json.loads(f.readline())["id"]

    lake = os.path.join(args.work, "lake")
    duck_dir = os.path.join(args.work, "duck")
    duck_sql = os.path.join(args.work, "duck-ingest.sql")
    with open(duck_sql, "w") as f:
        f.write(duck_ingest_sql(feed, duck_dir))

    steps, checks = [], []

    # 1. Ingest into an empty lake vs DuckDB's COPY to partitioned Parquet, and the same job in
    # Polars and chDB (bench/peers/). A peer that fails (out of memory, say) is recorded as such.
    a, d = Side("auditlake"), Side("duckdb")
    peer_sides = {name: Side(name) for name in peers}
    peer_failures = {}

    def al_ingest():
        shutil.rmtree(lake, ignore_errors=True)
        a.add(*run([al, "--quiet", "--lake", lake, "ingest", feed])[:3])

    def duck_ingest():
        shutil.rmtree(duck_dir, ignore_errors=True)
        d.add(*run([duck, "-c", f".read {duck_sql}"])[:3])

    def peer_ingest(name):
        def go():
            if name in peer_failures:
                return
            out_dir = os.path.join(args.work, name)
            shutil.rmtree(out_dir, ignore_errors=True)
            wall, cpu, rss, _ = run([peers[name], os.path.join(HERE, "peers", f"{name}_ingest.py"), feed, out_dir],
                                    check=False)
            if run.last_status != 0:
                peer_failures[name] = {"exit_status": run.last_status, "peak_rss_bytes": rss,
                                       "stderr_tail": run.last_stderr[-400:]}
                log(f"{name} ingest failed (exit {run.last_status}, peak {rss / 2**30:.1f} GiB)")
            else:
                peer_sides[name].add(wall, cpu, rss)
        return go

    log(f"ingest x{args.runs} each: auditlake, DuckDB, {', '.join(peers) or 'no other peers'}")
    rotate(args.runs, [al_ingest, duck_ingest] + [peer_ingest(n) for n in peers])
    ingest = {"name": "ingest", "auditlake": a.result(), "duckdb": d.result(),
              "peers": {n: p.result() for n, p in peer_sides.items() if n not in peer_failures},
              "peer_failures": peer_failures}
    fastest = min([("duckdb", statistics.median(d.wall))] +
                  [(n, statistics.median(s.wall)) for n, s in peer_sides.items() if n not in peer_failures],
                  key=lambda x: x[1])
    ingest["fastest_peer"] = {"name": fastest[0], "ratio": statistics.median(a.wall) / fastest[1]}
    steps.append(ingest)

    # The peers' output must be DuckDB's, row for row (DuckDB's is checked against auditlake's
    # answers below, query by query).
    def fingerprint(out_dir):
        with open(duck_sql + ".fp", "w") as f:
            f.write(FINGERPRINT_SQL.format(dir=out_dir))
        return run([duck, "-csv", "-c", f".read {duck_sql}.fp"], stdout=None)[3].decode().splitlines()[1]

    reference = fingerprint(duck_dir)
    for name in peers:
        if name in peer_failures:
            continue
        got = fingerprint(os.path.join(args.work, name))
        if got != reference:
            raise SystemExit(f"{name}'s ingest differs from DuckDB's: {got} vs {reference} "
                             f"(events, ids, days, with_scenario, tags, with_revision, with_extra, row_hash)")
        checks.append(f"{name}'s ingest wrote the same rows as DuckDB's (counts and a hash of every row)")

    # 2. The same feed again: every event a duplicate, nothing committed.
    r = Side("auditlake")
    log(f"re-ingest x{args.runs}")
    for _ in range(args.runs):
        wall, cpu, rss, out = run([al, "--quiet", "--lake", lake, "ingest", feed, "--format", "json"], stdout=None)
        r.add(wall, cpu, rss)
        m = json.loads(out)
        if m["ingested"] != 0 or m["table_version"] is not None:
            raise SystemExit(f"re-ingest committed something: {m}")
    checks.append("re-ingest of the same feed ingested 0 events and committed nothing, every run")
    first = statistics.median(a.wall)
    steps.append({"name": "re-ingest (all duplicates)", "auditlake": r.result(),
                  "vs_first_ingest": statistics.median(r.wall) / first})

    wall, _, _, _ = run([al, "--quiet", "--lake", lake, "compact"])
    checks.append(f"compact after ingest took {wall:.2f} s")
    _, _, _, out = run([al, "--lake", lake, "query", "--format", "csv", "SELECT count(*) AS n FROM audit_log"], stdout=None)
    al_rows = int(out.decode().split()[1])
    _, _, _, out = run([duck, "-csv", "-c", f"SELECT count(*) AS n FROM read_parquet('{duck_dir}/**/*.parquet')"], stdout=None)
    duck_rows = int(out.decode().split()[1])
    if al_rows != duck_rows:
        raise SystemExit(f"row counts differ: auditlake {al_rows}, DuckDB {duck_rows}")
    checks.append(f"both sides hold {al_rows:,} distinct events ({entries - al_rows:,} duplicates dropped)")

    # 3. Queries: the same SQL text on both sides.
    view = f"CREATE VIEW audit_log AS SELECT * FROM read_parquet('{duck_dir}/**/*.parquet', hive_partitioning = true);"
    for name, (kind, qname, sql) in queries(point_id, first_day).items():
        al_cmd = query_cmd(al, lake, kind, qname, sql)
        duck_cmd = [duck, "-csv", "-c", f"SET TimeZone = 'UTC'; {view} {sql.strip().rstrip(';')};"]
        al_out, duck_out = run(al_cmd, stdout=None)[3], run(duck_cmd, stdout=None)[3]
        ra, rd = normalise_rows(al_out), normalise_rows(duck_out)
        if ra != rd:
            diff = [x for x in ra if x not in rd][:3]
            raise SystemExit(f"{name}: results differ ({len(ra)} vs {len(rd)} rows), e.g. {diff}")
        checks.append(f"{name}: both sides return the same {len(ra)} rows")
        qa, qd = Side("auditlake"), Side("duckdb")
        log(f"query {name} x{args.query_runs} each")
        alternate(args.query_runs, lambda: qa.add(*run(al_cmd)[:3]), lambda: qd.add(*run(duck_cmd)[:3]))
        steps.append({"name": f"query {name}", "auditlake": qa.result(), "duckdb": qd.result()})

    # 4. Partition pruning: a one-day query on a year of data vs on a lake of that day alone.
    pruning = None
    if not args.skip_pruning:
        # A year at up to 3,000 events a day (about 1.1M events) keeps the set-up short. The day
        # lake holds that same day's events, taken from the year's feed: a day generated on its
        # own holds fewer events than the generator gives that day within a year (3,000 against
        # 3,712), which flattered the year's side.
        per_day = max(1, min(3000, args.events // args.days))
        year_feed = os.path.join(args.work, f"year-{per_day}.ndjson")
        day_feed = os.path.join(args.work, f"day-{per_day}.ndjson")
        year_lake, day_lake = os.path.join(args.work, "lake-year"), os.path.join(args.work, "lake-day-of-year")
        if not (os.path.exists(year_lake) and os.path.exists(day_lake)):
            log(f"pruning: a year at {per_day:,} events a day, and its day 2026-06-15 alone")
            for lake in (year_lake, day_lake):
                shutil.rmtree(lake, ignore_errors=True)
            run([al, "--quiet", "generate", "--events", str(per_day * 365), "--days", "365", "--start", "2025-11-01", "--out", year_feed])
            with open(year_feed) as src, open(day_feed, "w") as dst:
                dst.writelines(line for line in src if json.loads(line)["timestamp"].startswith("2026-06-15"))
            run([al, "--quiet", "--lake", year_lake, "ingest", year_feed])
            run([al, "--quiet", "--lake", day_lake, "ingest", day_feed])
            os.remove(year_feed)
            os.remove(day_feed)
        sql = "SELECT action, count(*) AS events FROM audit_log WHERE date = DATE '2026-06-15' GROUP BY action ORDER BY events DESC, action"
        year_rows = normalise_rows(run([al, "--quiet", "--lake", year_lake, "query", "--format", "csv", sql], stdout=None)[3])
        day_rows = normalise_rows(run([al, "--quiet", "--lake", day_lake, "query", "--format", "csv", sql], stdout=None)[3])
        if year_rows != day_rows:
            raise SystemExit("pruning: the year's lake and the day's lake answer differently for that day")
        checks.append(f"pruning: the year's lake and the day's lake give the same {len(year_rows)} rows for that day")
        y, dd = Side("year"), Side("day")
        # Each run is about 30 ms, where a few ms of machine noise move the ratio by a tenth:
        # three times the query runs (at least 21) cost a second or two and steady the median.
        pruning_runs = max(21, 3 * args.query_runs)
        log(f"pruning: year vs day x{pruning_runs} each")
        alternate(pruning_runs,
                  lambda: y.add(*run([al, "--quiet", "--lake", year_lake, "query", "--format", "csv", sql])[:3]),
                  lambda: dd.add(*run([al, "--quiet", "--lake", day_lake, "query", "--format", "csv", sql])[:3]))
        pruning = {"events_per_day": per_day, "runs": pruning_runs, "year_lake": y.result(), "day_lake": dd.result(),
                   "ratio": statistics.median(y.wall) / statistics.median(dd.wall)}

    # 5. The same queries through a Ballista scheduler and executor (in one process, on loopback)
    # against running them in the CLI's own process: what going distributed costs here.
    cluster_steps = []
    has_cluster = subprocess.run([al, "cluster", "--help"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL).returncode == 0
    if not args.skip_cluster and not has_cluster:
        log("cluster: skipped, this auditlake was built without the `cluster` feature")
    if not args.skip_cluster and has_cluster:
        server = subprocess.Popen([al, "--quiet", "--lake", lake, "cluster"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            url = server.stdout.readline().decode().strip()
            if not url.startswith("df://"):
                raise SystemExit(f"auditlake cluster did not print its URL (got {url!r})")
            log(f"cluster: in-process scheduler and executor at {url}")
            for name, (kind, qname, sql) in queries(point_id, first_day).items():
                local_cmd = query_cmd(al, lake, kind, qname, sql)
                cluster_cmd = local_cmd + ["--cluster", url]
                rl, rc = normalise_rows(run(local_cmd, stdout=None)[3]), normalise_rows(run(cluster_cmd, stdout=None)[3])
                if rl != rc:
                    raise SystemExit(f"{name}: the cluster's answer differs from the local one ({len(rl)} vs {len(rc)} rows)")
                checks.append(f"{name}: local and cluster return the same {len(rl)} rows")
                ql, qc = Side("local"), Side("cluster")
                log(f"cluster: query {name} x{args.query_runs} each")
                alternate(args.query_runs, lambda: ql.add(*run(local_cmd)[:3]), lambda: qc.add(*run(cluster_cmd)[:3]))
                cluster_steps.append({"name": f"query {name}", "local": ql.result(), "cluster": qc.result(),
                                      "ratio": statistics.median(qc.wall) / statistics.median(ql.wall)})
        finally:
            server.terminate()
            server.wait()

    for s in steps:
        if s.get("duckdb"):
            s["ratio"] = s["auditlake"]["wall_s"]["median"] / s["duckdb"]["wall_s"]["median"]

    version = run([al, "--version"], stdout=None)[3].decode().strip()
    duck_version = run([duck, "--version"], stdout=None)[3].decode().strip()
    peer_versions = {
        name: run([py, "-c", f"import {name}; print({name}.__version__)"], stdout=None)[3].decode().strip()
        for name, py in peers.items()
    }
    results = {
        "environment": {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": platform.platform(),
            "cpus": os.cpu_count(),
            "auditlake": version,
            "duckdb": duck_version,
            "peers": peer_versions,
        },
        "feed": {"events": args.events, "entries": entries, "days": args.days, "bytes": os.path.getsize(feed)},
        "runs": args.runs,
        "query_runs": args.query_runs,
        "steps": steps,
        "pruning": pruning,
        "cluster": cluster_steps,
        "checks": checks,
    }
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = os.path.join(args.out, f"{args.events}-{stamp}")
    with open(base + ".json", "w") as f:
        json.dump(results, f, indent=2)
    md = markdown(results)
    if pruning:
        md += (f"\nPartition pruning: a one-day query on a lake of 365 days took "
               f"{pruning['year_lake']['wall_s']['median']:.3f} s vs {pruning['day_lake']['wall_s']['median']:.3f} s "
               f"on a lake of that day alone (ratio {pruning['ratio']:.2f}; medians of {pruning['runs']} runs each).\n")
    if cluster_steps:
        md += ("\nThe same queries through Ballista (`--cluster`, scheduler and executor in one process on this "
               "machine) against the CLI alone, both as whole `auditlake query` processes; ratio = cluster / local:\n\n"
               "| step | local wall s | cluster wall s | ratio |\n|---|---:|---:|---:|\n")
        for c in cluster_steps:
            fmt = lambda s: f"{s['min']:.3f} / **{s['median']:.3f}** / {s['max']:.3f}"
            md += f"| {c['name']} | {fmt(c['local']['wall_s'])} | {fmt(c['cluster']['wall_s'])} | {c['ratio']:.2f} |\n"
    reingest = next(s for s in steps if s["name"].startswith("re-ingest"))
    md += f"\nRe-ingest of the whole feed took {reingest['vs_first_ingest']:.2f}x the first ingest's median time.\n"
    with open(base + ".md", "w") as f:
        f.write(md)
    with open(base + ".svg", "w") as f:
        f.write(svg_chart(results))
    for ext in ("json", "md", "svg"):
        shutil.copyfile(f"{base}.{ext}", os.path.join(args.out, f"latest-{args.events}.{ext}"))
    print(md)
    log(f"results in {base}.{{json,md,svg}}")


if __name__ == "__main__":
    main()
