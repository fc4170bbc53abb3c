#!/usr/bin/env bash
# A Kubernetes 1.20 control plane on 127.0.0.1 for tests: etcd, kube-apiserver and kube-controller-manager,
# with no kubelet and no scheduler (Pods stay Pending until something writes their status; see PodSimulator).
#
#   tests/k8s/control-plane.sh start DIR [--owner PID]   # returns once the API server is ready
#   tests/k8s/control-plane.sh restart-apiserver DIR DOWN_SECONDS   # kill -9, down a while, back on the same port
#   tests/k8s/control-plane.sh stop DIR
#
# start writes into DIR (created if missing): the certificates, keys and token file, DIR/admin.kubeconfig
# (a system:masters user, TLS verified against DIR/pki/ca.crt), DIR/env (ports, pids, URL, admin token; shell
# syntax) and one log per process (DIR/*.log). With --owner, a watchdog stops the control plane when that
# process dies, so a killed test run leaves nothing behind. stop kills the processes and deletes DIR.
# Binaries come from build-control-plane.sh (cached), or from $KUBE_BIN when set.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
usage() { echo "usage: $0 start DIR [--owner PID] | restart-apiserver DIR DOWN_SECONDS | stop DIR" >&2; exit 2; }
log() { echo "control-plane: $*" >&2; }

# A port nothing listens on yet, outside Linux's ephemeral range (32768-60999) so outgoing connections cannot
# take it before our server binds it. Random, so parallel control planes do not pick the same ones.
free_port() {
  local port
  while true; do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
}

# Waits until COMMAND succeeds, for at most SECONDS; fails naming WHAT and the log to read.
wait_for() {
  local what=$1 seconds=$2 logfile=$3
  shift 3
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    # The watchdog stops a control plane whose owner died, even one still starting.
    [[ -f $dir/env ]] || { log "stopped while starting"; return 1; }
    if ((SECONDS >= deadline)); then
      log "$what not ready after ${seconds}s; last lines of $logfile:"
      tail -n 30 "$logfile" >&2
      return 1
    fi
    sleep 0.2
  done
}

generate_pki() {
  local pki=$1
  mkdir -p "$pki"
  openssl req -x509 -new -nodes -newkey rsa:2048 -days 3650 -subj "/CN=batchrunner-test-ca" \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
  openssl req -new -nodes -newkey rsa:2048 -subj "/CN=kube-apiserver" \
    -keyout "$pki/apiserver.key" -out "$pki/apiserver.csr" 2>/dev/null
  # Clients reach the server as 127.0.0.1 or localhost; the in-cluster names are there for completeness.
  printf '%s\n' 'basicConstraints=CA:FALSE' 'keyUsage=digitalSignature,keyEncipherment' \
    'extendedKeyUsage=serverAuth' \
    'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc' \
    >"$pki/apiserver.ext"
  openssl x509 -req -days 3650 -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -CAcreateserial -extfile "$pki/apiserver.ext" -out "$pki/apiserver.crt" 2>/dev/null
  # A kubelet's serving certificate for 127.0.0.1: the API server checks it (--kubelet-certificate-authority) when it
  # proxies pod logs to a test's stand-in kubelet (StandInKubelet), as it checks a real kubelet's.
  openssl req -new -nodes -newkey rsa:2048 -subj "/CN=batchrunner-stand-in-kubelet" \
    -keyout "$pki/kubelet.key" -out "$pki/kubelet.csr" 2>/dev/null
  printf '%s\n' 'basicConstraints=CA:FALSE' 'keyUsage=digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth' \
    'subjectAltName=IP:127.0.0.1' >"$pki/kubelet.ext"
  openssl x509 -req -days 3650 -in "$pki/kubelet.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -CAcreateserial -extfile "$pki/kubelet.ext" -out "$pki/kubelet.crt" 2>/dev/null
  # The key pair that signs and verifies service-account tokens.
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
}

write_kubeconfig() {
  local file=$1 server=$2 ca=$3 user=$4 token=$5
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: batchrunner-test
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 <"$ca")
users:
- name: $user
  user:
    token: $token
contexts:
- name: $user@batchrunner-test
  context: {cluster: batchrunner-test, user: $user, namespace: default}
current-context: $user@batchrunner-test
EOF
  chmod 600 "$file"
}

