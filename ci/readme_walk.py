#!/usr/bin/env python3
"""Runs the README's walk-through exactly as written against a fresh vault.

A README that is not run drifts from the code until a new user finds out.
This takes the ```sh blocks that follow a `<!-- walk -->` line in README.md,
in order, and runs them in one `bash -euo pipefail` session (variables carry
from block to block), from the repository root, against a fresh vault (see
freshvault.py). The text is not edited: the only additions are a first line
that sets up the session, and each `# →` comment, which shows the answer to
expect, is turned into a check of the last answer. The generated script keeps
README.md's line numbers, so a failure names the README line.

`curl` and `arkku` are wrappers on PATH that record each answer (status and
body) for those checks. A request answered 4xx or 5xx fails the walk unless
the `# →` line right after it names that status. A `# →` line checks the
status it names and each `"key": value` it shows somewhere in the JSON answer
(`…` matches anything, `"Call back…"` a string that starts so, `[{…}]` a
non-empty list, `[]` an empty one).

Usage: cargo build && python3 ci/readme_walk.py [--postgres ADMIN_URL]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # the walks leave nothing in the working tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from freshvault import DEFAULT_BINARY, REPO, FreshVault, redact, say  # noqa: E402

MARK = "<!-- walk -->"
ARROW = "# →"


# --- reading the walk out of README.md ---------------------------------------


def walk_blocks(lines):
    """[(index of the first line, [lines])] of the marked ```sh blocks."""
    blocks = []
    i = 0
    while i < len(lines):
        if lines[i].strip() != MARK:
            i += 1
            continue
        j = i + 1
        if j >= len(lines) or lines[j].strip() != "```sh":
            raise SystemExit(f"walk: README.md:{i + 1}: {MARK} must be followed by a ```sh block")
        k = j + 1
        while k < len(lines) and lines[k].strip() != "```":
            k += 1
        if k >= len(lines):
            raise SystemExit(f"walk: README.md:{j + 1}: the block is not closed")
        blocks.append((j + 1, lines[j + 1 : k]))
        i = k + 1
    if not blocks:
        raise SystemExit(f"walk: README.md has no {MARK} block")
    return blocks


def scan(line, quote):
    """Shell quoting across one line: (quote open at its end, index where a
    comment starts or None). `quote` is the quote open at its start."""
    i = 0
    while i < len(line):
        c = line[i]
        if quote == "'":
            if c == "'":
                quote = None
        elif quote == '"':
            if c == "\\":
                i += 1
            elif c == '"':
                quote = None
        elif c == "\\":
            i += 1
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1] in " \t;|&("):
            return quote, i
        i += 1
    return quote, None


def build_script(lines, blocks):
    """The walk as a script with README.md's line numbers (every other line
    blank), and the expectations by line number."""
    out = [""] * len(lines)
    out[0] = 'source "$WALK_DIR/prelude.sh"'
    expects = {}
    for first, block in blocks:
        quote = None
        n = 0
        while n < len(block):
            line, no = block[n], first + n + 1
            start_quote = quote
            quote, comment = scan(line, quote)
            out[no - 1] = line
            if start_quote is None and comment is not None and line[comment:].startswith(ARROW):
                text = line[comment + len(ARROW):].strip()
                # Continuation lines: comments indented by two or more spaces.
                while n + 1 < len(block) and re.match(r"^\s*#\s{2,}\S", block[n + 1]):
                    n += 1
                    out[first + n] = block[n]
                    text += " " + block[n].strip().lstrip("#").strip()
                code = line[:comment].rstrip()
                call = f"__expect {no}"
                out[no - 1] = f"{code}; {call}" if code.strip() else call
                expects[no] = text
            n += 1
    return out, expects


PRELUDE = """\
# The README walk's shell session, made by ci/readme_walk.py.
set -euo pipefail
shopt -s inherit_errexit
trap '__rc=$?; echo "walk: README.md:$LINENO: the walk stopped here (exit $__rc)" >&2' ERR
__expect() { "$WALK_PYTHON" "$WALK_RUNNER" --check "$1"; }
"""


def wrapper(kind):
    return f'#!/bin/sh\nexec "$WALK_PYTHON" "$WALK_RUNNER" --as-{kind} "$@"\n'


# --- the wrappers: record every answer -----------------------------------------


def record_dir():
    return os.environ["WALK_DIR"]


def refuse_after_unexpected():
    path = os.path.join(record_dir(), "unexpected")
    if os.path.exists(path):
        with open(path, encoding="utf-8", errors="replace") as f:
            sys.stderr.write("walk: an earlier answer failed and no `# →` line expected it:\n")
            sys.stderr.write(f.read())
        sys.exit(1)


def record(status, body, what):
    d = record_dir()
    with open(os.path.join(d, "last.json"), "w") as f:
        json.dump({"status": status, "what": what}, f)
    with open(os.path.join(d, "last.body"), "wb") as f:
        f.write(body)
    with open(os.path.join(d, "transcript"), "a") as f:
        f.write(f"{what} -> {status if status is not None else 'done'}\n")


