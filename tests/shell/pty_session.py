"""Drives `auditlake shell` through a pseudo-terminal, as a person at a keyboard would, for
tests/shell.rs. Usage: pty_session.py BIN LAKE EXPECTED_COUNT HISTORY_FILE

Each step types a line (or Ctrl-C) and waits for what the shell must show; any step that times
out fails with the screen so far. Exits 0 when every step passed."""
import fcntl
import os
import pty
import re
import select
import signal
import subprocess
import sys
import termios
import time

binary, lake, count, history = sys.argv[1:5]
leader, follower = pty.openpty()


def own_terminal():
    # A session of its own whose controlling terminal is the pty, so that Ctrl-C typed there
    # becomes SIGINT for the shell, as at a real terminal.
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


proc = subprocess.Popen(
    [binary, "--lake", lake, "shell", "--history", history],
    stdin=follower, stdout=follower, stderr=follower, close_fds=True, preexec_fn=own_terminal,
    env={**os.environ, "TERM": "xterm", "COLUMNS": "200"},
)
os.close(follower)
screen = ""
seen = 0  # the screen up to here has been matched already


def read_until(pattern, timeout=60):
    """Waits for `pattern` in what the shell showed since the last match."""
    global screen, seen
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = re.compile(pattern).search(screen, seen)
        if found:
            seen = found.end()
            return
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                screen += os.read(leader, 65536).decode("utf-8", "replace")
            except OSError:
                break
    sys.exit(f"timed out waiting for {pattern!r}; screen:\n{screen[-3000:]}")


def type_line(text):
    os.write(leader, text.encode() + b"\r")


PROMPT = r"auditlake> "
read_until(PROMPT)
# A statement over three lines: the continuation prompt, then the rows.
type_line("SELECT action, count(*) AS n")
read_until(r"auditlake-> ")
type_line("FROM audit_log GROUP BY action")
read_until(r"auditlake-> ")
type_line("ORDER BY n DESC LIMIT 3;")
read_until(r"\(3 rows\)")
read_until(PROMPT)
# \d and \d audit_log.
type_line("\\d")
read_until(r"by_action\s+view")
read_until(PROMPT)
type_line("\\d audit_log")
read_until(r"resource_name")
read_until(PROMPT)
# An error, then a good query: the shell is still there.
type_line("SELECT nonsense FROM audit_log;")
read_until(r"error: .*nonsense")
read_until(PROMPT)
type_line("\\timing")
read_until(r"Timing is on")
read_until(PROMPT)
type_line("SELECT count(*) AS total FROM audit_log;")
read_until(rf"\b{count}\b")
read_until(r"Time: [0-9.]+ ms")
read_until(PROMPT)
# Writes are refused, as in `query`.
type_line("DROP TABLE audit_log;")
read_until(r"refused")
read_until(PROMPT)
# A named query with a parameter, and a format switch.
type_line("\\format csv")
read_until(PROMPT)
type_line("SELECT count(*) AS n FROM by_action;")
read_until(r"\nn\r?\n\d+")
read_until(PROMPT)
# Ctrl-C during a query that would never end: cancelled, and the shell keeps going.
type_line("\\format table")
read_until(PROMPT)
# (the filter keeps DataFusion from answering the count from the files' statistics)
type_line("SELECT count(*) FROM audit_log a, audit_log b, audit_log c, audit_log d, audit_log e WHERE a.id <> 'x';")
time.sleep(1.5)
os.write(leader, b"\x03")
read_until(r"cancelled", timeout=20)
read_until(PROMPT)
type_line("SELECT 40 + 2 AS answer;")
read_until(r"\b42\b")
# Ctrl-C at the prompt clears the line; \q leaves.
type_line("SELECT")
read_until(r"auditlake-> ")
os.write(leader, b"\x03")
read_until(PROMPT)
type_line("\\q")
try:
    code = proc.wait(timeout=20)
except subprocess.TimeoutExpired:
    os.killpg(proc.pid, signal.SIGKILL)
    sys.exit(f"the shell did not quit; screen:\n{screen[-3000:]}")
if code != 0:
    sys.exit(f"the shell exited {code}; screen:\n{screen[-3000:]}")
if "SELECT 40 + 2" not in open(history).read():
    sys.exit("the history file does not hold the session's statements")
print("ok")