start() {
  local dir=$1 owner=${2:-}
  local bin
  bin="${KUBE_BIN:-$("$here/build-control-plane.sh")}"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"

  local pki="$dir/pki"
  generate_pki "$pki"
  local admin_token controller_token
  admin_token=$(openssl rand -hex 24)
  controller_token=$(openssl rand -hex 24)
  # user,uid,"groups": the admin bypasses RBAC; the controller manager gets the bootstrap role made for it.
  printf '%s\n' "$admin_token,admin,admin,\"system:masters\"" \
    "$controller_token,system:kube-controller-manager,system:kube-controller-manager" >"$pki/tokens.csv"
  chmod 600 "$pki/tokens.csv"

  local etcd_port etcd_peer_port api_port
  etcd_port=$(free_port)
  etcd_peer_port=$(free_port)
  api_port=$(free_port)
  local server="https://127.0.0.1:$api_port"

  # setsid: the processes outlive this script and ignore the terminal's Ctrl-C; stdio goes to files so a
  # caller that reads this script's output does not wait for them to exit.
  setsid etcd --name default --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "default=http://127.0.0.1:$etcd_peer_port" \
    </dev/null >"$dir/etcd.log" 2>&1 &
  local etcd_pid=$!
  write_env "$dir" "$server" "$admin_token" "$etcd_port" "$api_port" "$etcd_pid" "" "" ""
  wait_for etcd 30 "$dir/etcd.log" curl -fsS "http://127.0.0.1:$etcd_port/health"

  start_apiserver "$dir" "$bin" "$etcd_port" "$api_port"
  local apiserver_pid=$!
  write_env "$dir" "$server" "$admin_token" "$etcd_port" "$api_port" "$etcd_pid" "$apiserver_pid" "" ""
  wait_for kube-apiserver 60 "$dir/kube-apiserver.log" \
    curl -fsS --cacert "$pki/ca.crt" -H "Authorization: Bearer $admin_token" "$server/readyz"

  write_kubeconfig "$dir/admin.kubeconfig" "$server" "$pki/ca.crt" admin "$admin_token"
  write_kubeconfig "$dir/controller-manager.kubeconfig" "$server" "$pki/ca.crt" \
    system:kube-controller-manager "$controller_token"

  # Controllers that need nodes, a cloud or volumes are off. --port=0 and --secure-port=0: it serves nothing.
  setsid "$bin/kube-controller-manager" \
    --kubeconfig="$dir/controller-manager.kubeconfig" --leader-elect=false --port=0 --secure-port=0 \
    --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
    --use-service-account-credentials --cloud-provider= \
    --controllers='*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-route,-service,-attachdetach,-persistentvolume-binder,-persistentvolume-expander,-csrsigning,-csrapproving,-horizontalpodautoscaling' \
    --feature-gates=TTLAfterFinished=true --profiling=false \
    </dev/null >"$dir/kube-controller-manager.log" 2>&1 &
  local controller_pid=$!

  local watchdog_pid=""
  if [[ -n $owner ]]; then
    # shellcheck disable=SC2016 # expanded by the watchdog's shell, from its arguments
    setsid bash -c 'while kill -0 "$1" 2>/dev/null && [[ -f $3/env ]]; do sleep 2; done; [[ ! -f $3/env ]] || "$2" stop "$3"' \
      watchdog "$owner" "$here/control-plane.sh" "$dir" </dev/null >"$dir/watchdog.log" 2>&1 &
    watchdog_pid=$!
  fi
  write_env "$dir" "$server" "$admin_token" "$etcd_port" "$api_port" "$etcd_pid" "$apiserver_pid" \
    "$controller_pid" "$watchdog_pid"

  # Ready means the controllers work: the default ServiceAccount and its token Secret exist. Pods cannot be
  # created in a namespace before that (1.20's ServiceAccount admission waits for the token).
  wait_for kube-controller-manager 60 "$dir/kube-controller-manager.log" default_token_exists \
    "$server" "$pki/ca.crt" "$admin_token"
  echo "$dir/admin.kubeconfig"
}

# Starts kube-apiserver in the background ($! is its pid) on 127.0.0.1:API_PORT over the etcd at ETCD_PORT.
start_apiserver() {
  local dir=$1 bin=$2 etcd_port=$3 api_port=$4
  local pki="$dir/pki"
  # --endpoint-reconciler-type=none: 127.0.0.1 cannot be the `kubernetes` Service's endpoint, and nothing here
  # runs in-cluster. TTLAfterFinished is alpha (off) in 1.20 but GA in every cluster the operator targets.
  setsid "$bin/kube-apiserver" \
    --bind-address=127.0.0.1 --secure-port="$api_port" --insecure-port=0 --advertise-address=127.0.0.1 \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" --cert-dir="$pki" \
    --token-auth-file="$pki/tokens.csv" --authorization-mode=RBAC \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range=10.0.0.0/24 --endpoint-reconciler-type=none \
    --feature-gates=TTLAfterFinished=true --profiling=false \
    --kubelet-certificate-authority="$pki/ca.crt" --kubelet-preferred-address-types=InternalIP \
    </dev/null >>"$dir/kube-apiserver.log" 2>&1 &
}