def as_curl(args):
    refuse_after_unexpected()
    body_path = os.path.join(record_dir(), "curl.body")
    if os.path.exists(body_path):
        os.remove(body_path)
    r = subprocess.run(
        [os.environ["WALK_CURL"], "-sS", "-o", body_path, "-w", "%{http_code}", *args],
        stdout=subprocess.PIPE, check=False)
    body = b""
    if os.path.exists(body_path):
        with open(body_path, "rb") as f:
            body = f.read()
    sys.stdout.buffer.write(body)
    sys.stdout.flush()
    if body and not body.endswith(b"\n"):
        # JSON answers end without a newline; keep the log readable without
        # changing what the walk's command writes.
        sys.stderr.write("\n")
    code = r.stdout.decode().strip()
    status = int(code) if code.isdigit() else 0
    method = next((args[i + 1] for i, a in enumerate(args[:-1]) if a == "-X"), None)
    if method is None:
        method = "POST" if any(a in ("-d", "--data") for a in args) else "GET"
    url = next((a for a in args if "://" in a), "?")
    what = f"curl {method} {url}"
    record(status, body, what)
    if status >= 400 or status == 0:
        with open(os.path.join(record_dir(), "unexpected"), "w") as f:
            f.write(f"  {what} answered {status}: {redact(body[:2000].decode(errors='replace'))}\n")
    sys.exit(r.returncode)


def as_arkku(args):
    refuse_after_unexpected()
    r = subprocess.run([os.environ["WALK_ARKKU"], *args], stdout=subprocess.PIPE, check=False)
    sys.stdout.buffer.write(r.stdout)
    sys.stdout.flush()
    record(None, r.stdout, "arkku " + " ".join(args[:2]))
    sys.exit(r.returncode)


# --- the checks ------------------------------------------------------------------

TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|…|[\[\]{}:,]|[^\s\[\]{}:,"…]+')


def expectation(text):
    """(status or None, [(key, kind, value)]) from a `# →` text."""
    m = re.match(r"^(\d{3})\b\s*(.*)$", text)
    status, sketch = (int(m.group(1)), m.group(2)) if m else (None, text)
    toks = TOKEN.findall(sketch)
    wants = []
    for i, t in enumerate(toks):
        if not (t.startswith('"') and i + 2 < len(toks) and toks[i + 1] == ":"):
            continue
        key, v = json.loads(t), toks[i + 2]
        if v.startswith('"'):
            s = json.loads(v)
            if s == "…":
                wants.append((key, "exists", None))
            elif "…" in s:
                wants.append((key, "prefix", s.split("…")[0]))
            else:
                wants.append((key, "eq", s))
        elif v in ("true", "false", "null") or re.fullmatch(r"-?\d+(\.\d+)?", v):
            wants.append((key, "eq", json.loads(v)))
        elif v == "[":
            nxt = toks[i + 3] if i + 3 < len(toks) else "…"
            wants.append((key, "empty" if nxt == "]" else "list" if nxt == "…" else "nonempty", None))
        elif v == "{":
            wants.append((key, "object", None))
        else:
            wants.append((key, "exists", None))
    return status, wants


def dicts(tree):
    if isinstance(tree, dict):
        yield tree
        for v in tree.values():
            yield from dicts(v)
    elif isinstance(tree, list):
        for v in tree:
            yield from dicts(v)


def holds(d, key, kind, value):
    if key not in d:
        return False
    got = d[key]
    return {
        "eq": lambda: got == value and type(got) is type(value),
        "prefix": lambda: isinstance(got, str) and got.startswith(value),
        "empty": lambda: got == [],
        "nonempty": lambda: isinstance(got, list) and len(got) > 0,
        "list": lambda: isinstance(got, list),
        "object": lambda: isinstance(got, dict),
        "exists": lambda: True,
    }[kind]()


def check(line_no):
    d = record_dir()
    with open(os.path.join(d, "expect.json")) as f:
        text = json.load(f)[str(line_no)]
    with open(os.path.join(d, "last.json")) as f:
        last = json.load(f)
    with open(os.path.join(d, "last.body"), "rb") as f:
        body = f.read()
    status, wants = expectation(text)
    problems = []
    if status is not None and last["status"] != status:
        problems.append(f"expected status {status}, got {last['status']}")
    if status is None and last["status"] is not None and last["status"] >= 400:
        problems.append(f"expected a success, got {last['status']}")
    if wants:
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
            problems.append("expected a JSON answer")
        found = list(dicts(doc))
        for key, kind, value in wants:
            if not any(holds(x, key, kind, value) for x in found):
                shown = "" if value is None else f" {json.dumps(value, ensure_ascii=False)}"
                problems.append(f'no "{key}" ({kind}{shown}) in the answer')
    if problems:
        sys.stderr.write(f"walk: README.md:{line_no}: {last['what']} did not answer as shown:\n")
        sys.stderr.write(f"  shown:   {text}\n")
        for p in problems:
            sys.stderr.write(f"  problem: {p}\n")
        sys.stderr.write(f"  answer:  {redact(body[:3000].decode(errors='replace'))}\n")
        sys.exit(1)
    if last["status"] == status:
        try:
            os.remove(os.path.join(d, "unexpected"))
        except FileNotFoundError:
            pass
    with open(os.path.join(d, "checked"), "a") as f:
        f.write(f"{line_no}\n")


# --- running it ------------------------------------------------------------------


def tree_state():
    """What is in the working tree: top-level names, and git's view if any."""
    names = sorted(os.listdir(REPO))
    r = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=REPO, capture_output=True, text=True, check=False)
    return names, r.stdout if r.returncode == 0 else ""


