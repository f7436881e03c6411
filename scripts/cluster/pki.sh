#!/usr/bin/env bash
# The cluster's PKI and kubeconfigs (openssl only), under $GAVEL_CLUSTER_DIR/pki
# and kubeconfigs/. Idempotent: existing files are kept, so `up` twice (or
# after a crash) keeps the identities every component already trusts.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
PKI=$D/pki KC=$D/kubeconfigs
mkdir -p "$PKI" "$KC"
cd "$PKI"

ca() { # name cn
  [[ -f $1.crt ]] && return
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.crt" -days 3650 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
}
cert() { # name ca subject extendedKeyUsage [subjectAltName]
  [[ -f $1.crt ]] && return
  openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$3" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$4"
    [[ -z ${5:-} ]] || echo "subjectAltName=$5"
  } >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -out "$1.crt" -days 3650 \
    -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

ca ca gavel-cluster-ca
ca front-proxy-ca gavel-cluster-front-proxy-ca
# 127.0.0.1: the host reaches the apiserver through a loopback bridge (node.sh).
cert apiserver ca /CN=kube-apiserver serverAuth \
  "IP:127.0.0.1,IP:$NODE_IP,IP:$KUBERNETES_SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
cert apiserver-kubelet-client ca "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
cert front-proxy-client front-proxy-ca /CN=front-proxy-client clientAuth
cert admin ca "/O=system:masters/CN=gavel-admin" clientAuth
cert controller-manager ca /CN=system:kube-controller-manager clientAuth
cert scheduler ca /CN=system:kube-scheduler clientAuth
cert kube-proxy ca /CN=system:kube-proxy clientAuth
cert kubelet-client ca "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
cert kubelet-serving ca "/O=system:nodes/CN=system:node:$NODE_NAME" serverAuth "IP:$NODE_IP,IP:127.0.0.1,DNS:$NODE_NAME"
# Prometheus (in the node) discovers pods through the API: a read-only identity.
cert prometheus ca /CN=gavel-cluster-prometheus clientAuth
[[ -f sa.key ]] || { openssl genrsa -out sa.key 2048 2>/dev/null && openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null; }
chmod 600 ./*.key

kubeconfig() { # file user cert server
  write_if_changed "$KC/$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: gavel-local
  cluster:
    certificate-authority: $PKI/ca.crt
    server: $4
users:
- name: $2
  user:
    client-certificate: $PKI/$3.crt
    client-key: $PKI/$3.key
contexts:
- name: gavel-local
  context: {cluster: gavel-local, user: $2}
current-context: gavel-local
KC
  chmod 600 "$KC/$1"
}
in_node=https://$NODE_IP:6443
kubeconfig admin.conf gavel-admin admin "$in_node"
kubeconfig controller-manager.conf system:kube-controller-manager controller-manager "$in_node"
kubeconfig scheduler.conf system:kube-scheduler scheduler "$in_node"
kubeconfig kube-proxy.conf system:kube-proxy kube-proxy "$in_node"
kubeconfig kubelet.conf "system:node:$NODE_NAME" kubelet-client "$in_node"