# Kills the API server (SIGKILL: as a crash or a node lost, nothing said to its clients), keeps it down for
# DOWN seconds, starts it again on the same port and etcd (so every object and resourceVersion stays) and
# returns once it is ready.
restart_apiserver() {
  local dir=$1 down=$2
  [[ -f $dir/env ]] || { log "$dir/env missing: no control plane runs from $dir"; exit 1; }
  # shellcheck disable=SC1091
  source "$dir/env"
  local bin
  bin="${KUBE_BIN:-$("$here/build-control-plane.sh")}"
  if tr '\0' ' ' <"/proc/$APISERVER_PID/cmdline" 2>/dev/null | grep -q -- kube-apiserver; then
    kill -9 "$APISERVER_PID"
    while kill -0 "$APISERVER_PID" 2>/dev/null; do sleep 0.05; done
  fi
  sleep "$down"
  start_apiserver "$dir" "$bin" "$ETCD_PORT" "$APISERVER_PORT"
  local apiserver_pid=$!
  write_env "$dir" "$SERVER" "$ADMIN_TOKEN" "$ETCD_PORT" "$APISERVER_PORT" "$ETCD_PID" "$apiserver_pid" \
    "$CONTROLLER_MANAGER_PID" "$WATCHDOG_PID"
  wait_for kube-apiserver 60 "$dir/kube-apiserver.log" \
    curl -fsS --cacert "$dir/pki/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" "$SERVER/readyz"
}

default_token_exists() {
  curl -fsS --cacert "$2" -H "Authorization: Bearer $3" "$1/api/v1/namespaces/default/serviceaccounts/default" |
    grep -q '"secrets"'
}

write_env() {
  local dir=$1
  cat >"$dir/env.partial" <<EOF
SERVER=$2
ADMIN_TOKEN=$3
ETCD_PORT=$4
APISERVER_PORT=$5
ETCD_PID=$6
APISERVER_PID=$7
CONTROLLER_MANAGER_PID=$8
WATCHDOG_PID=$9
EOF
  mv "$dir/env.partial" "$dir/env"
}

# Kills the processes a start launched and forgets them (removes DIR/env); the logs stay.
kill_all() {
  local dir=$1
  [[ -f $dir/env ]] || return 0
  # shellcheck disable=SC1091
  source "$dir/env"
  # Each pid is checked against its command line, so a pid the system has since given to another process is
  # left alone. The watchdog's pid is our parent when the watchdog is what runs this stop.
  local entry pid expected pids=()
  for entry in "${CONTROLLER_MANAGER_PID:-}:kube-controller-manager" "${APISERVER_PID:-}:kube-apiserver" \
               "${ETCD_PID:-}:etcd" "${WATCHDOG_PID:-}:watchdog"; do
    pid=${entry%%:*} expected=${entry#*:}
    [[ -n $pid && $pid != "$PPID" ]] || continue
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$expected"; then
      kill "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  local deadline=$((SECONDS + 10))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -f "$dir/env"
}

case "${1:-}" in
  start)
    [[ $# -eq 2 || ($# -eq 4 && $3 == --owner) ]] || usage
    dir=$2 owner=${4:-}
    [[ ! -f $dir/env ]] || { log "$dir/env exists: a control plane already runs from $dir (stop it first)"; exit 1; }
    # A start that fails half-way (or is killed) leaves nothing running and only its logs to read; nothing at
    # all when its owner is gone, as nobody will read them.
    trap 'if (($? != 0)); then
            kill_all "$dir"
            rm -rf "$dir/etcd"
            if [[ -n $owner ]] && ! kill -0 "$owner" 2>/dev/null; then rm -rf "$dir"; fi
          fi' EXIT
    start "$dir" "$owner"
    ;;
  restart-apiserver)
    [[ $# -eq 3 ]] || usage
    dir=$2
    restart_apiserver "$2" "$3"
    ;;
  stop)
    [[ $# -eq 2 ]] || usage
    kill_all "$2"
    rm -rf "$2"
    ;;
  *) usage ;;
esac
