#!/usr/bin/env python3
"""Generates a Python client from a fresh vault's /openapi.json and runs the
README's walk with it.

The OpenAPI document is only as good as what a generator written elsewhere
makes of it. This generates a client with openapi-python-client (PyPI,
pinned with everything it needs in ci/openapi-python-client.txt, installed
into a venv under target/ that is reused while the pins are unchanged),
refusing any warning, and runs ci/client_walk_steps.py with it: the README's
walk (create, look up, read, reveal, contacts, consents, interactions,
exports, erasure, audit), each step checked, with every answer's status
documented (the client raises on an undocumented one).

Usage: cargo build && python3 ci/client_walk.py [--postgres ADMIN_URL]
"""

import argparse
import os
import shutil
import subprocess
import sys
import time
import urllib.request

sys.dont_write_bytecode = True  # the walks leave nothing in the working tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from freshvault import DEFAULT_BINARY, REPO, FreshVault, say  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PINS = os.path.join(HERE, "openapi-python-client.txt")
VENV = os.path.join(REPO, "target", "ci-client-venv")
PACKAGE = "arkku_client"


def venv():
    """The venv with exactly the pinned packages; made again when the pins change."""
    kept = os.path.join(VENV, "pins.txt")
    with open(PINS, "rb") as f:
        pins = f.read()
    if os.path.exists(kept):
        with open(kept, "rb") as f:
            if f.read() == pins:
                return VENV
    say(f"installing the pinned openapi-python-client into {VENV}")
    shutil.rmtree(VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    pip = [os.path.join(VENV, "bin", "pip"), "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "install", "--no-deps", "-r", PINS], check=True)
    subprocess.run([*pip, "check"], check=True)
    with open(kept, "wb") as f:
        f.write(pins)
    return VENV


def generate(env_dir, document, out_dir):
    bin_dir = os.path.join(env_dir, "bin")
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    r = subprocess.run(
        [os.path.join(bin_dir, "openapi-python-client"), "generate",
         "--path", document, "--output-path", os.path.join(out_dir, PACKAGE),
         "--meta", "none", "--fail-on-warning"],
        env=env, cwd=out_dir, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        raise SystemExit("client: openapi-python-client could not generate a client without warnings")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--postgres", metavar="ADMIN_URL",
                    help="run on PostgreSQL: a new database on this server, dropped afterwards")
    ap.add_argument("--binary", default=DEFAULT_BINARY, help="the arkku binary (target/debug/arkku)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = ap.parse_args()
    env_dir = venv()
    started = time.monotonic()
    with FreshVault(args.binary, args.postgres, args.keep) as vault:
        document = os.path.join(vault.dir, "openapi.json")
        with urllib.request.urlopen(vault.url + "/openapi.json", timeout=10) as r, \
                open(document, "wb") as f:
            f.write(r.read())
        out = os.path.join(vault.dir, "client")
        os.makedirs(out)
        generate(env_dir, document, out)
        env = dict(vault.env, PYTHONPATH=out, WALK_ARKKU=vault.binary, WALK_URL=vault.url)
        r = subprocess.run(
            [os.path.join(env_dir, "bin", "python"), os.path.join(HERE, "client_walk_steps.py")],
            env=env, cwd=vault.dir, stdin=subprocess.DEVNULL, check=False)
        ok = r.returncode == 0
        errors = vault.server_errors()
        if errors:
            say("the server logged errors:\n" + "".join("    " + e for e in errors[-10:]))
            ok = False
        if not ok:
            vault.show_log()
        backend = vault.backend()
    took = time.monotonic() - started
    if not ok:
        say(f"generated-client walk FAILED on {backend} after {took:.1f} s")
        sys.exit(1)
    say(f"generated-client walk passed on {backend}, {took:.1f} s")


if __name__ == "__main__":
    main()