def run_walk(vault, readme):
    with open(readme, encoding="utf-8") as f:
        lines = f.read().split("\n")
    blocks = walk_blocks(lines)
    script, expects = build_script(lines, blocks)
    d = os.path.join(vault.dir, "walk")
    bin_dir = os.path.join(d, "bin")
    tmp = os.path.join(vault.dir, "tmp")
    for p in (bin_dir, tmp):
        os.makedirs(p)
    with open(os.path.join(d, "walk.sh"), "w") as f:
        f.write("\n".join(script) + "\n")
    with open(os.path.join(d, "prelude.sh"), "w") as f:
        f.write(PRELUDE)
    with open(os.path.join(d, "expect.json"), "w") as f:
        json.dump({str(k): v for k, v in expects.items()}, f, ensure_ascii=False)
    for kind in ("curl", "arkku"):
        path = os.path.join(bin_dir, kind)
        with open(path, "w") as f:
            f.write(wrapper(kind))
        os.chmod(path, 0o755)
    real_curl = subprocess.run(["sh", "-c", "command -v curl"], capture_output=True, text=True, check=False)
    env = dict(vault.env)
    env.update(
        PATH=bin_dir + os.pathsep + env.get("PATH", ""),
        TMPDIR=tmp,
        WALK_DIR=d,
        WALK_RUNNER=os.path.abspath(__file__),
        WALK_PYTHON=sys.executable,
        WALK_CURL=real_curl.stdout.strip() or "curl",
        WALK_ARKKU=vault.binary,
    )
    say(f"{len(blocks)} blocks, {len(expects)} expected answers, from {readme}")
    r = subprocess.run(["bash", os.path.join(d, "walk.sh")], cwd=REPO, env=env,
                       stdin=subprocess.DEVNULL, timeout=900, check=False)
    failed = r.returncode != 0
    if not failed and os.path.exists(os.path.join(d, "unexpected")):
        with open(os.path.join(d, "unexpected")) as f:
            say("the last answer failed and no `# →` line expected it:\n" + f.read())
        failed = True
    checked = 0
    if os.path.exists(os.path.join(d, "checked")):
        with open(os.path.join(d, "checked")) as f:
            checked = len(f.read().split())
    if not failed and checked != len(expects):
        say(f"only {checked} of {len(expects)} expected answers were checked")
        failed = True
    if failed and os.path.exists(os.path.join(d, "transcript")):
        with open(os.path.join(d, "transcript")) as f:
            tail = f.read().splitlines()[-12:]
        say("the last commands:\n" + "\n".join("    " + redact(t) for t in tail))
    return not failed, len(blocks), checked


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "--as-curl":
        as_curl(sys.argv[2:])
    if len(sys.argv) >= 2 and sys.argv[1] == "--as-arkku":
        as_arkku(sys.argv[2:])
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(int(sys.argv[2]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--postgres", metavar="ADMIN_URL",
                    help="run on PostgreSQL: a new database on this server, dropped afterwards")
    ap.add_argument("--binary", default=DEFAULT_BINARY, help="the arkku binary (target/debug/arkku)")
    ap.add_argument("--readme", default=os.path.join(REPO, "README.md"))
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = ap.parse_args()
    before = tree_state()
    started = time.monotonic()
    with FreshVault(args.binary, args.postgres, args.keep) as vault:
        ok, blocks, checked = run_walk(vault, args.readme)
        errors = vault.server_errors()
        if errors:
            say("the server logged errors:\n" + "".join("    " + e for e in errors[-10:]))
            ok = False
        if not ok:
            vault.show_log()
        backend = vault.backend()
    after = tree_state()
    if after != before:
        new = sorted(set(after[0]) - set(before[0]))
        say(f"the walk changed the working tree: {new or ''}\n{after[1]}")
        ok = False
    took = time.monotonic() - started
    if not ok:
        say(f"README walk FAILED on {backend} after {took:.1f} s")
        sys.exit(1)
    say(f"README walk passed on {backend}: {blocks} blocks, {checked} answers checked, {took:.1f} s")


if __name__ == "__main__":
    main()
