# syntax=docker/dockerfile:1
# The one Gavel image: `gavel operator`, every processor, the rollup job.
# Node 24 runs the TypeScript sources directly (type stripping): there is no
# build output, the build stage only installs, type-checks and prunes.
#
#   docker build -t ghcr.io/gavel-dev/gavel:0.1.0 .      (or scripts/build-image.sh)
#   scripts/build-image.sh --dry-run                     (the same steps without Docker)
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
# Toolchain for native addons (node-gyp), and the -dev libraries the optional
# librdkafka client links against dynamically (CKJS_LINKING=dynamic).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates python3 make g++ pkg-config \
      libssl-dev zlib1g-dev libzstd-dev liblz4-dev libsasl2-dev libcurl4-openssl-dev \
 && rm -rf /var/lib/apt/lists/*
# node-gyp builds native addons against this image's own Node headers
# (/usr/local/include/node), not a download.
ENV npm_config_nodedir=/usr/local
WORKDIR /app
# Dependencies first: this layer is reused until the lock file changes.
# The install step checks the installed tree against the lock file
# (scripts/lockcheck.ts).
COPY package.json package-lock.json ./
COPY scripts/build-image.sh scripts/lockcheck.ts scripts/
RUN scripts/build-image.sh --step install
COPY . .
# tsc type-check, npm prune --omit=dev, drop tests, smoke-test `gavel --help`.
RUN scripts/build-image.sh --step build

FROM ${NODE_IMAGE} AS runtime
# Shared libraries of the native Kafka client; no compilers. npm, npx,
# corepack and yarn are removed: nothing installs packages at run time.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates libssl3 zlib1g libzstd1 liblz4-1 libsasl2-2 libsasl2-modules libcurl4 \
 && rm -rf /var/lib/apt/lists/* \
 && rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
      /opt/yarn-* /usr/local/bin/yarn /usr/local/bin/yarnpkg \
 && ln -s /app/bin/gavel /usr/local/bin/gavel \
 && groupadd --gid 10001 gavel \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin gavel
# Files stay owned by root and read-only for the app user, so the container
# runs with readOnlyRootFilesystem: true. The only writable place it needs is
# /tmp (an emptyDir in Kubernetes); HOME points there for libraries that keep
# caches under ~ (DuckDB extensions).
COPY --from=build --chown=root:root /app /app
# A 16 MiB young generation: in a pod Node sizes the heap from the memory
# limit and, at the default 512Mi, picks a young generation so small that the
# processors' short-lived JSON is promoted and collected by full GCs (bench in
# a 512 MiB cgroup: +15% bid-processor and +25% silver-writer throughput for
# about 50 MiB more RSS; docs/benchmarks.md). bench/lib.ts runs processors
# with the same value.
ENV NODE_ENV=production \
    NODE_OPTIONS="--max-semi-space-size=16" \
    HOME=/tmp \
    TMPDIR=/tmp
WORKDIR /app
USER 10001:10001
LABEL org.opencontainers.image.title="gavel" \
      org.opencontainers.image.description="Gavel: Kubernetes-native platform for real-time auction data" \
      org.opencontainers.image.source="https://github.com/gavel-dev/gavel" \
      org.opencontainers.image.licenses="Apache-2.0"
# `docker run IMAGE operator` runs `gavel operator`; Kubernetes pods may also
# set `command: [gavel, ...]` (gavel is on PATH).
ENTRYPOINT ["node", "/app/bin/gavel"]
CMD ["--help"]
