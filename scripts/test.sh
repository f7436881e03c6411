#!/usr/bin/env bash
# Gavel's one test command (README, CI): installs what the tests need on a
# fresh machine, then runs lint, type-check, unit and integration tests
# against real services, and ends with the plain line "N passed, N failed".
#
# First run on a fresh machine: apt packages, npm packages, Kafka jars and
# Go builds (kube-apiserver, etcd, versitygw, helm, and the local cluster's
# kubelet, containerd shims, CoreDNS, ...) are fetched and cached under
# ~/.cache/gavel; later runs reuse them.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
log() { printf '[test] %s\n' "$*" >&2; }

# System packages the test environment needs (PostgreSQL server, Prometheus,
# Java + Maven for the Kafka jars). Installed only when missing.
need=()
command -v java >/dev/null || need+=(default-jre-headless)
command -v mvn >/dev/null || need+=(maven)
command -v prometheus >/dev/null || need+=(prometheus)
compgen -G "/usr/lib/postgresql/1[5-9]/bin/postgres" >/dev/null || need+=(postgresql)
# Build dependencies of the optional librdkafka client (scripts/install-native.sh).
command -v g++ >/dev/null || need+=(g++ make)
if command -v dpkg >/dev/null; then
  for p in libssl-dev zlib1g-dev libzstd-dev liblz4-dev libsasl2-dev libcurl4-openssl-dev; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
  done
fi
if ((${#need[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    log "installing ${need[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    log "missing system packages: ${need[*]}; install them (e.g. sudo apt-get install ${need[*]}) and re-run"
    exit 2
  fi
fi

# npm packages, Node 24 among them (the `node` package). Skipped when
# package.json and the lock file are those of the last checked install.
stamp=node_modules/.gavel-lock-sha
want=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  # `npm install --no-save` installs from the lock file without writing it
  # and, unlike `npm ci`, keeps what is already installed (the built native
  # client) and accepts a lock file without entries for other platforms'
  # optional binaries. scripts/lockcheck.ts then checks that the installed
  # tree is the locked one: a package.json changed without its lock file
  # fails here, with the differing entries.
  log "npm install (from package-lock.json)"
  # CKJS_LINKING=dynamic: the librdkafka client links the system libraries.
  CKJS_LINKING=dynamic npm install --no-save --no-audit --no-fund --loglevel=error
  # Run by the project's Node 24 (the system Node may not run TypeScript).
  lnode=node_modules/.bin/node
  [[ -x $lnode ]] || lnode=node
  "$lnode" scripts/lockcheck.ts || {
    log "package-lock.json is out of date (entries above): run npm install and commit the lock file"
    exit 2
  }
  bash scripts/install-native.sh || log "warning: the optional librdkafka client did not build (GAVEL_KAFKA_CLIENT=confluent unavailable)"
  echo "$want" >"$stamp"
fi
export PATH="$repo/node_modules/.bin:$PATH"
log "node $(node --version)"

# Helm is built from the Go module proxy the first time (about 6 minutes on 2
# cores, cached): build it here, not inside a test's 5-minute setup hook,
# which a busy brand-new machine overran.
log "helm: $(bash scripts/install-helm.sh)"

log "lint (biome) and type-check (tsc)"
biome check .
tsc -p tsconfig.json

# The local-cluster test (test/integration/cluster.test.ts): Gavel's own
# image on a real single-node Kubernetes (helm install, a pipeline, faults,
# autoscaling). It needs root; the first run builds the node's binaries
# (cached in ~/.cache/gavel/k8s). GAVEL_CLUSTER_TEST=0 leaves it out.
if [[ $(id -u) -eq 0 ]]; then
  export GAVEL_CLUSTER_TEST=${GAVEL_CLUSTER_TEST:-1}
else
  log "not root: the local-cluster test is skipped (it needs namespaces, mounts and cgroups)"
fi

mkdir -p .testenv
report=.testenv/vitest-report.json
rm -f "$report"
log "vitest: unit + integration (starts the test environment if it is not up)"
set +e
vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
rc=$?
set -e
if [[ -f $report ]]; then
  node -e '
    const r = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
    const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
    // A file that failed outside any test (a beforeAll, an import) counts as one failure.
    const fileFailures = r.testResults.filter(
      (f) => f.status === "failed" && !f.assertionResults.some((a) => a.status === "failed"),
    ).length;
    const failed = r.numFailedTests + fileFailures;
    console.log(`${r.numPassedTests} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ""));
  ' "$report"
else
  echo "0 passed, 1 failed"
  [[ $rc -ne 0 ]] || rc=1
fi
exit $rc
