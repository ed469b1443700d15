# syntax=docker/dockerfile:1
# Multi-stage build of Ferry's three binaries; the runtime image has no toolchain.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
COPY tests ./tests
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bins \
    && mkdir -p /out \
    && cp target/release/ferry target/release/ferry-server target/release/ferry-gateway /out/

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin ferry \
    && mkdir -p /data && chown ferry:ferry /data && chmod 0700 /data
COPY --from=build /out/ /usr/local/bin/
USER ferry
WORKDIR /data
ENV FERRY_DATA_DIR=/data \
    FERRY_LOG=info
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["ferry-server"]
