#!/usr/bin/env bash
# Builds what the local cluster runs, from the Go module proxy, once per
# machine: cached as $GAVEL_K8S_CACHE/bin/<name>-<version> (default
# ~/.cache/gavel/k8s), with plain-named links in bin/current/.
#
#   kubelet kube-controller-manager kube-scheduler kube-proxy kubectl  (k8s.io/kubernetes)
#   kube-apiserver, etcd, versitygw    reused from the test environment's builds
#                                      (scripts/testenv/build-go-tools.sh, ~/.cache/gavel/bin)
#   helm                               scripts/install-helm.sh (same cache)
#   coredns metrics-server prometheus-adapter pause
#
# The Kubernetes binaries are built exactly like the testenv's kube-apiserver
# (same module layout, flags and Go caches), so the packages they share are
# compiled once. Each step prints its wall time. Usage: build.sh [name...]
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

command -v go >/dev/null || die "'go' not found; install Go >= 1.24 (https://go.dev/doc/install) to build the cluster's binaries"
export CGO_ENABLED=0
# Builds yield to tests and other work on a shared machine (GAVEL_BUILD_NICE).
NICE=${GAVEL_BUILD_NICE:-10}
export GOFLAGS="${GOFLAGS:-} -p=2 -mod=mod -buildvcs=false"
mkdir -p "$KBIN/current" "$KCACHE/src"

# name -> versioned file
declare -A FILE=(
  [kubelet]=$KBIN/kubelet-$K8S_VERSION
  [kube-controller-manager]=$KBIN/kube-controller-manager-$K8S_VERSION
  [kube-scheduler]=$KBIN/kube-scheduler-$K8S_VERSION
  [kube-proxy]=$KBIN/kube-proxy-$K8S_VERSION
  [kubectl]=$KBIN/kubectl-$K8S_VERSION
  [kube-apiserver]=$GAVEL_CACHE/bin/kube-apiserver-$K8S_VERSION
  [etcd]=$GAVEL_CACHE/bin/etcd-$ETCD_VERSION
  [versitygw]=$GAVEL_CACHE/bin/versitygw-$VERSITYGW_VERSION
  [helm]=$GAVEL_CACHE/bin/helm-$HELM_VERSION
  [coredns]=$KBIN/coredns-$COREDNS_VERSION
  [metrics-server]=$KBIN/metrics-server-$METRICS_SERVER_VERSION
  [prometheus-adapter]=$KBIN/prometheus-adapter-$PROMETHEUS_ADAPTER_VERSION
  [pause]=$KBIN/pause-${PAUSE_IMAGE##*:}
)
ALL=(coredns metrics-server prometheus-adapter kube-apiserver etcd versitygw kubelet kube-controller-manager
  kube-scheduler kube-proxy kubectl helm pause)

# shellcheck source=../testenv/k8s-modules.sh
. "$(dirname "$0")/../testenv/k8s-modules.sh"

# A throw-away module requiring k8s.io/kubernetes with every staging module
# pinned (k8s-modules.sh), tools.go importing the commands.
k8s_module() {
  local dir=$KCACHE/src/kubernetes-$K8S_VERSION
  [[ -f $dir/go.sum ]] && { echo "$dir"; return; }
  mkdir -p "$dir"
  {
    printf 'module gavel.dev/cluster/kubernetes\n\ngo 1.24.0\n\nrequire k8s.io/kubernetes %s\n\n' "$K8S_VERSION"
    k8s_staging_replaces "$K8S_VERSION"
  } >"$dir/go.mod"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for c in kubelet kube-controller-manager kube-scheduler kube-proxy kubectl; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
    printf ')\n'
  } >"$dir/tools.go"
  local t
  t=$(now)
  log "resolving k8s.io/kubernetes $K8S_VERSION modules (go mod tidy) ..."
  (cd "$dir" && go mod tidy -e >/dev/null 2>&1) || true
  log "  modules resolved in $(took "$t")"
  echo "$dir"
}

