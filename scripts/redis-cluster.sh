#!/usr/bin/env bash
# A local Redis Cluster for tests: three masters (no replicas) on 127.0.0.1:7101-7103, built from
# Debian's redis-server with --cluster-enabled yes.
#
#   scripts/redis-cluster.sh start    start it (does nothing if the cluster already answers ok)
#   scripts/redis-cluster.sh stop     shut the three servers down and remove their directory
#   scripts/redis-cluster.sh status   print `cluster info` of the first node, exit 1 if not up
#
# Tests reach it through LATCHKEY_TEST_REDIS_CLUSTER=redis-cluster://127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103
# (.ci/run exports it). Nothing is persisted: no RDB, no AOF, and each start begins with empty
# nodes.conf files in its own directory (LATCHKEY_REDIS_CLUSTER_DIR, default
# ${TMPDIR:-/tmp}/latchkey-redis-cluster). The cluster bus uses ports 17101-17103 (port + 10000).
set -euo pipefail

PORTS=(7101 7102 7103)
HOST=127.0.0.1
DIR="${LATCHKEY_REDIS_CLUSTER_DIR:-${TMPDIR:-/tmp}/latchkey-redis-cluster}"
WAIT_S=30

cli() { redis-cli -h "$HOST" -p "$1" "${@:2}"; }
answers() { [ "$(cli "$1" ping 2>/dev/null || true)" = "PONG" ]; }
cluster_ok() { cli "$1" cluster info 2>/dev/null | tr -d '\r' | grep -qx 'cluster_state:ok'; }
slots_assigned() { cli "$1" cluster info 2>/dev/null | tr -d '\r' | sed -n 's/^cluster_slots_assigned://p'; }
is_cluster_node() { cli "$1" info cluster 2>/dev/null | tr -d '\r' | grep -qx 'cluster_enabled:1'; }

all_ok() {
  for p in "${PORTS[@]}"; do cluster_ok "$p" || return 1; done
}

start() {
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null || { echo "redis-server or redis-cli not found (apt-get install redis-server)" >&2; exit 1; }
  if all_ok; then
    echo "redis cluster already up on ${PORTS[*]}"
    return 0
  fi
  mkdir -p "$DIR"
  for p in "${PORTS[@]}"; do
    if answers "$p"; then
      is_cluster_node "$p" || { echo "port $p answers but is not a cluster-enabled redis-server" >&2; exit 1; }
      continue
    fi
    # A node that is not running starts from scratch: an old nodes.conf would name peers that are gone.
    rm -f "$DIR/nodes-$p.conf" "$DIR/redis-$p.pid"
    redis-server --port "$p" --bind "$HOST" --protected-mode yes \
      --cluster-enabled yes --cluster-config-file "nodes-$p.conf" --cluster-node-timeout 2000 \
      --save "" --appendonly no --dir "$DIR" \
      --daemonize yes --pidfile "$DIR/redis-$p.pid" --logfile "$DIR/redis-$p.log"
  done
  for p in "${PORTS[@]}"; do
    for _ in $(seq 1 50); do answers "$p" && break; sleep 0.1; done
    answers "$p" || { echo "redis-server on $p did not answer; see $DIR/redis-$p.log" >&2; exit 1; }
  done

  # Create the cluster unless some node already holds slots (a half-up cluster settles by itself).
  local assigned=0
  for p in "${PORTS[@]}"; do assigned=$((assigned + $(slots_assigned "$p"))); done
  if [ "$assigned" -eq 0 ]; then
    local nodes=()
    for p in "${PORTS[@]}"; do nodes+=("$HOST:$p"); done
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$DIR/create.log" 2>&1 ||
      { cat "$DIR/create.log" >&2; exit 1; }
  fi

  for _ in $(seq 1 $((WAIT_S * 10))); do
    all_ok && { echo "redis cluster up on ${PORTS[*]} ($DIR)"; return 0; }
    sleep 0.1
  done
  echo "redis cluster not ok after ${WAIT_S} s:" >&2
  cli "${PORTS[0]}" cluster info >&2 || true
  exit 1
}

stop() {
  for p in "${PORTS[@]}"; do
    # Only cluster-enabled servers: a plain redis-server someone runs on one of these ports is left alone.
    if answers "$p" && is_cluster_node "$p"; then cli "$p" shutdown nosave >/dev/null 2>&1 || true; fi
  done
  for p in "${PORTS[@]}"; do
    for _ in $(seq 1 50); do answers "$p" || break; sleep 0.1; done
  done
  rm -rf "$DIR"
  echo "redis cluster stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) cli "${PORTS[0]}" cluster info 2>/dev/null | tr -d '\r' | grep . && all_ok ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
