#!/usr/bin/env bash
# Makes `promtool` available: the same path the test environment uses for
# Prometheus (Debian's `prometheus` package ships promtool). Prints the path.
set -euo pipefail
if command -v promtool >/dev/null 2>&1; then
  command -v promtool
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "promtool not found and cannot install it here: run 'sudo apt-get install prometheus' (Debian/Ubuntu) or put promtool from https://prometheus.io/download/ on PATH" >&2
  exit 1
fi
echo "installing promtool (Debian package 'prometheus') with apt-get ..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends prometheus >&2
command -v promtool
