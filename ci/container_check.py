#!/usr/bin/env python3
"""Static check of Dockerfile, compose.yaml, deploy/Caddyfile and .dockerignore.

Building the image and starting the compose project need a Docker daemon
with network access, which CI may not have; this checks, offline, the
properties README "Running in containers" promises: a pinned two-stage
build with the toolchain of rust-toolchain.toml, a non-root fixed uid,
no automatic keys, keys from the secret directory, a health check against a
route the server has, read-only nodes with a tmpfs, two vault nodes sharing
one key volume, a pinned PostgreSQL with a health check, one proxy port.
It runs hadolint on the Dockerfile, and `docker compose config` when the
compose plugin exists.

Usage: python3 ci/container_check.py [REPO_DIR]   (needs PyYAML)
Exits 1 listing every failed property.
"""

import os
import re
import shutil
import subprocess
import sys

import yaml

PROBLEMS = []
KEY_DIR = "/run/secrets/arkku"
KEY_FILES = ("root.key", "issuer.key", "audit.key")


def check(ok, what):
    """Records a failed property; returns ok so callers can skip dependants."""
    if not ok:
        PROBLEMS.append(what)
    return ok


def dockerfile_instructions(text):
    """(INSTRUCTION, arguments) pairs, with continuations joined and comments dropped."""
    out, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def expand(value, args):
    """Substitutes ${NAME} and $NAME from the ARG defaults."""
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2), m.group(0)), value)


def pinned(image):
    """A tag with a version number, not latest and no bare name."""
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag != "latest" and re.search(r"\d", tag) is not None


def toolchain(repo):
    with open(os.path.join(repo, "rust-toolchain.toml")) as f:
        m = re.search(r'channel\s*=\s*"([^"]+)"', f.read())
    return m.group(1) if m else None


def check_stages(ins, repo):
    """The build stage on the pinned toolchain, the runtime on a pinned slim Debian."""
    args = {}
    for word, rest in ins:
        if word == "ARG" and "=" in rest:
            k, _, v = rest.partition("=")
            args.setdefault(k.strip(), v.strip())
    froms = [expand(rest.split()[0], args) for word, rest in ins if word == "FROM"]
    if not check(len(froms) >= 2, "Dockerfile: a multi-stage build (two FROM or more)"):
        return
    want = toolchain(repo)
    check(froms[0].startswith(f"rust:{want}-"), f"Dockerfile: build stage on rust:{want}-… (rust-toolchain.toml), got {froms[0]}")
    check(pinned(froms[-1]) and "slim" in froms[-1] and froms[-1].startswith("debian:"),
          f"Dockerfile: runtime on a pinned debian slim image, got {froms[-1]}")
    runs = " ".join(rest for word, rest in ins if word == "RUN")
    check("cargo build --release --locked" in runs, "Dockerfile: cargo build --release --locked")


def runtime_part(ins):
    """The instructions of the last stage."""
    last = max(i for i, (word, _) in enumerate(ins) if word == "FROM")
    return ins[last + 1:]


