"""A real PostgreSQL driver (psycopg 3) against `auditlake serve`, for tests/serve.rs.

    client.py compare DSN BIN LAKE QUERIES_DIR NAME[:key=value,...] ...
        Each named query through the server (a view, or its SQL with bound parameters over the
        extended protocol) and through `auditlake query --name --format json`: the same rows.
    client.py concurrent DSN CLIENTS STOP_FILE
        CLIENTS connections asking count(*) and count(DISTINCT id) in a loop until STOP_FILE
        exists; prints {"answers": {count: times}, "errors": [...], "mismatched": n} as JSON.
    client.py refused DSN SQL
        Runs SQL over the extended protocol with one bound parameter; prints the error's SQLSTATE
        and message as JSON, or exits 1 if it ran.
    client.py cancel DSN SQL
        Runs SQL and cancels it (a CancelRequest, as psql's Ctrl-C) after a second; prints the
        error and how long the cancel took as JSON, then checks the connection still answers.
    client.py busy DSN N
        Holds N connections open, then tries one more; prints its error as JSON.
"""
import datetime
import decimal
import json
import os
import re
import subprocess
import sys
import threading
import time

import psycopg


def norm(v):
    if isinstance(v, datetime.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=datetime.timezone.utc)
        return round(v.timestamp() * 1_000_000)
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, str) and re.match(r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d", v):
        return norm(datetime.datetime.fromisoformat(v.replace("Z", "+00:00")))
    if isinstance(v, (float, decimal.Decimal)):
        return round(float(v), 6)
    if isinstance(v, (list, tuple)):
        return [norm(x) for x in v]
    return v


def compare(dsn, binary, lake, queries_dir, specs):
    failures = []
    with psycopg.connect(dsn) as conn:
        for spec in specs:
            name, _, given = spec.partition(":")
            params = dict(p.split("=", 1) for p in given.split(",") if p)
            cmd = [binary, "--quiet", "--lake", lake, "query", "--name", name, "--format", "json"]
            for k, v in params.items():
                cmd += ["--param", f"{k}={v}"]
            expected_rows = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            with conn.cursor() as cur:
                if params:
                    sql = open(os.path.join(queries_dir, name + ".sql")).read().replace("%", "%%")
                    sql = re.sub(r"\$([A-Za-z_]\w*)", r"%(\1)s", sql)
                    cur.execute(sql, params)
                else:
                    cur.execute(f"SELECT * FROM {name}")
                columns = [d.name for d in cur.description]
                got = sorted(json.dumps([norm(v) for v in row]) for row in cur.fetchall())
            expected = sorted(json.dumps([norm(r.get(c)) for c in columns]) for r in expected_rows)
            if got != expected:
                failures.append({"query": name, "served": got[:5], "cli": expected[:5],
                                 "served_rows": len(got), "cli_rows": len(expected)})
            elif not got:
                failures.append({"query": name, "error": "no rows: the comparison proves nothing"})
    print(json.dumps({"compared": len(specs), "failures": failures}, indent=1))
    return 1 if failures else 0


def concurrent(dsn, clients, stop_file):
    answers, errors, mismatched = {}, [], [0]
    lock = threading.Lock()

    def client():
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                while not os.path.exists(stop_file):
                    row = conn.execute("SELECT count(*), count(DISTINCT id) FROM audit_log").fetchone()
                    with lock:
                        answers[row[0]] = answers.get(row[0], 0) + 1
                        if row[0] != row[1]:
                            mismatched[0] += 1
        except Exception as e:  # noqa: BLE001 - every failure is reported to the test
            with lock:
                errors.append(repr(e))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"answers": {str(k): v for k, v in answers.items()}, "errors": errors,
                      "mismatched": mismatched[0]}))
    return 0


def refused(dsn, sql):
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            conn.execute(sql, ("x",) if "%s" in sql else None)
        except psycopg.Error as e:
            print(json.dumps({"sqlstate": e.sqlstate, "message": str(e)}))
            # The connection still answers after the refusal.
            assert conn.execute("SELECT 1").fetchone() == (1,)
            return 0
    print(json.dumps({"ran": sql}))
    return 1


def cancel(dsn, sql):
    with psycopg.connect(dsn, autocommit=True) as conn:
        sent = []

        def later():
            time.sleep(1.0)
            sent.append(time.time())
            conn.cancel_safe()

        threading.Thread(target=later).start()
        try:
            conn.execute(sql).fetchall()
            print(json.dumps({"ran": sql}))
            return 1
        except psycopg.Error as e:
            took = time.time() - sent[0] if sent else None
            print(json.dumps({"sqlstate": e.sqlstate, "message": str(e), "after_cancel_s": took}))
        assert conn.execute("SELECT 1").fetchone() == (1,)
    return 0


def busy(dsn, n):
    held = [psycopg.connect(dsn) for _ in range(n)]
    try:
        psycopg.connect(dsn).close()
        print(json.dumps({"connected": True}))
        return 1
    except psycopg.OperationalError as e:
        print(json.dumps({"message": str(e)}))
    finally:
        for c in held:
            c.close()
    # A slot freed is a slot usable.
    time.sleep(0.2)
    psycopg.connect(dsn).close()
    return 0


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "compare":
        sys.exit(compare(args[0], args[1], args[2], args[3], args[4:]))
    if cmd == "concurrent":
        sys.exit(concurrent(args[0], int(args[1]), args[2]))
    if cmd == "refused":
        sys.exit(refused(args[0], args[1]))
    if cmd == "cancel":
        sys.exit(cancel(args[0], args[1]))
    if cmd == "busy":
        sys.exit(busy(args[0], int(args[1])))
    sys.exit(f"unknown command {cmd}")
