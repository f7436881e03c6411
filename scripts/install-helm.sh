#!/usr/bin/env bash
# Builds Helm 3 from the Go module proxy and caches the binary under
# $GAVEL_CACHE/bin/helm-<version> (default ~/.cache/gavel/bin). Idempotent: a
# cached binary is reused, so only the first run on a machine pays for the
# build (a few minutes on 2 cores). Prints the path of the binary on stdout;
# progress goes to stderr.
#
# The build sets the same ldflags as Helm's Makefile: the version string, and
# the default Kubernetes version used by `helm template`/`helm lint` when no
# cluster is contacted (without them it is 1.20, which is too old for the
# chart's kubeVersion constraint). We pin it to the Kubernetes minor of the
# test environment.
#
# Usage: scripts/install-helm.sh            # prints the helm path
#        GAVEL_HELM_VERSION=v3.21.4 scripts/install-helm.sh
set -euo pipefail

HELM_VERSION="${GAVEL_HELM_VERSION:-v3.22.0}"
KUBE_MINOR="${GAVEL_HELM_KUBE_MINOR:-34}"
CACHE="${GAVEL_CACHE:-$HOME/.cache/gavel}"
BIN="$CACHE/bin"
out="$BIN/helm-$HELM_VERSION"

log() { printf '[install-helm] %s\n' "$*" >&2; }

if [[ -x "$out" ]]; then
  log "helm $HELM_VERSION cached: $out"
  echo "$out"
  exit 0
fi

command -v go >/dev/null || {
  echo "install-helm: 'go' not found; install Go >= 1.24 (https://go.dev/doc/install) or put a helm v3 binary at $out" >&2
  exit 2
}
mkdir -p "$BIN"
# A private GOBIN so a concurrent run cannot pick up a half-written binary, and
# the final rename is atomic.
tmp=$(mktemp -d "$BIN/.helm-build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

ldflags="-s -w"
ldflags+=" -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1"
ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$KUBE_MINOR"
ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1"
ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$KUBE_MINOR"

log "building helm $HELM_VERSION from the Go module proxy (first time only: a few minutes on 2 cores)"
start=$SECONDS
CGO_ENABLED=0 GOBIN="$tmp" GOFLAGS="${GOFLAGS:-} -p=2 -trimpath" \
  go install -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
mv "$tmp/helm" "$out"
log "helm $HELM_VERSION built in $((SECONDS - start))s: $out"
"$out" version --short >&2
echo "$out"