def check_runtime(ins, repo):
    """Non-root fixed uid, keys from the secret dir, volume, health check, entrypoint."""
    rt = runtime_part(ins)
    words = {word for word, _ in rt}
    users = [rest for word, rest in rt if word == "USER"]
    uid = users[-1].split(":")[0] if users else "0"
    check(uid.isdigit() and uid != "0", "Dockerfile: runtime USER is a numeric uid, not root")
    args = dict(r.split("=", 1) for w, r in rt if w == "ARG" and "=" in r)
    runs = expand(" ".join(rest for word, rest in rt if word == "RUN"), args)
    check(f"useradd --system --uid {uid} " in runs, f"Dockerfile: useradd creates uid {uid} (the USER)")
    env = " ".join(rest for word, rest in rt if word == "ENV")
    check("ARKKU_AUTO_KEYS=false" in env, "Dockerfile: ARKKU_AUTO_KEYS=false (nodes never create keys)")
    for var, name in zip(("ROOT", "ISSUER", "AUDIT"), KEY_FILES):
        check(f"ARKKU_{var}_KEY_FILE={KEY_DIR}/{name}" in env, f"Dockerfile: ARKKU_{var}_KEY_FILE={KEY_DIR}/{name}")
    check("ARKKU_DATA_DIR=/var/lib/arkku" in env, "Dockerfile: ARKKU_DATA_DIR=/var/lib/arkku")
    check("ARKKU_POLICIES=" in env, "Dockerfile: ARKKU_POLICIES names the shipped policies")
    check(any(w == "COPY" and r.startswith("policies/") for w, r in rt), "Dockerfile: COPY policies/ into the image")
    check(any(w == "VOLUME" and "/var/lib/arkku" in r for w, r in rt), "Dockerfile: VOLUME /var/lib/arkku")
    for word in ("HEALTHCHECK", "EXPOSE", "ENTRYPOINT"):
        check(word in words, f"Dockerfile: {word}")
    health = " ".join(rest for word, rest in rt if word == "HEALTHCHECK")
    routes = open(os.path.join(repo, "src/http/health.rs")).read()
    paths = re.findall(r"(/healthz|/readyz)", health)
    check(paths and all(f'path = "{p}"' in routes for p in paths),
          "Dockerfile: HEALTHCHECK asks /healthz or /readyz (src/http/health.rs)")


def check_dockerfile(repo):
    with open(os.path.join(repo, "Dockerfile")) as f:
        ins = dockerfile_instructions(f.read())
    check_stages(ins, repo)
    check_runtime(ins, repo)


def mounts(service):
    """(source, target, read_only) of each short-syntax volume."""
    out = []
    for v in service.get("volumes", []):
        parts = v.split(":")
        out.append((parts[0], parts[1], len(parts) > 2 and "ro" in parts[2].split(",")))
    return out


def healthy_deps(service):
    deps = service.get("depends_on", {})
    return {k for k, v in deps.items() if isinstance(v, dict) and v.get("condition") == "service_healthy"}


def vault_services(services):
    """Services that serve the vault: the arkku image, no profile (started by `up`)."""
    return {n: s for n, s in services.items()
            if "ARKKU_DATABASE_URL" in (s.get("environment") or {}) and not s.get("profiles")}


def check_postgres(services, volumes):
    pg = services.get("postgres")
    if not check(pg is not None, "compose: a postgres service"):
        return
    check(pg.get("image", "").startswith("postgres:") and pinned(pg["image"]), "compose: postgres image pinned")
    check("pg_isready" in " ".join(pg.get("healthcheck", {}).get("test", [])), "compose: postgres healthcheck (pg_isready)")
    data = [src for src, dst, _ in mounts(pg) if dst == "/var/lib/postgresql/data"]
    check(data and data[0] in volumes, "compose: postgres data on a named volume")


def check_vaults(services, volumes):
    """Two or more read-only nodes sharing one key volume, no automatic keys."""
    vaults = vault_services(services)
    check(len(vaults) >= 2, f"compose: two vault services or more, got {sorted(vaults)}")
    key_volumes = set()
    for name, s in vaults.items():
        check(s.get("read_only") is True, f"compose: {name} read_only: true")
        check(any(t.split(":")[0] == "/tmp" for t in s.get("tmpfs", [])), f"compose: {name} has a tmpfs on /tmp")
        keys = [(src, ro) for src, dst, ro in mounts(s) if dst == KEY_DIR]
        if check(len(keys) == 1 and keys[0][1], f"compose: {name} mounts {KEY_DIR} read-only"):
            key_volumes.add(keys[0][0])
        data = [src for src, dst, _ in mounts(s) if dst == "/var/lib/arkku"]
        check(data and data[0] in volumes, f"compose: {name} data on a named volume")
        check(str(s["environment"].get("ARKKU_AUTO_KEYS", "false")).lower() == "false", f"compose: {name} without automatic keys")
        check("postgres" in healthy_deps(s), f"compose: {name} depends on postgres being healthy")
        check("postgres:5432" in s["environment"]["ARKKU_DATABASE_URL"], f"compose: {name} uses the postgres service")
    check(len(key_volumes) == 1 and key_volumes <= set(volumes), f"compose: one shared key volume, got {sorted(key_volumes)}")
    init = services.get("keys-init", {})
    check(init.get("profiles") and any(dst == KEY_DIR and not ro and src in key_volumes for src, dst, ro in mounts(init)),
          "compose: keys-init (in a profile) mounts the key volume writable")
    return vaults


