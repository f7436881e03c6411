#!/usr/bin/env bash
# Builds the one Gavel container image (operator and every processor).
#
#   scripts/build-image.sh [--tag IMAGE]   docker build (needs a Docker engine)
#   scripts/build-image.sh --dry-run [--ref REF] [--keep | --out DIR]
#       No Docker needed: copies the repository (the work tree, or the
#       committed tree of REF) into a temporary folder and runs there the very
#       steps the Dockerfile's build stage runs (`--step install`,
#       `--step build`), then checks the pruned tree like the runtime image:
#       `gavel --help` works with the tree read-only and without devDependencies.
#       --out DIR builds in DIR (which must not exist) and keeps it: DIR/app is
#       the image's /app (`gavel cluster up` packs it without Docker).
#   scripts/build-image.sh --step install|build
#       One build-stage step; the Dockerfile runs these inside the image.
#
# Progress goes to stderr. Exit code 0 means the image's build steps passed.
set -euo pipefail

log() { printf '[build-image] %s\n' "$*" >&2; }
die() { printf 'build-image: %s\n' "$*" >&2; exit 2; }

# Build-stage steps, run in the app folder (the image's /app). ----------------

step_install() {
  # The optional librdkafka client (@confluentinc/kafka-javascript), when it is
  # a dependency, is built from source against the system's OpenSSL, zlib,
  # zstd, lz4, SASL and curl instead of fetching vendored sources.
  export CKJS_LINKING=dynamic
  log "npm ci (npm $(npm --version))"
  local err
  err=$(mktemp)
  if ! npm ci --no-audit --no-fund --loglevel=error 2>"$err"; then
    # npm ci refuses a lock file it finds out of sync with package.json
    # ("Missing: <pkg> from lock file", "Invalid: lock file's <pkg> does not
    # satisfy <range>"). That includes a lock file written where the registry
    # lacked other platforms' optional binaries (@biomejs/cli-*,
    # @duckdb/node-bindings-*): it has no entries for them, although none of
    # them is installed here. Then install from the lock file without writing
    # it; the check below tells a stale lock file from that harmless case.
    if ! grep -q -e "are in sync" -e "from lock file" "$err"; then
      cat "$err" >&2
      rm -f "$err"
      return 1
    fi
    grep -E "(Missing|Invalid): " "$err" | head -5 | sed 's/^npm error /  /' >&2
    rm -f "$err"
    log "npm ci refused the lock file; npm install --no-save (from the lock file, which stays as it is)"
    npm install --no-save --no-audit --no-fund --loglevel=error
  fi
  rm -f "$err"
  # The installed tree (node_modules/.package-lock.json) must be the locked
  # one, and the lock file must be made for package.json's ranges: each
  # differing entry is listed (name, locked version, what npm installed).
  log "checking the installed tree against package-lock.json"
  node scripts/lockcheck.ts ||
    die "package-lock.json is out of date (entries above): run npm install and commit the lock file"
}

step_build() {
  log "type-check (tsc)"
  npx --no-install tsc -p tsconfig.json >&2
  log "npm prune --omit=dev"
  npm prune --omit=dev --no-audit --no-fund --loglevel=error
  # The native Kafka client keeps its librdkafka sources and static archives
  # after the build (~250 MB); at run time it needs only its .node file and
  # the shared libraries next to it (RUNPATH $ORIGIN/../deps). The smoke test
  # below loads it, so a needed file removed here fails the build.
  local ckjs=node_modules/@confluentinc/kafka-javascript
  if [[ -d $ckjs/build ]]; then
    log "trimming the native Kafka client's build tree"
    rm -rf "$ckjs/deps/librdkafka" "$ckjs/build/Release/obj.target"
    find "$ckjs/build/deps" -mindepth 1 -maxdepth 1 ! -name 'librdkafka*.so*' -exec rm -rf {} +
  fi
  log "removing tests, docs and dev-only files"
  find . -path ./node_modules -prune -o -name '*.test.ts' -type f -print0 | xargs -0 rm -f
  # Development tools too (the test environment, the local cluster, the
  # benchmarks): the image holds what runs in a pod; `gavel testenv` and
  # `gavel cluster` then say they are not in it (cli/dev-tool.ts).
  rm -rf test bench scripts/testenv scripts/cluster docs charts deploy .github .vscode coverage .testenv \
    kind-config.yaml biome.json vitest.config.ts tsconfig.json Dockerfile .dockerignore
  smoke "node"
}

