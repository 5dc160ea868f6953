# syntax=docker/dockerfile:1
#
# msrp-relay container image.
#
#   docker build -t msrp-relay .
#   docker run -d --name msrp-relay -p 2855:2855 \
#       -v /etc/msrp-relay:/etc/msrp-relay:ro msrp-relay
#
# The image runs `msrp-relay serve --config /etc/msrp-relay/msrp-relay.toml` as the
# unprivileged user msrp-relay (uid/gid 10001): mount the configuration, the users file and
# the certificates at /etc/msrp-relay, readable by that uid. Any other command of the binary
# works too, e.g. `docker run --rm msrp-relay hash-password --user alice --realm r.example`.
# Needs BuildKit (the default builder of current Docker; with the legacy docker-compose
# 1.x set DOCKER_BUILDKIT=1 COMPOSE_DOCKER_CLI_BUILD=1) for the cache mounts below.

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
COPY . .
# The crate registry and the target directory live in BuildKit cache mounts, so a rebuild
# after a source change downloads nothing and recompiles only the workspace crates. The
# binary is copied out of the cache mount because mounts are not part of the image.
RUN --mount=type=cache,id=msrp-relay-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=msrp-relay-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=msrp-relay-target,target=/src/target,sharing=locked \
    cargo build --release --locked --bin msrp-relay \
 && install -D -m 0755 target/release/msrp-relay /out/msrp-relay

FROM ${RUNTIME_IMAGE}
# ca-certificates: the system trust store, used for outgoing TLS when tls.ca is unset.
# curl: the HEALTHCHECK. Versions follow the base image's security updates, hence unpinned.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 msrp-relay \
 && useradd --system --uid 10001 --gid msrp-relay --no-create-home \
        --home-dir /var/lib/msrp-relay --shell /usr/sbin/nologin msrp-relay \
 && install -d -m 0755 /etc/msrp-relay \
 && install -d -m 0700 -o msrp-relay -g msrp-relay /var/lib/msrp-relay

COPY --from=builder /out/msrp-relay /usr/local/bin/msrp-relay
COPY config/msrp-relay.toml /usr/share/doc/msrp-relay/msrp-relay.toml.example

LABEL org.opencontainers.image.title="msrp-relay" \
      org.opencontainers.image.description="MSRP relay daemon (RFC 4975, RFC 4976)" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"

# No MSRP_RELAY__* variable is baked in on purpose: the environment overrides the
# configuration file, so a default set here would silently win over the mounted file.
# Set them per container instead, for example
#   -e MSRP_RELAY__RELAY__HOSTNAME=relay.example.com
#   -e MSRP_RELAY__ADMIN__ADDRESS=0.0.0.0:9855 -p 127.0.0.1:9855:9855
# (the admin listener, /healthz /readyz /metrics, stays on 127.0.0.1:9855 inside the
# container unless you do so; the health check below runs inside the container and needs
# no published port).
# The health check asks ${MSRP_HEALTHCHECK_URL:-http://127.0.0.1:9855/healthz}: set
# MSRP_HEALTHCHECK_URL when the admin listener moves, or --no-healthcheck when it is off.
ENV RUST_LOG=info

# Numeric, so that runtimes can check it is not root without reading /etc/passwd.
USER 10001:10001
WORKDIR /var/lib/msrp-relay

# 2855: MSRP over TLS (msrps:). 9855 (admin HTTP) is loopback-only by default, so it is not
# exposed; see above.
EXPOSE 2855

# Stops on SIGTERM after relay.shutdown_grace_secs (10 s by default): give `docker stop`
# at least that much (--stop-timeout / compose stop_grace_period).
STOPSIGNAL SIGTERM

HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/bin/sh", "-c", "curl -fsS --max-time 2 -o /dev/null \"${MSRP_HEALTHCHECK_URL:-http://127.0.0.1:9855/healthz}\" || exit 1"]

ENTRYPOINT ["/usr/local/bin/msrp-relay"]
CMD ["serve", "--config", "/etc/msrp-relay/msrp-relay.toml"]
