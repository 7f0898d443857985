"""Validates OCSF events against the OCSF 1.1.0 schema, independently of auditlake.

The schema is compiled from its own JSON (tests/ocsf/schema-1.1.0, the ocsf/ocsf-schema repository
at v1.1.0) by the `ocsf-lib` package, with no profiles (auditlake's events declare none). Then
every event of the given NDJSON and Parquet files (folders are searched) is checked:

- its class exists, its category and `type_uid` (class * 100 + activity) agree with the class;
- every required attribute is present, at every depth;
- every attribute is one the class or object defines (except inside `unmapped`), of the right
  type: integers, strings, booleans, objects, arrays; `ip_t` and `email_t` by the schema's regex;
- every enum attribute (`*_id`) holds one of the enum's values.

Prints one JSON object: counts by class and by class and day, the SHA-256 of the sorted
`metadata.uid`s, how many uids repeat, files not sorted by time or holding more than one class,
and the first errors. Exit status 0 when there are no errors.

    python validate.py SCHEMA_DIR PATH...
"""

import hashlib
import json
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import datetime, timezone

PROFILES = ["cloud", "container", "datetime", "host", "load_balancer", "network_proxy", "security_control"]


def compile_schema(path):
    out = subprocess.run(
        [sys.executable, "-m", "ocsf.compile", path, "--ignore-profile", *PROFILES],
        check=True,
        capture_output=True,
    ).stdout
    return json.loads(out)


class Validator:
    def __init__(self, schema):
        self.schema = schema
        self.classes = {c["uid"]: c for c in schema["classes"].values()}
        self.objects = schema["objects"]
        self.types = schema["types"]
        self.categories = {c["uid"]: name for name, c in schema["categories"].items()}

    def object_of(self, attr):
        name = attr.get("object_type") or attr.get("type")
        return self.objects.get(name) if name not in self.types else None

    def check(self, event):
        errors = []
        uid = event.get("class_uid")
        cls = self.classes.get(uid)
        if cls is None:
            return [f"unknown class_uid {uid!r}"]
        category = cls.get("category_uid") or (uid // 1000)
        if event.get("category_uid") != category:
            errors.append(f"category_uid {event.get('category_uid')!r} is not {category} for class {uid}")
        activity = event.get("activity_id")
        if isinstance(activity, int) and event.get("type_uid") != uid * 100 + activity:
            errors.append(f"type_uid {event.get('type_uid')!r} is not {uid * 100 + activity}")
        self.check_attributes(event, cls["attributes"], cls["name"], errors)
        return errors

    def check_attributes(self, value, attributes, where, errors):
        for name, attr in attributes.items():
            if attr.get("requirement") == "required" and value.get(name) is None:
                errors.append(f"{where}.{name}: required, missing")
        for name, item in value.items():
            if item is None:
                continue
            attr = attributes.get(name)
            if attr is None:
                errors.append(f"{where}.{name}: not an attribute of {where.split('.')[-1] if '.' in where else where}")
                continue
            self.check_value(item, attr, f"{where}.{name}", errors)

    def check_value(self, item, attr, where, errors):
        if attr.get("is_array"):
            if not isinstance(item, list):
                errors.append(f"{where}: expected an array, got {type(item).__name__}")
                return
            for i, element in enumerate(item):
                self.check_one(element, attr, f"{where}[{i}]", errors)
        else:
            self.check_one(item, attr, where, errors)

    def check_one(self, item, attr, where, errors):
        obj = self.object_of(attr)
        if obj is not None:
            if not isinstance(item, dict):
                errors.append(f"{where}: expected an object, got {type(item).__name__}")
            elif obj.get("name") != "object":
                self.check_attributes(item, obj["attributes"], where, errors)
            return
        type_name = attr.get("type")
        if where.endswith(".unmapped") or type_name == "object":
            if not isinstance(item, dict):
                errors.append(f"{where}: expected an object")
            return
        base = type_name
        t = self.types.get(type_name, {})
        if t.get("type"):
            base = t["type"]
        if base in ("integer_t", "long_t", "timestamp_t", "port_t"):
            if not isinstance(item, int) or isinstance(item, bool):
                errors.append(f"{where}: expected an integer, got {item!r}")
                return
        elif base == "boolean_t":
            if not isinstance(item, bool):
                errors.append(f"{where}: expected a boolean, got {item!r}")
        elif base == "float_t":
            if not isinstance(item, (int, float)):
                errors.append(f"{where}: expected a number, got {item!r}")
        elif base in ("string_t", "json_t") or base is None:
            if base == "string_t" and not isinstance(item, str):
                errors.append(f"{where}: expected a string, got {item!r}")
                return
        regex = t.get("regex")
        if regex and isinstance(item, str) and not re.search(regex, item):
            errors.append(f"{where}: {item!r} does not match {type_name}")
        enum = attr.get("enum")
        if enum and str(item) not in enum:
            errors.append(f"{where}: {item!r} is not in the enum ({', '.join(sorted(enum))})")


def events_of(path):
    if path.endswith(".ndjson"):
        with open(path) as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    yield f"{path}:{n}", json.loads(line)
    elif path.endswith(".parquet"):
        import pyarrow.parquet as pq

        for n, row in enumerate(pq.read_table(path).to_pylist(), 1):
            yield f"{path}#{n}", plain(row)


def plain(value):
    """A Parquet row as JSON: nulls dropped, maps (lists of key/value pairs) as objects."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        if value and all(isinstance(e, tuple) and len(e) == 2 for e in value):
            return {k: v for k, v in value}
        return [plain(v) for v in value]
    return value


def files(paths):
    for p in paths:
        if os.path.isdir(p):
            for root, _, names in os.walk(p):
                for name in sorted(names):
                    yield os.path.join(root, name)
        else:
            yield p


def main():
    schema_dir, paths = sys.argv[1], sys.argv[2:]
    validator = Validator(compile_schema(schema_dir))
    by_class, by_class_day, uids, errors, error_count = Counter(), Counter(), [], [], 0
    unsorted, mixed = [], []
    for path in files(paths):
        times, classes = [], set()
        for where, event in events_of(path):
            found = validator.check(event)
            error_count += len(found)
            errors.extend(f"{where}: {e}" for e in found[: max(0, 20 - len(errors))])
            uid = event.get("class_uid")
            by_class[uid] += 1
            time = event.get("time")
            day = datetime.fromtimestamp(time / 1000, tz=timezone.utc).strftime("%Y-%m-%d") if isinstance(time, int) else "?"
            by_class_day[f"{uid}/{day}"] += 1
            uids.append(event.get("metadata", {}).get("uid", ""))
            times.append(time if isinstance(time, int) else 0)
            classes.add(uid)
        if times != sorted(times):
            unsorted.append(path)
        if len(classes) > 1:
            mixed.append(path)
    repeated = sum(n - 1 for n in Counter(uids).values() if n > 1)
    uids.sort()
    print(
        json.dumps(
            {
                "events": len(uids),
                "by_class": {str(k): v for k, v in sorted(by_class.items())},
                "by_class_day": dict(sorted(by_class_day.items())),
                "uids_sha256": hashlib.sha256("\n".join(uids).encode()).hexdigest(),
                "repeated_uids": repeated,
                "unsorted_files": unsorted,
                "mixed_class_files": mixed,
                "error_count": error_count,
                "errors": errors,
            }
        )
    )
    sys.exit(1 if error_count else 0)


if __name__ == "__main__":
    main()