build_k8s() { # cmd
  local dir minor
  dir=$(k8s_module)
  minor=${K8S_VERSION#v1.}
  minor=${minor%%.*}
  (cd "$dir" && nice -n "$NICE" go build -tags tools -o "${FILE[$1]}.tmp.$$" \
    -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean" \
    "k8s.io/kubernetes/cmd/$1")
  mv "${FILE[$1]}.tmp.$$" "${FILE[$1]}"
}

# `go install pkg@version` for coredns and metrics-server. prometheus-adapter
# needs a wrapper module: the proxy answers 403 for its @v/list (asked by
# `go install` for the deprecation check), the exact version resolves fine.
build_addon() { # name
  local tmp
  tmp=$(mktemp -d "$KBIN/.build-$1.XXXXXX")
  case $1 in
    coredns)
      GOBIN=$tmp nice -n "$NICE" go install -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
      mv "$tmp/coredns" "${FILE[$1]}" ;;
    metrics-server)
      GOBIN=$tmp nice -n "$NICE" go install -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$METRICS_SERVER_VERSION" \
        "sigs.k8s.io/metrics-server/cmd/metrics-server@$METRICS_SERVER_VERSION"
      mv "$tmp/metrics-server" "${FILE[$1]}" ;;
    prometheus-adapter)
      local dir=$KCACHE/src/prometheus-adapter-$PROMETHEUS_ADAPTER_VERSION
      mkdir -p "$dir"
      printf 'module gavel.dev/cluster/padapter\n\ngo 1.24.0\n\nrequire sigs.k8s.io/prometheus-adapter %s\n' "$PROMETHEUS_ADAPTER_VERSION" >"$dir/go.mod"
      printf '//go:build tools\n\npackage tools\n\nimport _ "sigs.k8s.io/prometheus-adapter/cmd/adapter"\n' >"$dir/tools.go"
      (cd "$dir" && { go mod tidy -e >/dev/null 2>&1 || true; } &&
        nice -n "$NICE" go build -tags tools -ldflags "-s -w" -o "$tmp/adapter" sigs.k8s.io/prometheus-adapter/cmd/adapter)
      mv "$tmp/adapter" "${FILE[$1]}" ;;
  esac
  rm -rf "$tmp"
}

# The sandbox ("pause") container: Kubernetes' own pause.c, from the module
# cache, linked statically. Named registry.k8s.io/pause:3.10.1 (kubelet's default).
build_pause() {
  local src
  src=$(cd "$(k8s_module)" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c
  command -v gcc >/dev/null || die "'gcc' not found (builds the static pause binary); apt-get install gcc libc6-dev"
  gcc -Os -Wall -Werror -static -DVERSION="${PAUSE_IMAGE##*:}-gavel" -o "${FILE[pause]}.tmp.$$" "$src"
  strip "${FILE[pause]}.tmp.$$"
  mv "${FILE[pause]}.tmp.$$" "${FILE[pause]}"
}

build_one() { # name
  local n=$1 t
  if [[ -x ${FILE[$n]} ]]; then
    ln -sfn "${FILE[$n]}" "$KBIN/current/$n"
    return
  fi
  t=$(now)
  case $n in
    kubelet | kube-controller-manager | kube-scheduler | kube-proxy | kubectl)
      log "building $n $K8S_VERSION (first time only; kubelet ~6 min, the others 1-3 min on 2 busy cores) ..."
      build_k8s "$n" ;;
    kube-apiserver | etcd | versitygw)
      log "building $n (the test environment's build, first time only) ..."
      GAVEL_CACHE=$GAVEL_CACHE nice -n "$NICE" bash "$REPO/scripts/testenv/build-go-tools.sh" "$n" ;;
    helm)
      log "building helm $HELM_VERSION (first time only) ..."
      GAVEL_CACHE=$GAVEL_CACHE nice -n "$NICE" bash "$REPO/scripts/install-helm.sh" >/dev/null ;;
    coredns | metrics-server | prometheus-adapter)
      log "building $n (first time only, ~2-3 min) ..."
      build_addon "$n" ;;
    pause)
      log "building the pause binary ..."
      build_pause ;;
    *) die "unknown binary '$n'" ;;
  esac
  [[ -x ${FILE[$n]} ]] || die "building $n did not produce ${FILE[$n]}"
  ln -sfn "${FILE[$n]}" "$KBIN/current/$n"
  log "  $n built in $(took "$t")"
}

names=("$@")
((${#names[@]})) || names=("${ALL[@]}")
t0=$(now)
for n in "${names[@]}"; do build_one "$n"; done
log "binaries ready in $(took "$t0") ($KBIN/current)"
