# shellcheck shell=bash
# Shared settings of `gavel cluster` (sourced by the other scripts here).
#
# Two places:
#   $GAVEL_K8S_CACHE (~/.cache/gavel/k8s)  binaries and add-on images, built once per machine
#   $GAVEL_CLUSTER_DIR (.testenv/cluster)  one cluster's PKI, configs, logs, state and env file
# Nothing else on the host is written: everything the node does happens in its
# own network + mount namespace (see docs/local-cluster.md).

K8S_VERSION=${GAVEL_K8S_VERSION:-v1.34.4}
ETCD_VERSION=${GAVEL_ETCD_VERSION:-v3.6.16}
VERSITYGW_VERSION=${GAVEL_VERSITYGW_VERSION:-v1.8.0}
KAFKA_VERSION=4.1.1
HELM_VERSION=${GAVEL_HELM_VERSION:-v3.22.0}
COREDNS_VERSION=v1.14.7
METRICS_SERVER_VERSION=v0.8.0
PROMETHEUS_ADAPTER_VERSION=v0.12.0
PAUSE_IMAGE=registry.k8s.io/pause:3.10.1

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
GAVEL_CACHE=${GAVEL_CACHE:-$HOME/.cache/gavel}
KCACHE=${GAVEL_K8S_CACHE:-$GAVEL_CACHE/k8s}
KBIN=$KCACHE/bin
D=${GAVEL_CLUSTER_DIR:-$REPO/.testenv/cluster}

# The node's private network: the node IP sits on a port-less bridge (this
# kernel has no dummy interfaces), pods on cni0, Services are virtual.
NODE_IP=10.250.0.10
NODE_NAME=gavel-node
POD_CIDR=10.244.0.0/24
POD_GATEWAY=10.244.0.1
SERVICE_CIDR=10.96.0.0/16
KUBERNETES_SERVICE_IP=10.96.0.1
DNS_IP=10.96.0.10

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf 'gavel cluster: %s\n' "$*" >&2; exit 2; }

# Node 24 (the `node` devDependency) runs the TypeScript helpers in test/cluster/.
NODE24=${GAVEL_NODE:-$REPO/node_modules/.bin/node}

# Elapsed-time helper: `t=$(now)` ... `took $t`
now() { date +%s; }

# write_if_changed FILE < content: replaces FILE only when the content
# differs, and then atomically (a rename). A running component that watches
# its config file (kube-proxy exits with "content of the proxy server's
# configuration file was updated" when it sees the file truncated by a plain
# `cat >`) is left alone by a second `up`.
write_if_changed() {
  local f=$1 tmp
  tmp=$(mktemp "$f.XXXXXX")
  cat >"$tmp"
  if [[ -f $f ]] && cmp -s "$tmp" "$f"; then
    rm -f "$tmp"
  else
    # the mode a plain `cat >` gave: the old file's, or the umask's
    if [[ -f $f ]]; then chmod --reference="$f" "$tmp"; else chmod "$(printf '%o' $((0666 & ~$(umask))))" "$tmp"; fi
    mv -f "$tmp" "$f"
  fi
}
took() { echo "$(($(date +%s) - $1))s"; }

holder_pid() { cat "$D/run/holder.pid" 2>/dev/null; }
holder_alive() {
  local h
  h=$(holder_pid) || return 1
  [[ -n $h ]] && kill -0 "$h" 2>/dev/null &&
    [[ $(tr '\0' ' ' <"/proc/$h/cmdline" 2>/dev/null) == *"gavel-cluster-holder"* ]]
}
# Run a command inside the node's namespaces (mount + network). The cwd is kept.
nsx() { nsenter -t "$(holder_pid)" -m -n --wd="$PWD" -- "$@"; }
# The same from /: for commands run as another user (postgres), which cannot
# enter a checkout under a 0700 folder (mktemp -d) and then refuse to start
# ("could not identify current directory").
nsx_root() { nsenter -t "$(holder_pid)" -m -n --wd=/ -- "$@"; }

# kubectl/helm write caches under $HOME: keep them in the cluster folder.
kenv() {
  export HOME=$D/home KUBECONFIG=$D/kubeconfigs/admin.conf
  export PATH=$KBIN/current:$PATH
  mkdir -p "$HOME"
}
