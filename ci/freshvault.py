"""A fresh arkku vault for a walk: the debug binary, a new data dir, a free
port and, on PostgreSQL, a database that does not exist yet.

The walks in this directory (the README's, the generated client's) start
from nothing, as a new user would, so what they show holds for a first run.
The vault is stopped, its database dropped and its directory removed when
the walk ends, pass or fail. Standard library only.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_BINARY = os.path.join(REPO, "target", "debug", "arkku")

# How long `serve` may take to answer /readyz (migrations on a busy machine).
READY_SECONDS = 90


def say(msg):
    print(f"walk: {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_database(url, name):
    """`url` with its database name replaced by `name`."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def redact(text):
    """Bearer tokens out of anything printed."""
    return re.sub(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+", r"\1…", text)


class FreshVault:
    """`with FreshVault(...) as v:` a running vault; `v.env` configures any
    `arkku` command for it, `v.url` is its base URL, `v.dir` a scratch dir."""

    def __init__(self, binary=DEFAULT_BINARY, postgres=None, keep=False):
        if not os.access(binary, os.X_OK):
            raise SystemExit(f"walk: {binary} not found: run `cargo build` first")
        self.binary = binary
        self.postgres = postgres
        self.keep = keep
        self.dir = tempfile.mkdtemp(prefix="arkku-walk-")
        self.database = None
        self.server = None
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARKKU_")}
        env.update(
            NO_COLOR="1",
            ARKKU_LISTEN=f"127.0.0.1:{port}",
            ARKKU_DATA_DIR=os.path.join(self.dir, "arkku-data"),
            ARKKU_LOG="info",
            # Sign-in codes go to <data dir>/outbox.jsonl, where the README's
            # walk reads them (README "How a customer signs in").
            ARKKU_NOTIFY="file",
        )
        if postgres:
            self.database = f"arkku_walk_{uuid.uuid4().hex[:12]}"
            env["ARKKU_DATABASE_URL"] = with_database(postgres, self.database)
        self.env = env
        self.log_path = os.path.join(self.dir, "serve.log")

    def backend(self):
        return "postgres" if self.postgres else "sqlite"

    def __enter__(self):
        try:
            self._start()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def _start(self):
        say(f"a fresh vault on {self.backend()} at {self.url} (data in {self.dir})")
        log = open(self.log_path, "wb")
        self.server = subprocess.Popen(
            [self.binary, "serve"],
            cwd=REPO,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + READY_SECONDS
        while True:
            if self.server.poll() is not None:
                self.show_log()
                raise SystemExit(f"walk: arkku serve exited with {self.server.returncode}")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.show_log()
                raise SystemExit(f"walk: arkku serve not ready after {READY_SECONDS} s")
            time.sleep(0.2)

    def show_log(self, lines=40):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                tail = f.read().splitlines()[-lines:]
        except OSError:
            return
        say(f"the last lines of the server's log ({self.log_path}):")
        for line in tail:
            print("    " + redact(line), file=sys.stderr)

    def server_errors(self):
        """Lines the server logged at ERROR level."""
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return [redact(l) for l in f if re.search(r"\bERROR\b", l)]
        except OSError:
            return []

    def __exit__(self, exc_type, exc, tb):
        if self.server is not None and self.server.poll() is None:
            os.killpg(self.server.pid, signal.SIGTERM)
            try:
                self.server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, signal.SIGKILL)
                self.server.wait()
        if self.database:
            self._drop_database()
        if self.keep:
            say(f"kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        return False

    def _drop_database(self):
        r = subprocess.run(
            ["psql", "-q", "-v", "ON_ERROR_STOP=1", self.postgres, "-c",
             f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True, check=False)
        if r.returncode != 0:
            say(f"could not drop the database {self.database}: {r.stderr.strip()}")
