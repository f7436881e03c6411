#!/usr/bin/env bash
# Builds the optional librdkafka client (@confluentinc/kafka-javascript, used
# with GAVEL_KAFKA_CLIENT=confluent) for the project's Node 24 when it is
# installed but does not load. Its prebuilt binaries come from GitHub, so npm
# builds it from source; npm runs on the system Node and may build it for
# that Node's ABI (or fail to fetch headers offline). This rebuilds it
# against Node 24's headers (from the node-<platform>-<arch> npm package that
# the `node` devDependency installs, else fetched once into ~/.cache/gavel)
# and the system libraries (CKJS_LINKING=dynamic: libssl, zlib, zstd, lz4,
# sasl, curl dev packages). Takes a few minutes; a no-op when it loads.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
log() { printf '[native] %s\n' "$*" >&2; }
node=$repo/node_modules/.bin/node
pkg=node_modules/@confluentinc/kafka-javascript
if [[ ! -d $pkg ]]; then
  log "$pkg is not installed (optional); GAVEL_KAFKA_CLIENT=confluent is unavailable"
  exit 0
fi
loads() { "$node" -e 'require("@confluentinc/kafka-javascript")' 2>/dev/null; }
loads && exit 0

ver=$("$node" -p process.versions.node)
pkgver=$("$node" -p "require('./$pkg/package.json').version")
# A built addon is kept per client and Node version, so a fresh clone on the
# same machine (CI) copies it instead of compiling librdkafka again.
cached=$HOME/.cache/gavel/native/kafka-javascript-$pkgver-node-$ver
addon=$pkg/build/Release/confluent-kafka-javascript.node
if [[ -f $cached/confluent-kafka-javascript.node ]]; then
  mkdir -p "$(dirname "$addon")"
  cp "$cached/confluent-kafka-javascript.node" "$addon"
  if loads; then
    log "using the cached build ($cached)"
    exit 0
  fi
fi
# Node 24's headers: those the `node` devDependency installed
# (node-<platform>-<arch>), else the cached or fetched ones.
platform=$("$node" -p '`${process.platform}-${process.arch}`')
headers=$(bash scripts/node-headers.sh "$node" \
  "$repo/node_modules/node/node_modules/node-$platform" "$repo/node_modules/node-$platform")
gyp=$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js
log "building @confluentinc/kafka-javascript for Node $ver (a few minutes on 2 cores)"
# Under `npm test` npm exports its config (a user npmrc's nodedir, e.g. the
# system Node 20's headers) as npm_config_*; node-gyp would build for that.
(cd "$pkg" && env -u npm_config_nodedir -u NPM_CONFIG_NODEDIR CKJS_LINKING=dynamic \
  PATH="$repo/node_modules/.bin:$PATH" "$node" "$gyp" rebuild --nodedir="$headers" >/dev/null)
loads || {
  log "built, but it still does not load: $("$node" -e 'require("@confluentinc/kafka-javascript")' 2>&1 | grep -m1 -E 'Error|MODULE_VERSION')"
  exit 1
}
mkdir -p "$cached"
cp "$addon" "$cached/"
log "done"