# Checks of the final tree: the runtime stage copies it as it is.
smoke() {
  local node=$1
  for dev in typescript vitest @biomejs/biome node; do
    [[ ! -e node_modules/$dev ]] || die "devDependency '$dev' is still in node_modules after prune"
  done
  log "gavel --help with $("$node" --version)"
  "$node" bin/gavel --help >/dev/null
  # The operator's pods run `command: [gavel, ...]`: the image links
  # /usr/local/bin/gavel to bin/gavel, whose shebang finds node on PATH.
  [[ -x bin/gavel ]] || die "bin/gavel is not executable"
  PATH="$(dirname "$(command -v "$node")"):$PATH" bin/gavel --version >/dev/null
  local out
  if out=$("$node" bin/gavel testenv status 2>&1); then die "gavel testenv ran in the image tree (test/ should be gone)"; fi
  [[ $out == *"development tool"* ]] || die "gavel testenv in the image tree: expected the development-tool message, got: $out"
  if [[ -d node_modules/@confluentinc/kafka-javascript ]]; then
    log "loading the native Kafka client"
    "$node" -e 'require("@confluentinc/kafka-javascript")' >/dev/null
  fi
}

# Entry points. ----------------------------------------------------------------

cd "$(dirname "$0")/.."
repo=$PWD
mode=docker tag="${IMAGE:-ghcr.io/gavel-dev/gavel:0.1.0}" ref="" keep=0 step="" out=""
while (($#)); do
  case $1 in
    --dry-run) mode=dry-run ;;
    --ref) ref=${2:?--ref needs a git ref}; shift ;;
    --keep) keep=1 ;;
    --out) out=${2:?--out needs a folder}; keep=1; shift ;;
    --tag) tag=${2:?--tag needs an image name}; shift ;;
    --step) mode=step step=${2:?--step needs install or build}; shift ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  shift
done

case $mode in
  step)
    case $step in
      install) step_install ;;
      build) step_build ;;
      *) die "unknown step '$step' (install or build)" ;;
    esac
    ;;
  docker)
    command -v docker >/dev/null || die "docker not found; use --dry-run to run the build steps without Docker"
    log "docker build -t $tag"
    docker build -t "$tag" "$repo"
    ;;
  dry-run)
    # Node 24, as in the base image: the repo's `node` devDependency, or a
    # `node` on PATH that is new enough.
    node24=${GAVEL_NODE:-$repo/node_modules/.bin/node}
    [[ -x $node24 ]] || node24=$(command -v node || true)
    [[ -n $node24 && $("$node24" -p 'process.versions.node.split(".")[0]') -ge 24 ]] ||
      die "Node >= 24 not found (run npm ci, or set GAVEL_NODE)"
    if [[ -n $out ]]; then
      [[ ! -e $out ]] || die "--out $out already exists"
      mkdir -p "$out"
      work=$(cd "$out" && pwd)
    else
      work=$(mktemp -d "${TMPDIR:-/tmp}/gavel-image.XXXXXX")
    fi
    cleanup() {
      chmod -R u+w "$work" 2>/dev/null || true
      if ((keep)); then log "kept $work"; else rm -rf "$work"; fi
    }
    trap cleanup EXIT
    app=$work/app
    mkdir -p "$app" "$work/bin"
    if [[ -n $ref ]]; then
      log "copying the tree of $ref into $app"
      git archive "$ref" | tar -x -C "$app"
    else
      log "copying the work tree (tracked and untracked, not ignored) into $app"
      git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
        [[ -e $f ]] && printf '%s\0' "$f"
      done | tar --null -T - -c | tar -x -C "$app"
    fi
    # Inside the image `node` and `npm` are the base image's Node 24: put the
    # same first on PATH.
    ln -s "$node24" "$work/bin/node"
    export PATH="$work/bin:$PATH"
    # Native addons must be built against Node 24's headers, as the Dockerfile
    # does with npm_config_nodedir=/usr/local (a user npmrc may point nodedir
    # at another Node's headers). Offline, they come from the registry package
    # node-<platform>@<version>, cached under $GAVEL_CACHE/node-headers.
    npm_config_nodedir=$(bash "$repo/scripts/node-headers.sh" "$node24")
    export npm_config_nodedir
    log "native addons build against the headers in $npm_config_nodedir"
    cd "$app"
    start=$SECONDS
    bash scripts/build-image.sh --step install
    bash scripts/build-image.sh --step build
    log "runtime checks: read-only tree, HOME=/tmp"
    chmod -R a-w "$app"
    HOME=/tmp NODE_ENV=production smoke "$node24"
    log "dry run passed in $((SECONDS - start))s ($(du -sh "$app/node_modules" | cut -f1) node_modules)"
    ;;
esac
