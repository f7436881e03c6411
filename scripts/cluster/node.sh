#!/usr/bin/env bash
# The local cluster's node: a real single-node Kubernetes inside one private
# network + mount namespace, plus the services pods need (Kafka, PostgreSQL,
# S3, Prometheus), and 127.0.0.1 bridges so the host can reach all of them.
#
#   node.sh up       start whatever is not running (harmless when all is up)
#   node.sh down     stop everything; leaves no process, mount, interface or cgroup
#   node.sh status   one line per component; exit 0 when all run
#
# Called by `gavel cluster up|down|status` (cli/cluster.ts), which also builds
# the binaries (build.sh) and the Gavel image (image.sh). How and why:
# docs/local-cluster.md.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
RUN=$D/run LOGS=$D/logs ST=$D/state ETC=$D/etc
B=$KBIN/current
export PATH=$B:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# The cgroup under which kubelet puts every pod (cgroupRoot). Named after the
# cluster folder, so two clusters on one machine (a developer's and CI's) never
# share or remove each other's pods; `down` removes it.
CG=gavel-cluster-$(printf '%s' "$D" | sha256sum | cut -c1-8)
HOLDER_TAG="gavel-cluster-holder:$D"

alive() { [[ -f $RUN/$1.pid ]] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

# start NAME CMD...: CMD detached in the node namespaces, output in logs/NAME.log.
# nsenter and setsid exec in place (no pid namespace, not a group leader), so
# $! is the daemon itself.
start() {
  local name=$1
  shift
  alive "$name" && return 0
  nsenter -t "$(holder_pid)" -m -n --wd="${START_WD:-$D}" -- setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
  log "  $name started (pid $!)"
}

# wait_for WHAT SECONDS CMD...: poll CMD once a second, bounded.
wait_for() {
  local what=$1 secs=$2 i
  shift 2
  for ((i = 0; i < secs; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 1
  done
  die "$what not ready after ${secs}s; see $LOGS/"
}

free_port() {
  "$NODE24" -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# ------------------------------------------------------------ prerequisites

# System packages and the Kafka jars; apt-get installs what is missing (root).
prereqs() {
  local need=() c
  for c in containerd:containerd runc:runc iptables:iptables conntrack:conntrack socat:socat; do
    command -v "${c%%:*}" >/dev/null || need+=("${c#*:}")
  done
  [[ -x /usr/lib/cni/bridge ]] || need+=(containernetworking-plugins)
  command -v java >/dev/null || need+=(default-jre-headless)
  compgen -G "/usr/lib/postgresql/1[5-9]/bin/postgres" >/dev/null || need+=(postgresql)
  if [[ $(id -u) != 0 ]]; then
    die "the local cluster needs root (namespaces, mounts, cgroups)${need[*]:+; also missing: ${need[*]} (apt-get install ${need[*]})}"
  fi
  if ((${#need[@]})); then
    command -v apt-get >/dev/null || die "missing: ${need[*]}; install them with your package manager"
    log "installing ${need[*]} (apt-get) ..."
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >"$LOGS/apt.log" 2>&1 ||
      { DEBIAN_FRONTEND=noninteractive apt-get update -qq >>"$LOGS/apt.log" 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >>"$LOGS/apt.log" 2>&1; } ||
      die "apt-get install ${need[*]} failed; see $LOGS/apt.log"
  fi
  KAFKA_LIBS=$GAVEL_CACHE/kafka-$KAFKA_VERSION/libs
  if [[ ! -f $KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar ]]; then
    command -v mvn >/dev/null || die "Kafka jars missing and 'mvn' not found; apt-get install maven (or run 'gavel testenv up' once)"
    log "downloading Kafka $KAFKA_VERSION jars (Maven Central, the testenv's cache) ..."
    mvn -B -q -f "$REPO/scripts/testenv/kafka-pom.xml" -Dkafka.version=$KAFKA_VERSION dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS.tmp.$$" && mv "$KAFKA_LIBS.tmp.$$" "$KAFKA_LIBS"
  fi
}

need_binaries() {
  PG_BIN=$(dirname "$(compgen -G "/usr/lib/postgresql/1[5-9]/bin/postgres" | sort -V | tail -1)")
  KAFKA_LIBS=$GAVEL_CACHE/kafka-$KAFKA_VERSION/libs
  local b
  for b in kubelet kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl etcd versitygw coredns pause; do
    [[ -x $B/$b ]] || die "$B/$b missing; run scripts/cluster/build.sh (gavel cluster up does)"
  done
}

# ------------------------------------------------------------ configuration

configure() {
  mkdir -p "$ETC/cni" "$RUN" "$LOGS" "$ST" "$D/home"
  # Host-side ports: chosen once, kept across `up`s (clients keep their config).
  if [[ ! -f $D/ports ]]; then
    {
      echo "HOST_APISERVER_PORT=$(free_port)"
      echo "HOST_KAFKA_PORT=$(free_port)"
      echo "HOST_POSTGRES_PORT=$(free_port)"
      echo "HOST_S3_PORT=$(free_port)"
      echo "HOST_PROMETHEUS_PORT=$(free_port)"
    } >"$D/ports"
  fi
  # shellcheck disable=SC1091
  . "$D/ports"
  if [[ ! -f $D/credentials ]]; then
    umask 077
    {
      echo "S3_ACCESS_KEY=gavel-local"
      echo "S3_SECRET_KEY=$(openssl rand -hex 18)"
      echo "PG_PASSWORD=$(openssl rand -hex 12)"
    } >"$D/credentials"
    umask 022
  fi
  # shellcheck disable=SC1091
  . "$D/credentials"
  bash "$HERE/pki.sh"

  local runc
  runc=$(command -v runc)
  # Debian's containerd 1.6 (CRI v1 is enough for kubelet 1.34).
  write_if_changed "$ETC/containerd.toml" <<TOML
version = 2
root = "$ST/containerd"
# /run is a tmpfs private to the node's mount namespace.
state = "/run/containerd"
# The VM lacks CAP_SYS_RESOURCE: nothing may lower its oom_score_adj, and the
# CRI sets -998 on every sandbox ("can't get final child's PID from pipe").
# restrict_oom_score_adj clamps every adjustment to containerd's own score.
oom_score = 0
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$ST/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  max_container_log_line_size = 16384
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    discard_unpacked_layers = false
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$ETC/cni"
    max_conf_num = 1
TOML
  # No masquerade and no default route out: pods talk to each other, to the
  # node IP (where Kafka, PostgreSQL, S3 listen) and to Services.
  write_if_changed "$ETC/cni/10-gavel.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "gavel-pods",
  "plugins": [
    {
      "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": { "type": "host-local", "dataDir": "/run/cni-ipam",
                "ranges": [[{ "subnet": "$POD_CIDR", "gateway": "$POD_GATEWAY" }]],
                "routes": [{ "dst": "0.0.0.0/0" }] }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
JSON
  # An empty resolv.conf would make containerd copy the host's into pods.
  echo "nameserver 127.0.0.1" >"$ETC/resolv.conf"
  write_if_changed "$ETC/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# containerd 1.6 does not report its cgroup driver; cgroup v1 needs the opt-in.
cgroupDriver: cgroupfs
failCgroupV1: false
cgroupRoot: /$CG
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
address: 0.0.0.0
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $D/pki/kubelet-serving.crt
tlsPrivateKeyFile: $D/pki/kubelet-serving.key
authentication: {anonymous: {enabled: false}, webhook: {enabled: true}, x509: {clientCAFile: $D/pki/ca.crt}}
authorization: {mode: Webhook}
clusterDomain: cluster.local
clusterDNS: [$DNS_IP]
resolvConf: $ETC/resolv.conf
failSwapOn: false
volumePluginDir: $ST/kubelet-plugins
# Images are imported, never pulled: never garbage-collect them, and do not
# evict pods because a shared CI disk is fuller than kubelet likes.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
serializeImagePulls: false
maxPods: 110
YAML
  write_if_changed "$ETC/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $D/kubeconfigs/kube-proxy.conf}
mode: iptables
clusterCIDR: 10.244.0.0/16
bindAddress: 0.0.0.0
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# zeros: leave the machine-wide conntrack table size and timeouts alone
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false}
YAML
  mkdir -p "$ST/kafka"
  # Two listeners: NODE for pods (the node IP), HOST for host clients, whose
  # advertised address is the host-side bridge. Kafka clients connect to the
  # advertised address, so one listener cannot serve both sides.
  write_if_changed "$ETC/kafka.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:9093
listeners=NODE://$NODE_IP:9092,CONTROLLER://127.0.0.1:9093,HOST://127.0.0.1:9094
advertised.listeners=NODE://$NODE_IP:9092,HOST://127.0.0.1:$HOST_KAFKA_PORT
listener.security.protocol.map=NODE:PLAINTEXT,HOST:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=NODE
log.dirs=$ST/kafka
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
log.segment.bytes=67108864
group.consumer.session.timeout.ms=10000
group.consumer.min.session.timeout.ms=3000
group.min.session.timeout.ms=1000
PROPS
  write_if_changed "$ETC/kafka-log4j2.properties" <<PROPS
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
PROPS
  # Prometheus in the node scrapes pods that carry the usual annotations
  # (prometheus.io/scrape, /port, /path). Debian's Prometheus has no
  # Kubernetes service discovery: test/cluster/prom-targets.ts writes the
  # targets file it reads.
  mkdir -p "$ST/prometheus-targets"
  write_if_changed "$ETC/prometheus.yml" <<YAML
global: {scrape_interval: 5s, evaluation_interval: 5s}
scrape_configs:
- job_name: pods
  file_sd_configs:
  - files: ["$ST/prometheus-targets/*.json"]
    refresh_interval: 5s
YAML
}

# ------------------------------------------------------------ the node namespaces

up_namespaces() {
  if holder_alive; then return; fi
  # Leftovers of a node that died (host-side bridges outlive it): stop them first.
  local f
  for f in "$RUN"/*.pid; do [[ -e $f ]] && stop_pid "$(basename "$f" .pid)"; done
  rm -f "$RUN"/*.sock
  # The holder owns a new mount namespace (private propagation: nothing
  # mounted inside reaches the host) and a new network namespace. Its argv
  # names the cluster folder, so `down` finds it even without pid files.
  setsid unshare --mount --net --propagation private -- bash -c "exec -a '$HOLDER_TAG' sleep infinity" \
    </dev/null >/dev/null 2>&1 &
  echo $! >"$RUN/holder.pid"
  local i
  for ((i = 0; i < 50; i++)); do holder_alive && break; sleep 0.1; done
  holder_alive || die "could not create the node namespaces (unshare --mount --net)"
  mkdir -p "$ST/varlog" "$ST/varlib/upper" "$ST/varlib/work" "$ST/fakesys" "$ST/kubelet" "$ST/kubelet-plugins" \
    "$ST/kcm-flexvolume" "$ST/containerd"
  # kubelet sets vm.overcommit_memory=1, kernel.panic=10, kernel.panic_on_oops=1;
  # those sysctls are machine-wide. In the node they are files already holding
  # those values, so kubelet changes nothing on the shared host.
  echo 1 >"$ST/fakesys/overcommit_memory"
  echo 10 >"$ST/fakesys/panic"
  echo 1 >"$ST/fakesys/panic_on_oops"
  nsx bash -euc "
    mount -t tmpfs -o mode=755 tmpfs /run
    mkdir -p /run/netns /run/containerd /run/lock
    mount --bind '$ST/varlog' /var/log          # kubelet hard-codes /var/log/pods and /var/log/containers
    # kubelet (device-plugins socket) and libcni (result cache) write to fixed
    # /var/lib paths: an overlay keeps the host's /var/lib readable, writes go to state/.
    mount -t overlay overlay -o 'lowerdir=/var/lib,upperdir=$ST/varlib/upper,workdir=$ST/varlib/work' /var/lib
    mount --bind '$ETC/resolv.conf' /etc/resolv.conf
    mount --bind '$ST/fakesys/overcommit_memory' /proc/sys/vm/overcommit_memory
    mount --bind '$ST/fakesys/panic' /proc/sys/kernel/panic
    mount --bind '$ST/fakesys/panic_on_oops' /proc/sys/kernel/panic_on_oops
    ip link set lo up
    # no dummy interfaces in this kernel: a bridge without ports holds the node IP
    ip link add node0 type bridge
    ip addr add $NODE_IP/24 dev node0
    ip link set node0 up
    # the node itself connect()s to ClusterIPs (kube-proxy DNATs in OUTPUT); no default route
    ip route add $SERVICE_CIDR dev node0
    sysctl -qw net.ipv4.ip_forward=1
  "
  # The pods' cgroup root, on every cgroup v1 hierarchy (kubelet requires it to exist).
  local h
  for h in /sys/fs/cgroup/*/; do
    [[ -f $h/cgroup.procs ]] || continue
    mkdir -p "$h$CG"
    if [[ -f $h/cpuset.cpus ]]; then # a new cpuset cgroup starts with no CPUs and no memory nodes
      cat "${h}cpuset.cpus" >"$h$CG/cpuset.cpus"
      cat "${h}cpuset.mems" >"$h$CG/cpuset.mems"
    fi
  done
  log "  node namespaces ready (holder $(holder_pid), node IP $NODE_IP)"
}

# ------------------------------------------------------------ components

up_control_plane() {
  start etcd "$B/etcd" --name default --data-dir "$ST/etcd" --unsafe-no-fsync --log-level warn \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster default=http://127.0.0.1:2380
  wait_for etcd 60 nsx curl -sf http://127.0.0.1:2379/health
  local K=$D/pki
  # The advertise address is the node IP: it becomes the `kubernetes` Service's endpoint.
  start kube-apiserver "$B/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 \
    --bind-address=0.0.0.0 --secure-port=6443 --advertise-address=$NODE_IP \
    --tls-cert-file="$K/apiserver.crt" --tls-private-key-file="$K/apiserver.key" --client-ca-file="$K/ca.crt" \
    --service-account-key-file="$K/sa.pub" --service-account-signing-key-file="$K/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local --service-cluster-ip-range=$SERVICE_CIDR \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction --allow-privileged=true \
    --kubelet-client-certificate="$K/apiserver-kubelet-client.crt" --kubelet-client-key="$K/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$K/ca.crt" --kubelet-preferred-address-types=InternalIP \
    --requestheader-client-ca-file="$K/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
    --requestheader-extra-headers-prefix=X-Remote-Extra- --requestheader-group-headers=X-Remote-Group \
    --requestheader-username-headers=X-Remote-User \
    --proxy-client-cert-file="$K/front-proxy-client.crt" --proxy-client-key-file="$K/front-proxy-client.key" \
    --enable-aggregator-routing=true --profiling=false
  start containerd /usr/bin/containerd -c "$ETC/containerd.toml"
  wait_for containerd 60 nsx ctr version
  wait_for kube-apiserver 180 nsx curl -sf --cacert "$K/ca.crt" --cert "$K/admin.crt" --key "$K/admin.key" https://$NODE_IP:6443/readyz
  local C=$D/kubeconfigs/controller-manager.conf S=$D/kubeconfigs/scheduler.conf
  start kube-controller-manager "$B/kube-controller-manager" --kubeconfig="$C" --authentication-kubeconfig="$C" \
    --authorization-kubeconfig="$C" --bind-address=127.0.0.1 --service-account-private-key-file="$K/sa.key" \
    --root-ca-file="$K/ca.crt" --cluster-signing-cert-file="$K/ca.crt" --cluster-signing-key-file="$K/ca.key" \
    --use-service-account-credentials=true --service-cluster-ip-range=$SERVICE_CIDR --allocate-node-cidrs=false \
    --leader-elect=false --controllers='*' --flex-volume-plugin-dir="$ST/kcm-flexvolume"
  start kube-scheduler "$B/kube-scheduler" --kubeconfig="$S" --authentication-kubeconfig="$S" \
    --authorization-kubeconfig="$S" --bind-address=127.0.0.1 --leader-elect=false
}

up_node() {
  start kubelet "$B/kubelet" --config="$ETC/kubelet.yaml" --kubeconfig="$D/kubeconfigs/kubelet.conf" \
    --root-dir="$ST/kubelet" --cert-dir="$ST/kubelet/pki" --node-ip=$NODE_IP --hostname-override=$NODE_NAME -v=1
  start kube-proxy "$B/kube-proxy" --config="$ETC/kube-proxy.yaml" --hostname-override=$NODE_NAME
  wait_for "node $NODE_NAME Ready" 180 nsx kubectl --kubeconfig "$D/kubeconfigs/admin.conf" wait \
    --for=condition=Ready "node/$NODE_NAME" --timeout=2s
  wait_for "default ServiceAccount" 60 nsx kubectl --kubeconfig "$D/kubeconfigs/admin.conf" get sa default
}

up_services() {
  # Kafka: the testenv's jars, KRaft, one broker on the node IP.
  local jvm=(-Xms256m -Xmx512m -XX:+UseG1GC "-Dlog4j2.configurationFile=$ETC/kafka-log4j2.properties" -cp "$KAFKA_LIBS/*")
  if ! alive kafka && [[ ! -f $ST/kafka/meta.properties ]]; then
    local id
    id=$("$NODE24" -e 'let s;do{s=require("crypto").randomBytes(16).toString("base64url")}while(s.startsWith("-"));console.log(s)')
    nsx java "${jvm[@]}" kafka.tools.StorageTool format -t "$id" -c "$ETC/kafka.properties" --ignore-formatted >>"$LOGS/kafka.log" 2>&1
  fi
  start kafka java "${jvm[@]}" kafka.Kafka "$ETC/kafka.properties"
  # PostgreSQL: its data on the node's private /run tmpfs, which the postgres
  # user can always enter (a CI checkout under a 0700 folder is not) and which
  # vanishes with the node. Password auth for everyone but the local socket.
  if ! alive postgres; then
    local pgd=/run/gavel-postgres
    if ! nsx test -f $pgd/data/PG_VERSION; then
      printf '%s\n' "$PG_PASSWORD" >"$RUN/pgpass"
      nsx bash -euc "mkdir -p $pgd && chown postgres:postgres $pgd && install -m 600 -o postgres '$RUN/pgpass' $pgd/pwfile"
      rm -f "$RUN/pgpass"
      nsx_root setpriv --reuid=postgres --regid=postgres --init-groups -- "$PG_BIN/initdb" -D $pgd/data -U gavel --pwfile=$pgd/pwfile --auth-local=trust \
        --auth-host=scram-sha-256 -E UTF8 --no-locale --no-sync >>"$LOGS/postgres.log" 2>&1
      nsx bash -c "echo 'host all all 0.0.0.0/0 scram-sha-256' >>$pgd/data/pg_hba.conf"
    fi
    # setpriv execs in place (runuser would fork): the pid file is the server's.
    START_WD=/ start postgres setpriv --reuid=postgres --regid=postgres --init-groups -- "$PG_BIN/postgres" -D $pgd/data -k $pgd -p 5432 \
      -c "listen_addresses=127.0.0.1,$NODE_IP" -c max_connections=300 -c shared_buffers=128MB \
      -c fsync=off -c full_page_writes=off
  fi
  # S3: versitygw (the testenv's build), posix backend under state/.
  mkdir -p "$ST/s3/data" "$ST/s3/meta"
  if ! alive versitygw; then
    start versitygw env "ROOT_ACCESS_KEY=$S3_ACCESS_KEY" "ROOT_SECRET_KEY=$S3_SECRET_KEY" \
      "$B/versitygw" --port :7070 posix --sidecar "$ST/s3/meta" "$ST/s3/data"
  fi
  if command -v prometheus >/dev/null; then
    start prometheus-targets "$NODE24" "$REPO/test/cluster/prom-targets.ts" --kubectl "$B/kubectl" \
      --kubeconfig "$D/kubeconfigs/admin.conf" --out "$ST/prometheus-targets/pods.json" --holder "$(holder_pid)"
    start prometheus "$(command -v prometheus)" --config.file="$ETC/prometheus.yml" \
      --storage.tsdb.path="$ST/prometheus" --web.listen-address=$NODE_IP:9090 --storage.tsdb.retention.time=1d \
      --log.level=warn
  fi
  wait_for postgres 60 nsx "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p 5432
  nsx "$PG_BIN/psql" -h /run/gavel-postgres -p 5432 -U gavel -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname='gavel'" | grep -q 1 ||
    nsx "$PG_BIN/psql" -h /run/gavel-postgres -p 5432 -U gavel -d postgres -qc "CREATE DATABASE gavel"
}

# bridge NAME HOST_PORT NODE_ADDR: host 127.0.0.1:HOST_PORT -> unix socket ->
# NODE_ADDR inside the node. The socket file crosses the namespace boundary
# (the cluster folder is visible on both sides); no route into the node exists.
bridge() {
  local name=$1 port=$2 target=$3 sock=$RUN/$1.sock
  if ! alive "bridge-$name-node"; then
    rm -f "$sock"
    start "bridge-$name-node" socat "UNIX-LISTEN:$sock,fork,mode=600" "TCP:$target"
  fi
  if ! alive "bridge-$name-host"; then
    setsid socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:$sock" \
      </dev/null >>"$LOGS/bridge-$name-host.log" 2>&1 &
    echo $! >"$RUN/bridge-$name-host.pid"
  fi
}

up_bridges() {
  bridge apiserver "$HOST_APISERVER_PORT" 127.0.0.1:6443
  bridge kafka "$HOST_KAFKA_PORT" 127.0.0.1:9094
  bridge postgres "$HOST_POSTGRES_PORT" 127.0.0.1:5432
  bridge s3 "$HOST_S3_PORT" 127.0.0.1:7070
  command -v prometheus >/dev/null && bridge prometheus "$HOST_PROMETHEUS_PORT" $NODE_IP:9090
  sed "s|server: https://.*|server: https://127.0.0.1:$HOST_APISERVER_PORT|" "$D/kubeconfigs/admin.conf" \
    >"$D/kubeconfigs/admin-host.conf"
  chmod 600 "$D/kubeconfigs/admin-host.conf"
}

# Add-on images: one static binary each, in a single-layer image (oci.ts).
import_image() { # ref rootfs-dir entrypoint-json user
  local ref=$1 tar
  tar=$KCACHE/images/$(echo "$ref" | tr '/:' '__').tar
  if [[ ! -f $tar ]]; then
    mkdir -p "$KCACHE/images"
    "$NODE24" "$REPO/test/cluster/oci.ts" --rootfs "$2" --ref "$ref" --out "$tar.tmp.$$" --entrypoint "$3" --user "$4" >/dev/null
    mv "$tar.tmp.$$" "$tar"
  fi
  nsx ctr -n k8s.io images import --all-platforms "$tar" >/dev/null
}

addon_images() {
  local have tmp
  have=$(nsx ctr -n k8s.io images ls -q)
  tmp=$(mktemp -d "$D/addon-rootfs.XXXXXX")
  local spec
  for spec in "$PAUSE_IMAGE:pause:65535" "registry.k8s.io/coredns/coredns:$COREDNS_VERSION:coredns:65532" \
    "registry.k8s.io/metrics-server/metrics-server:$METRICS_SERVER_VERSION:metrics-server:65534" \
    "registry.k8s.io/prometheus-adapter/prometheus-adapter:$PROMETHEUS_ADAPTER_VERSION:prometheus-adapter:65534"; do
    local user=${spec##*:} rest=${spec%:*}
    local bin=${rest##*:} ref=${rest%:*}
    grep -qxF "$ref" <<<"$have" && continue
    [[ -x $B/$bin ]] || continue
    mkdir -p "$tmp/$bin/tmp"
    chmod 1777 "$tmp/$bin/tmp"
    cp "$B/$bin" "$tmp/$bin/$bin"
    import_image "$ref" "$tmp/$bin" "[\"/$bin\"]" "$user:$user"
  done
  rm -rf "$tmp"
}

addons() {
  local m=$HERE/manifests
  local files=(-f "$m/coredns.yaml")
  [[ -x $B/metrics-server ]] && files+=(-f "$m/metrics-server.yaml")
  command -v prometheus >/dev/null && [[ -x $B/prometheus-adapter ]] && files+=(-f "$m/prometheus-adapter.yaml")
  # The operator writes Strimzi KafkaTopics: their CRD (the one the test
  # environment applies) must exist, though no topic operator acts on them here.
  local strimzi=${GAVEL_STRIMZI_CRD:-$REPO/../shared/reference/strimzi/043-Crd-kafkatopic.yaml}
  if [[ -f $strimzi ]]; then
    files+=(-f "$strimzi")
  else
    log "WARN: Strimzi KafkaTopic CRD not found ($strimzi; set GAVEL_STRIMZI_CRD): pipelines with provisioner strimzi will not reconcile"
  fi
  nsx kubectl --kubeconfig "$D/kubeconfigs/admin.conf" apply --server-side --force-conflicts "${files[@]}" >/dev/null
}

write_env() {
  local q="'"
  {
    echo "# Written by 'gavel cluster up' ($(date -u +%FT%TZ)). Source it: . .testenv/cluster/env"
    echo "# From the host (through 127.0.0.1 bridges):"
    echo "export KUBECONFIG=$q$D/kubeconfigs/admin-host.conf$q"
    echo "export DATABASE_URL=${q}postgres://gavel:$PG_PASSWORD@127.0.0.1:$HOST_POSTGRES_PORT/gavel$q"
    echo "export KAFKA_BOOTSTRAP_SERVERS=${q}127.0.0.1:$HOST_KAFKA_PORT$q"
    echo "export S3_ENDPOINT=${q}http://127.0.0.1:$HOST_S3_PORT$q"
    echo "export S3_REGION=${q}us-east-1$q"
    echo "export S3_BUCKET=${q}gavel-local$q"
    echo "export AWS_ACCESS_KEY_ID=$q$S3_ACCESS_KEY$q"
    echo "export AWS_SECRET_ACCESS_KEY=$q$S3_SECRET_KEY$q"
    command -v prometheus >/dev/null && echo "export PROMETHEUS_URL=${q}http://127.0.0.1:$HOST_PROMETHEUS_PORT$q"
    echo "export GAVEL_CLUSTER_KUBECTL=$q$KBIN/current/kubectl$q"
    echo "export GAVEL_CLUSTER_HELM=$q$KBIN/current/helm$q"
    echo "# What pods use (the node IP; the host cannot route there):"
    echo "export GAVEL_CLUSTER_KAFKA_BOOTSTRAP=$q$NODE_IP:9092$q"
    echo "export GAVEL_CLUSTER_DATABASE_URL=${q}postgres://gavel:$PG_PASSWORD@$NODE_IP:5432/gavel$q"
    echo "export GAVEL_CLUSTER_S3_ENDPOINT=${q}http://$NODE_IP:7070$q"
    command -v prometheus >/dev/null && echo "export GAVEL_CLUSTER_PROMETHEUS_URL=${q}http://$NODE_IP:9090$q"
    [[ -f $D/image ]] && echo "export GAVEL_IMAGE=$q$(cat "$D/image")$q"
  } >"$D/env.tmp"
  chmod 600 "$D/env.tmp"
  mv "$D/env.tmp" "$D/env"
}

cmd_up() {
  local t0 t
  t0=$(now)
  mkdir -p "$RUN" "$LOGS" "$ST"
  prereqs
  need_binaries
  configure
  t=$(now)
  log "node: namespaces, etcd, kube-apiserver, containerd ..."
  up_namespaces
  up_control_plane
  addon_images
  log "node: controller-manager, scheduler, kubelet, kube-proxy ..."
  up_node
  log "  control plane and node Ready in $(took "$t")"
  t=$(now)
  log "services in the node: Kafka, PostgreSQL, S3 (versitygw), Prometheus ..."
  up_services
  up_bridges
  addons
  wait_for "Kafka" 120 nsx bash -c "exec 3<>/dev/tcp/$NODE_IP/9092"
  log "  services ready in $(took "$t")"
  write_env
  log "node up in $(took "$t0")"
}

# ------------------------------------------------------------ down

stop_pid() { # name
  local f=$RUN/$1.pid pid i
  [[ -f $f ]] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

cmd_down() {
  local t0 h mnt
  t0=$(now)
  # The holder, also when the pid file is gone (found by its argv).
  h=$(holder_pid || true)
  if ! holder_alive; then
    h=$(pgrep -f -x "$HOLDER_TAG infinity" | head -1 || true)
    [[ -n $h ]] && echo "$h" >"$RUN/holder.pid"
  fi
  # 1. kubelet and kube-proxy first, so nothing restarts containers.
  stop_pid kubelet
  stop_pid kube-proxy
  local f
  for f in "$RUN"/bridge-*.pid; do [[ -e $f ]] && stop_pid "$(basename "$f" .pid)"; done
  for f in prometheus-targets prometheus kafka postgres versitygw; do stop_pid $f; done
  # 2. every container containerd runs.
  if [[ -n $h ]] && kill -0 "$h" 2>/dev/null && alive containerd; then
    local t
    for t in $(nsx ctr -n k8s.io tasks ls -q 2>/dev/null); do nsx ctr -n k8s.io tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true; done
    sleep 1
    for t in $(nsx ctr -n k8s.io tasks ls -q 2>/dev/null); do nsx ctr -n k8s.io tasks delete -f "$t" >/dev/null 2>&1 || true; done
  fi
  # 3. control plane and runtime.
  for f in kube-controller-manager kube-scheduler kube-apiserver etcd containerd; do stop_pid $f; done
  # 4. leftovers: anything in the node's mount namespace (shims) or in the pods' cgroup.
  if [[ -n $h ]] && kill -0 "$h" 2>/dev/null; then
    mnt=$(readlink "/proc/$h/ns/mnt")
    local p
    for p in /proc/[0-9]*; do
      [[ ${p#/proc/} == "$h" ]] && continue
      [[ $(readlink "$p/ns/mnt" 2>/dev/null) == "$mnt" ]] && kill -9 "${p#/proc/}" 2>/dev/null
    done
  fi
  local pid
  for pid in $(find /sys/fs/cgroup/pids/$CG -name cgroup.procs -exec cat {} + 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
  sleep 0.5
  # 5. the holder: the namespaces go with it (tmpfs /run with PostgreSQL's data,
  # bind mounts, node0, cni0, veths, the node's iptables rules).
  if [[ -n $h ]] && kill -0 "$h" 2>/dev/null; then
    kill "$h" 2>/dev/null || true
    local i
    for ((i = 0; i < 50; i++)); do kill -0 "$h" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$RUN/holder.pid"
  # 6. the pods' cgroup root on every hierarchy (deepest first).
  local hier
  for hier in /sys/fs/cgroup/*/; do
    [[ -d $hier$CG ]] || continue
    local tries
    for ((tries = 0; tries < 20; tries++)); do
      find "$hier$CG" -depth -type d -exec rmdir {} + 2>/dev/null || true
      [[ -d $hier$CG ]] || break
      sleep 0.5
    done
    [[ -d $hier$CG ]] && log "WARN: could not remove $hier$CG"
  done
  # 7. the cluster folder (PKI, data, logs, env); the build cache stays, and
  # so do the last three runs' logs (a component found down after `up` is
  # explained by its log, which would otherwise go with the folder).
  if [[ -d $LOGS ]] && [[ -n $(ls -A "$LOGS" 2>/dev/null) ]]; then
    local keep=$GAVEL_CACHE/cluster-logs
    mkdir -p "$keep"
    cp -r "$LOGS" "$keep/$(date -u +%Y%m%dT%H%M%SZ)" 2>/dev/null || true
    ls -1d "$keep"/*/ 2>/dev/null | sort | head -n -3 | xargs -r rm -rf
    log "logs kept in $keep/"
  fi
  if [[ -d $D ]]; then
    chmod -R u+w "$D" 2>/dev/null || true
    rm -rf "$D"
  fi
  log "down in $(took "$t0")"
}

# ------------------------------------------------------------ status

cmd_status() {
  local ok=0 n
  if holder_alive; then
    printf '%-24s up   pid=%s\n' "node namespaces" "$(holder_pid)"
  else
    printf '%-24s down\n' "node namespaces"
    ok=1
  fi
  for n in etcd kube-apiserver containerd kube-controller-manager kube-scheduler kubelet kube-proxy kafka postgres versitygw prometheus prometheus-targets \
    bridge-apiserver-host bridge-kafka-host bridge-postgres-host bridge-s3-host; do
    [[ $n == prometheus* || $n == bridge-prometheus-host ]] && ! command -v prometheus >/dev/null && continue
    if alive "$n"; then printf '%-24s up   pid=%s\n' "$n" "$(cat "$RUN/$n.pid")"; else
      printf '%-24s down\n' "$n"
      ok=1
    fi
  done
  if ((ok == 0)); then
    [[ -f $D/image ]] && printf '%-24s %s\n' image "$(cat "$D/image")"
    nsx kubectl --kubeconfig "$D/kubeconfigs/admin.conf" get nodes --no-headers 2>/dev/null | sed 's/^/node                     /'
    nsx kubectl --kubeconfig "$D/kubeconfigs/admin.conf" get pods -A --no-headers 2>/dev/null | awk '{printf "pod %-20s %-44s %s %s\n", $1, $2, $3, $4}'
    printf 'env: %s\n' "$D/env"
  fi
  return $ok
}

case ${1:-} in
  prereqs) mkdir -p "$LOGS" && prereqs ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  write-env)
    # shellcheck disable=SC1091
    . "$D/ports"
    # shellcheck disable=SC1091
    . "$D/credentials"
    write_env
    ;;
  *) die "usage: node.sh up|down|status" ;;
esac
