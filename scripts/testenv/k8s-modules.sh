# The k8s.io staging modules of Kubernetes and the go.mod `replace` lines
# that pin them: a module requiring k8s.io/kubernetes needs them because
# k8s.io/kubernetes itself replaces them with ./staging, which a module
# dependency cannot use. Sourced by build-go-tools.sh (the testenv's
# kube-apiserver) and scripts/cluster/build.sh (the cluster's binaries), so
# both build with the same module layout and share compiled packages.

staging_modules=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
  cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api cri-client
  csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator
  kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics mount-utils
  pod-security-admission sample-apiserver sample-cli-plugin sample-controller)

# Prints one `replace` line per staging module for Kubernetes VERSION (v1.N.P -> v0.N.P).
k8s_staging_replaces() {
  local m
  for m in "${staging_modules[@]}"; do echo "replace k8s.io/$m => k8s.io/$m v0.${1#v1.}"; done
}