def check_proxy(repo, services, vaults):
    proxy = services.get("proxy")
    if not check(proxy is not None, "compose: a proxy service"):
        return
    check(pinned(proxy.get("image", "")), "compose: proxy image pinned")
    check(len(proxy.get("ports", [])) == 1, "compose: one published port (the proxy's)")
    published = [n for n, s in services.items() if s.get("ports") and n != "proxy"]
    check(not published, f"compose: only the proxy publishes a port, also {published}")
    check(set(vaults) <= healthy_deps(proxy), "compose: proxy depends on every vault node being healthy")
    configs = [src for src, dst, _ in mounts(proxy) if src.startswith("./")]
    if check(len(configs) == 1 and os.path.isfile(os.path.join(repo, configs[0])), "compose: proxy config file in the repo"):
        text = open(os.path.join(repo, configs[0])).read()
        for name in vaults:
            check(f"{name}:8080" in text, f"{configs[0]}: proxies to {name}:8080")


def check_compose(repo):
    with open(os.path.join(repo, "compose.yaml")) as f:
        doc = yaml.safe_load(f)
    services, volumes = doc.get("services", {}), (doc.get("volumes") or {})
    check_postgres(services, volumes)
    vaults = check_vaults(services, volumes)
    check_proxy(repo, services, vaults)


def check_dockerignore(repo):
    with open(os.path.join(repo, ".dockerignore")) as f:
        lines = {line.strip() for line in f if line.strip() and not line.startswith("#")}
    for want in ("/target", "/.git", "*.key", ".env"):
        check(want in lines, f".dockerignore: {want}")
    # What `cargo build` reads: the manifest names the api test, askama.toml
    # the templates, sqlx::migrate! the migrations, include_bytes! the assets.
    needed = ("Cargo.toml", "Cargo.lock", "build.rs", "askama.toml", "rust-toolchain.toml",
              "src", "migrations", "policies", "assets", "tests")
    for path in needed:
        check(not lines & {path, "/" + path, path + "/", "/" + path + "/"}, f".dockerignore: keeps {path} (the build needs it)")


def hadolint(repo):
    """hadolint on the Dockerfile: the one beside this Python (the CI venv) or on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "hadolint")
    exe = beside if os.path.exists(beside) else shutil.which("hadolint")
    if exe is None:
        return "hadolint: not installed, skipped (.ci/run installs it)"
    run = subprocess.run([exe, "--no-color", "Dockerfile"], cwd=repo, capture_output=True, text=True)
    check(run.returncode == 0, f"hadolint Dockerfile: {run.stdout.strip()} {run.stderr.strip()}")
    return "hadolint Dockerfile: ran"


def docker_compose_config(repo):
    """`docker compose config` when the plugin exists (it needs no daemon)."""
    if shutil.which("docker") is None:
        return "docker: not installed, skipped `docker compose config`"
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
    if probe.returncode != 0:
        return "docker compose: not installed, skipped `docker compose config`"
    env = dict(os.environ, POSTGRES_PASSWORD="x")
    run = subprocess.run(["docker", "compose", "config", "--quiet"], cwd=repo, env=env, capture_output=True, text=True)
    check(run.returncode == 0, f"docker compose config: {run.stderr.strip()}")
    return "docker compose config: ran"


def main():
    repo = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    check_dockerfile(repo)
    check_compose(repo)
    check_dockerignore(repo)
    print(hadolint(repo))
    print(docker_compose_config(repo))
    if PROBLEMS:
        print("container check failed:", *PROBLEMS, sep="\n  ")
        return 1
    print("container files: ok (Dockerfile, compose.yaml, deploy/Caddyfile, .dockerignore)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
