#!/usr/bin/env bash
# A local 3-node Kafka cluster (KRaft, every node a combined broker+controller, on 127.0.0.1) for
# tests and benchmarks of leader changes: default.replication.factor=3, min.insync.replicas=2, so
# one node may be down and acks=all writes still succeed. Each node is one scripts/kafka.sh broker
# (same jars, config, readiness check, PID file and CDS archive); this script gives them one
# cluster id, one quorum and their own ports and folders.
#
# Usage: scripts/kafka-cluster.sh start|stop|wipe|status|bootstrap
#        scripts/kafka-cluster.sh start-node|stop-node|kill-node|restart-node N     (N = 1, 2, 3)
#
# Environment (all optional):
#   KAFKA_VERSION                   3.9.1 or 4.4.0                           default 4.4.0
#   KAFKA_CLUSTER_DIR               nodes' folders (node-N/: data, kafka.pid, kafka.log)
#                                                                            default <repo>/var/kafka-cluster
#   KAFKA_CLUSTER_PORTS             client ports of nodes 1,2,3               default 19092,19094,19096
#   KAFKA_CLUSTER_CONTROLLER_PORTS  controller ports of nodes 1,2,3           default 19093,19095,19097
#   KAFKA_HEAP_OPTS                 per node; three run beside the tests on 2 cores
#                                                                            default "-Xms128m -Xmx384m"
#   KAFKA_START_TIMEOUT             seconds per start (three JVMs at once)    default 180
#   plus what scripts/kafka.sh reads (KAFKA_HOME, KAFKA_JVM_OPTS, JAVA_HOME…).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
KAFKA_SH=$SCRIPT_DIR/kafka.sh

export KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
KAFKA_CLUSTER_DIR=$(realpath -m -- "${KAFKA_CLUSTER_DIR:-$REPO_DIR/var/kafka-cluster}")
IFS=, read -r -a PORTS <<<"${KAFKA_CLUSTER_PORTS:-19092,19094,19096}"
IFS=, read -r -a CONTROLLER_PORTS <<<"${KAFKA_CLUSTER_CONTROLLER_PORTS:-19093,19095,19097}"
export KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms128m -Xmx384m}
export KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-180}
NODES=(1 2 3)

log() { printf 'kafka-cluster.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

((${#PORTS[@]} == 3 && ${#CONTROLLER_PORTS[@]} == 3)) ||
  die "KAFKA_CLUSTER_PORTS and KAFKA_CLUSTER_CONTROLLER_PORTS need three ports each"

voters() {
  local n out=
  for n in "${NODES[@]}"; do out+="${out:+,}$n@127.0.0.1:${CONTROLLER_PORTS[n - 1]}"; done
  echo "$out"
}

bootstrap() {
  local n out=
  for n in "${NODES[@]}"; do out+="${out:+,}127.0.0.1:${PORTS[n - 1]}"; done
  echo "$out"
}

cluster_id() {
  # Chosen once per cluster folder: every node's storage must be formatted with the same id.
  local file=$KAFKA_CLUSTER_DIR/cluster.id
  if [[ ! -s $file ]]; then
    mkdir -p "$KAFKA_CLUSTER_DIR"
    local id
    id=$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    [[ $id == -* ]] && id=A${id:1}
    echo "$id" >"$file"
  fi
  cat "$file"
}

# Runs scripts/kafka.sh COMMAND as node N.
node() { # N command
  local n=$1 dir=$KAFKA_CLUSTER_DIR/node-$1
  [[ $n =~ ^[123]$ ]] || die "node must be 1, 2 or 3 (got '$n')"
  KAFKA_PORT=${PORTS[n - 1]} \
    KAFKA_CONTROLLER_PORT=${CONTROLLER_PORTS[n - 1]} \
    KAFKA_DATA_DIR=$dir/data \
    KAFKA_PID_FILE=$dir/kafka.pid \
    KAFKA_LOG_FILE=$dir/kafka.log \
    KAFKA_NODE_ID=$n \
    KAFKA_QUORUM_VOTERS=$(voters) \
    KAFKA_CLUSTER_ID=$(cluster_id) \
    KAFKA_REPLICATION_FACTOR=3 \
    KAFKA_MIN_INSYNC_REPLICAS=2 \
    "$KAFKA_SH" "$2"
}

# Runs `node N ACTION` on every node at once; fails when any of them failed.
on_every_node() {
  local n pids=() rc=0
  for n in "${NODES[@]}"; do
    node "$n" "$1" &
    pids+=($!)
  done
  for n in "${!pids[@]}"; do wait "${pids[n]}" || rc=1; done
  return $rc
}

cmd_start() {
  "$KAFKA_SH" fetch
  cluster_id >/dev/null
  # All at once: a node is ready only once a majority of the controllers elected a leader.
  if ! on_every_node start; then
    local n
    for n in "${NODES[@]}"; do node "$n" stop || true; done
    die "cluster did not start (logs: $KAFKA_CLUSTER_DIR/node-*/kafka.log)"
  fi
  log "Kafka $KAFKA_VERSION cluster up: bootstrap $(bootstrap)"
}

cmd_stop() {
  # In parallel: a controller quorum that loses its majority makes the last nodes' clean stop
  # wait for controller timeouts; stopping together keeps it short.
  on_every_node stop
}

cmd_status() {
  local n rc=0
  for n in "${NODES[@]}"; do
    printf 'node %s: ' "$n"
    node "$n" status 2>&1 || rc=1
  done
  return $rc
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  bootstrap) bootstrap ;;
  wipe)
    cmd_stop || true
    rm -rf "$KAFKA_CLUSTER_DIR"
    log "wiped $KAFKA_CLUSTER_DIR"
    ;;
  start-node) node "${2:-}" start ;;
  stop-node) node "${2:-}" stop ;;
  kill-node) node "${2:-}" kill ;;
  restart-node) node "${2:-}" restart ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
