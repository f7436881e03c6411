#!/usr/bin/env bash
# Prints a folder whose include/node/node_version.h is exactly NODE's version:
# what native addons are built against (node-gyp --nodedir,
# npm_config_nodedir). Looks in the FOLDERs given, then NODE's own prefix and
# $GAVEL_CACHE/node-headers (default ~/.cache/gavel); otherwise fetches the
# headers once from the registry package node-<platform>@<version> (no
# nodejs.org download, so it works behind a registry mirror) into that cache.
# Shared by build-image.sh --dry-run and install-native.sh.
#
# Usage: node-headers.sh NODE [FOLDER...]
set -euo pipefail
log() { printf '[node-headers] %s\n' "$*" >&2; }
node=${1:?usage: node-headers.sh NODE [FOLDER...]}
shift
ver=$("$node" -p process.versions.node)
platform=$("$node" -p '`${process.platform}-${process.arch}`')
cache=${GAVEL_CACHE:-$HOME/.cache/gavel}/node-headers
for dir in "$@" "$(dirname "$(dirname "$("$node" -p process.execPath)")")" "$cache/v$ver" "$cache"; do
  [[ $(awk '/define NODE_(MAJOR|MINOR|PATCH)_VERSION /{printf "%s.", $3}' \
    "$dir/include/node/node_version.h" 2>/dev/null) == "$ver." ]] && { echo "$dir"; exit 0; }
done
dir=$cache/v$ver
log "fetching Node $ver headers (npm package node-$platform@$ver)"
tmp=$(mktemp -d)
(cd "$tmp" && npm pack --silent "node-$platform@$ver" >/dev/null && tar -xzf ./*.tgz package/include)
mkdir -p "$dir"
rm -rf "$dir/include"
mv "$tmp/package/include" "$dir/include"
rm -rf "$tmp"
echo "$dir"
