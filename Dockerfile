# syntax=docker/dockerfile:1
#
# arkku in a container: README "Running in containers".
#
# Two stages: the official Rust image (the toolchain of rust-toolchain.toml)
# builds the release binary; a slim Debian of the same release runs it as a
# non-root user with nothing else of the build. The root filesystem can be
# read-only: the server writes only to its data directory (a volume) and
# SQLite's temporary files go to /tmp (a tmpfs in compose.yaml).
#
# Bump RUST_VERSION with rust-toolchain.toml, and the two Debian tags together
# (a binary built on one Debian release runs on that release's glibc).

ARG RUST_VERSION=1.95.0
ARG DEBIAN_RELEASE=bookworm
ARG DEBIAN_RUNTIME=debian:12.12-slim

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
ARG RUST_VERSION
WORKDIR /src
# rust-toolchain.toml would ask rustup for the same channel plus rustfmt and
# clippy, which a release build needs neither of: the image's toolchain is it.
ENV RUSTUP_TOOLCHAIN=${RUST_VERSION} \
    CARGO_TERM_COLOR=never
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin arkku \
    && install -D -m 0755 target/release/arkku /out/arkku

FROM ${DEBIAN_RUNTIME} AS runtime
# A fixed uid and gid, so that key files and volumes made by one container
# (the one-time `keys init`) are readable by the others, and a host directory
# can be chowned to it: 10001:10001.
ARG ARKKU_UID=10001
RUN groupadd --system --gid ${ARKKU_UID} arkku \
    && useradd --system --uid ${ARKKU_UID} --gid arkku --no-create-home \
        --home-dir /var/lib/arkku --shell /usr/sbin/nologin arkku \
    && install -d -o arkku -g arkku -m 0700 /var/lib/arkku \
    && install -d -o arkku -g arkku -m 0700 /run/secrets/arkku

COPY --from=build /out/arkku /usr/local/bin/arkku
# The policies the image runs with; mount another directory over
# /etc/arkku/policies (read-only) to use your own.
COPY policies/ /etc/arkku/policies/

# Keys come from the mounted secret directory, never from the image, and are
# never created by a serving node (--no-auto-keys): README "Running in
# containers" creates them once.
ENV ARKKU_LISTEN=0.0.0.0:8080 \
    ARKKU_DATA_DIR=/var/lib/arkku \
    ARKKU_POLICIES=/etc/arkku/policies \
    ARKKU_ROOT_KEY_FILE=/run/secrets/arkku/root.key \
    ARKKU_ISSUER_KEY_FILE=/run/secrets/arkku/issuer.key \
    ARKKU_AUDIT_KEY_FILE=/run/secrets/arkku/audit.key \
    ARKKU_AUTO_KEYS=false \
    TMPDIR=/tmp

USER 10001:10001
WORKDIR /var/lib/arkku
VOLUME ["/var/lib/arkku"]
EXPOSE 8080

# GET /readyz: 200 once the database answers, audit appends commit and keys
# and policies are loaded. The slim image has no curl; bash's /dev/tcp sends
# the request and the status line is checked. Port 8080 is ARKKU_LISTEN's.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /readyz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

ENTRYPOINT ["/usr/local/bin/arkku"]
CMD ["serve"]
