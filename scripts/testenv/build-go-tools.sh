#!/usr/bin/env bash
# Builds the Go-based services of the test environment (kube-apiserver, etcd,
# versitygw) from the Go module proxy and caches the binaries under
# $GAVEL_CACHE/bin (default ~/.cache/gavel/bin). A cached binary is reused, so
# only the first run on a machine pays for the build.
#
# Usage: build-go-tools.sh [kube-apiserver|etcd|versitygw|all]
set -euo pipefail

K8S_VERSION="${GAVEL_K8S_VERSION:-v1.34.4}"
ETCD_VERSION="${GAVEL_ETCD_VERSION:-v3.6.16}"
VERSITYGW_VERSION="${GAVEL_VERSITYGW_VERSION:-v1.8.0}"
CACHE="${GAVEL_CACHE:-$HOME/.cache/gavel}"
BIN="$CACHE/bin"
SRC="$CACHE/src"
mkdir -p "$BIN" "$SRC"

command -v go >/dev/null || { echo "gavel testenv: 'go' not found; install Go >= 1.24 (https://go.dev/doc/install or 'apt-get install golang')" >&2; exit 2; }
export CGO_ENABLED=0
# Bounded parallelism: the kube-apiserver link needs several GB per job.
export GOFLAGS="${GOFLAGS:-} -p=2"

log() { printf '[testenv] %s\n' "$*" >&2; }

# shellcheck source=k8s-modules.sh
. "$(dirname "$0")/k8s-modules.sh"

build_kube_apiserver() {
  local out="$BIN/kube-apiserver-$K8S_VERSION"
  [[ -x "$out" ]] && { log "kube-apiserver $K8S_VERSION cached"; return; }
  local dir="$SRC/kube-apiserver-$K8S_VERSION"
  mkdir -p "$dir"
  {
    echo "module gavel.dev/testenv/kubeapiserver"
    echo
    echo "go 1.24.0"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    k8s_staging_replaces "$K8S_VERSION"
  } >"$dir/go.mod"
  cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
  log "building kube-apiserver $K8S_VERSION (first time only: ~10-20 min on 2 cores, several GB RAM)"
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  (cd "$dir" && go mod tidy -e >/dev/null 2>&1 || true
   cd "$dir" && GOFLAGS="$GOFLAGS -mod=mod" go build -tags tools -o "$out.tmp" \
     -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" \
     k8s.io/kubernetes/cmd/kube-apiserver)
  mv "$out.tmp" "$out"
  log "kube-apiserver built: $out"
}

build_etcd() {
  local out="$BIN/etcd-$ETCD_VERSION"
  [[ -x "$out" ]] && { log "etcd $ETCD_VERSION cached"; return; }
  local dir="$SRC/etcd-$ETCD_VERSION"
  mkdir -p "$dir"
  cat >"$dir/go.mod" <<GOMOD
module gavel.dev/testenv/etcd

go 1.24.0

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
GOMOD
  cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3/etcdmain"
GO
  log "building etcd $ETCD_VERSION (first time only: a few minutes)"
  (cd "$dir" && GOFLAGS="$GOFLAGS -mod=mod" go get go.etcd.io/etcd/server/v3@"$ETCD_VERSION" >/dev/null 2>&1 || true
   cd "$dir" && GOFLAGS="$GOFLAGS -mod=mod" go build -tags tools -o "$out.tmp" -ldflags "-s -w" go.etcd.io/etcd/server/v3)
  mv "$out.tmp" "$out"
  log "etcd built: $out"
}

build_versitygw() {
  local out="$BIN/versitygw-$VERSITYGW_VERSION"
  [[ -x "$out" ]] && { log "versitygw $VERSITYGW_VERSION cached"; return; }
  log "building versitygw $VERSITYGW_VERSION (first time only: a few minutes)"
  GOBIN="$BIN/.versitygw-$VERSITYGW_VERSION" go install -ldflags "-s -w" "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
  mv "$BIN/.versitygw-$VERSITYGW_VERSION/versitygw" "$out"
  rmdir "$BIN/.versitygw-$VERSITYGW_VERSION"
  log "versitygw built: $out"
}

what="${1:-all}"
case "$what" in
  kube-apiserver) build_kube_apiserver ;;
  etcd) build_etcd ;;
  versitygw) build_versitygw ;;
  all) build_etcd; build_versitygw; build_kube_apiserver ;;
  *) echo "usage: $0 [kube-apiserver|etcd|versitygw|all]" >&2; exit 2 ;;
esac
