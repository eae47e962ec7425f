#!/usr/bin/env bash
# Local Apache Kafka (KRaft, one combined broker+controller on 127.0.0.1) for development and
# integration tests. No Docker and no Kafka tarball here: the jars come from Maven Central
# through scripts/kafka/pom-$KAFKA_VERSION.xml and the broker runs straight from them with `java`.
# scripts/kafka-cluster.sh runs three of these as one cluster (the KAFKA_NODE_ID… variables).
#
# Usage: scripts/kafka.sh fetch|start|stop|kill|restart|status|ensure|wipe
#
# Environment (all optional):
#   KAFKA_VERSION          3.9.1 or 4.4.0 (a pom-<version>.xml)  default 3.9.1
#   KAFKA_HOME             jar cache (lib/ inside)           default <repo>/var/kafka-dist/$KAFKA_VERSION
#   KAFKA_PORT             client (PLAINTEXT) port           default 9092
#   KAFKA_CONTROLLER_PORT  KRaft controller port             default 9093
#   KAFKA_DATA_DIR         log.dirs                          default <repo>/var/kafka-data/$KAFKA_PORT
#   KAFKA_PID_FILE         where the broker PID is kept      default $KAFKA_DATA_DIR/../kafka-$KAFKA_PORT.pid
#   KAFKA_LOG_FILE         broker stdout/stderr (appended)   default $KAFKA_DATA_DIR/../kafka-$KAFKA_PORT.log
#   KAFKA_START_TIMEOUT    seconds to wait for readiness     default 90
#   KAFKA_STOP_TIMEOUT     seconds to wait for a clean stop  default 60
#   KAFKA_HEAP_OPTS        heap flags                        default "-Xms512m -Xmx1G"
#   KAFKA_JVM_OPTS         extra JVM flags, appended
#   KAFKA_BROKER_SESSION_TIMEOUT_MS  broker.session.timeout.ms (default 3000)
#   KAFKA_CDS              1: reuse a class-data-sharing archive of the broker's classes  default 1
#   KAFKA_EXTRA_CONFIG     a properties file appended to the broker's config (its keys win: extra
#                          listeners, TLS/SASL, an authorizer); the PLAINTEXT listener on
#                          KAFKA_PORT must stay, since readiness is checked there
#   KAFKA_FORMAT_ARGS      extra arguments for the storage format of a new data dir, split on
#                          spaces (e.g. --add-scram SCRAM-SHA-512=[name=u,password=p])
#   JAVA_HOME              java to use                       default the one on PATH
# For one node of a cluster (scripts/kafka-cluster.sh sets them):
#   KAFKA_NODE_ID          node.id                           default 1
#   KAFKA_QUORUM_VOTERS    controller.quorum.voters          default 1@127.0.0.1:$KAFKA_CONTROLLER_PORT
#   KAFKA_CLUSTER_ID       cluster id the storage is formatted with  default a random one
#   KAFKA_REPLICATION_FACTOR  default.replication.factor (and internal topics')  default 1
#   KAFKA_MIN_INSYNC_REPLICAS min.insync.replicas         default 1
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java

KAFKA_VERSION=${KAFKA_VERSION:-3.9.1}
POM=$SCRIPT_DIR/kafka/pom-$KAFKA_VERSION.xml
[[ -f $POM ]] || { printf 'kafka.sh: KAFKA_VERSION=%s: no %s (known: 3.9.1, 4.4.0)\n' "$KAFKA_VERSION" "$POM" >&2; exit 2; }
# Kafka 3.x logs through log4j 1 (reload4j), 4.x through log4j2: each reads its own file.
case $KAFKA_VERSION in
  3.*) LOG_OPTS=(-Dlog4j.configuration="file:$SCRIPT_DIR/kafka/log4j.properties") ;;
  *) LOG_OPTS=(-Dlog4j2.configurationFile="$SCRIPT_DIR/kafka/log4j2.xml") ;;
esac

# One cache per version: a test run with 3.9.1 and a `make run` with 4.4.0 never re-fetch each other's.
KAFKA_HOME=${KAFKA_HOME:-$REPO_DIR/var/kafka-dist/$KAFKA_VERSION}
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
KAFKA_DATA_DIR=${KAFKA_DATA_DIR:-$REPO_DIR/var/kafka-data/$KAFKA_PORT}
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-90}
KAFKA_STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-60}
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms512m -Xmx1G}
KAFKA_JVM_OPTS=${KAFKA_JVM_OPTS:-}
KAFKA_BROKER_SESSION_TIMEOUT_MS=${KAFKA_BROKER_SESSION_TIMEOUT_MS:-3000}
KAFKA_CDS=${KAFKA_CDS:-1}
KAFKA_EXTRA_CONFIG=${KAFKA_EXTRA_CONFIG:-}
KAFKA_FORMAT_ARGS=${KAFKA_FORMAT_ARGS:-}
KAFKA_NODE_ID=${KAFKA_NODE_ID:-1}
KAFKA_QUORUM_VOTERS=${KAFKA_QUORUM_VOTERS:-$KAFKA_NODE_ID@127.0.0.1:$KAFKA_CONTROLLER_PORT}
KAFKA_CLUSTER_ID=${KAFKA_CLUSTER_ID:-}
KAFKA_REPLICATION_FACTOR=${KAFKA_REPLICATION_FACTOR:-1}
KAFKA_MIN_INSYNC_REPLICAS=${KAFKA_MIN_INSYNC_REPLICAS:-1}

# Resolved lazily (run_paths) so `fetch` never creates a data dir.
RUN_DIR= PID_FILE= LOG_FILE= CONFIG_FILE= CDS_PENDING=

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

run_paths() {
  # Absolute, because the JVM and the PID check compare against these strings.
  KAFKA_DATA_DIR=$(realpath -m -- "$KAFKA_DATA_DIR")
  RUN_DIR=$(dirname "$KAFKA_DATA_DIR")
  PID_FILE=${KAFKA_PID_FILE:-$RUN_DIR/kafka-$KAFKA_PORT.pid}
  LOG_FILE=${KAFKA_LOG_FILE:-$RUN_DIR/kafka-$KAFKA_PORT.log}
  # Outside log.dirs: the broker treats what it finds there as its own.
  CONFIG_FILE=$RUN_DIR/kafka-$KAFKA_PORT.properties
  CDS_PENDING=$RUN_DIR/kafka-$KAFKA_PORT.cds-pending
}

# ---------------------------------------------------------------- jars

lib_complete() {
  # The marker holds the pom's hash so a version bump in pom.xml re-fetches.
  [[ -f $KAFKA_HOME/lib/.complete ]] &&
    [[ $(cat "$KAFKA_HOME/lib/.complete") == "$(sha256sum <"$POM" | cut -d' ' -f1)" ]]
}

cmd_fetch() {
  lib_complete && return 0
  mkdir -p "$KAFKA_HOME"
  # Parallel test files may all find the cache empty; only one should run mvn.
  exec 8>"$KAFKA_HOME/.fetch.lock"
  flock 8
  if ! lib_complete; then
    command -v mvn >/dev/null || die "mvn not found: needed once to fetch the Kafka jars"
    log "fetching Kafka jars into $KAFKA_HOME/lib (one-off)"
    local tmp=$KAFKA_HOME/lib.tmp.$$
    rm -rf "$tmp"
    (cd "$SCRIPT_DIR/kafka" && mvn -B -q -f "$POM" org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
      -DoutputDirectory="$tmp" -DincludeScope=runtime) >&2
    ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || die "mvn finished but $tmp has no kafka_2.13 jar"
    sha256sum <"$POM" | cut -d' ' -f1 >"$tmp/.complete"
    # Swap whole folders so a broker never sees a half-copied classpath.
    rm -rf "$KAFKA_HOME/lib"
    mv "$tmp" "$KAFKA_HOME/lib"
  fi
  flock -u 8
  exec 8>&-
}

# ---------------------------------------------------------------- process helpers

port_open() {
  # bash's /dev/tcp: nc is not guaranteed to be installed.
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

recorded_pid() {
  [[ -s $PID_FILE ]] || return 1
  local pid
  pid=$(<"$PID_FILE")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  echo "$pid"
}

pid_alive() {
  # A killed broker whose parent (our long-gone shell) never reaps it lingers as a zombie, and
  # kill -0 still succeeds on it. But the JVM's main thread turns zombie first while its other
  # threads are still exiting and holding the sockets: only a zombie with no other thread is gone.
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $state ]] || return 1
  [[ $state != Z ]] && return 0
  local tasks
  tasks=$(find "/proc/$1/task" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  ((tasks > 1))
}

pid_is_ours() {
  # PIDs get reused after a reboot or a long idle: only signal a JVM running *this* config.
  tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "kafka.Kafka $CONFIG_FILE"
}

# Prints the PID of our running broker, or fails (and forgets a stale PID file).
running_pid() {
  local pid
  pid=$(recorded_pid) || return 1
  if pid_alive "$pid" && pid_is_ours "$pid"; then
    echo "$pid"
    return 0
  fi
  rm -f "$PID_FILE"
  return 1
}

wait_gone() { # pid timeout_seconds
  local deadline=$((SECONDS + $2))
  while pid_alive "$1"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# ---------------------------------------------------------------- class-data sharing
# Loading and verifying Kafka's ~100 jars is a third of a broker start (2.6 s -> 1.7 s measured
# with an archive), and tests restart brokers often. The JDK 17 way is a dynamic archive written
# when a JVM started with -XX:ArchiveClassesAtExit exits cleanly; later JVMs map it.
# It lives inside lib/ (a re-fetch swaps lib/ and so drops it) and is keyed by the java binary,
# because an archive only fits the JVM build that wrote it (a mismatch is only a warning).

cds_archive() {
  local java_bin key
  java_bin=$(readlink -f "$(command -v "$JAVA")")
  key=$(printf '%s %s' "$java_bin" "$(stat -c %Y "$java_bin")" | sha256sum | cut -c1-16)
  echo "$KAFKA_HOME/lib/.cds/broker-$key.jsa"
}

# Prints the JVM flag for this start: map the archive, or write one at exit.
cds_flag() {
  [[ $KAFKA_CDS == 1 ]] || return 0
  local archive
  archive=$(cds_archive)
  if [[ -s $archive ]]; then
    echo "-XX:SharedArchiveFile=$archive"
    return 0
  fi
  mkdir -p "$(dirname "$archive")"
  # A private temp name: brokers on other ports may be writing theirs at the same time, and a
  # crash leaves a partial file that must never be mapped. `stop` publishes it after a clean exit.
  local tmp=$archive.tmp.$$.$RANDOM
  printf '%s\n%s\n' "$tmp" "$archive" >"$CDS_PENDING"
  echo "-XX:ArchiveClassesAtExit=$tmp"
}

# After the broker is gone: publish its archive if it exited cleanly, else discard it.
cds_settle() { # clean(0|1)
  [[ -f $CDS_PENDING ]] || return 0
  local tmp archive
  { read -r tmp; read -r archive; } <"$CDS_PENDING"
  if [[ $1 == 1 && -s $tmp ]]; then
    mv -f "$tmp" "$archive"
  else
    rm -f "$tmp"
  fi
  rm -f "$CDS_PENDING"
}

# ---------------------------------------------------------------- config and storage

write_config() {
  cat >"$CONFIG_FILE" <<EOF
# Written by scripts/kafka.sh on every start; edit the script, not this file.
# Kafka $KAFKA_VERSION
process.roles=broker,controller
node.id=$KAFKA_NODE_ID
controller.quorum.voters=$KAFKA_QUORUM_VOTERS
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DATA_DIR

num.partitions=1
auto.create.topics.enable=true
default.replication.factor=$KAFKA_REPLICATION_FACTOR
min.insync.replicas=$KAFKA_MIN_INSYNC_REPLICAS
offsets.topic.replication.factor=$KAFKA_REPLICATION_FACTOR
transaction.state.log.replication.factor=$KAFKA_REPLICATION_FACTOR
transaction.state.log.min.isr=$KAFKA_MIN_INSYNC_REPLICAS
# Local and test use: the 50 default partitions only make the first consumer-group join slow.
offsets.topic.num.partitions=1
transaction.state.log.num.partitions=1
# Tests join fresh consumer groups all the time; the 3 s default delays every first fetch.
group.initial.rebalance.delay.ms=0
# After a SIGKILL the controller keeps the dead incarnation registered until its session expires,
# and the restarted broker gets DUPLICATE_BROKER_REGISTRATION until then: with the 9 s default a
# crash-restart took ~16 s, with 3 s ~5 s. Not lower: a starved broker that misses its own
# session gets fenced and every partition loses its only leader. Heartbeats stay well inside it.
broker.session.timeout.ms=${KAFKA_BROKER_SESSION_TIMEOUT_MS}
broker.heartbeat.interval.ms=500
EOF
  # java.util.Properties keeps the last value of a repeated key, so these override the above.
  if [[ -n $KAFKA_EXTRA_CONFIG ]]; then
    printf '\n# From KAFKA_EXTRA_CONFIG=%s\n' "$KAFKA_EXTRA_CONFIG" >>"$CONFIG_FILE"
    cat -- "$KAFKA_EXTRA_CONFIG" >>"$CONFIG_FILE" || die "cannot read KAFKA_EXTRA_CONFIG $KAFKA_EXTRA_CONFIG"
  fi
}

format_if_needed() {
  [[ -f $KAFKA_DATA_DIR/meta.properties ]] && return 0
  # Same shape as Kafka's Uuid (16 random bytes, base64url, no padding) without paying a JVM
  # start for `StorageTool random-uuid`; Kafka rejects none, but avoid a leading '-' like it does.
  # The nodes of one cluster share the id their caller chose (KAFKA_CLUSTER_ID).
  local id=$KAFKA_CLUSTER_ID
  if [[ -z $id ]]; then
    id=$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    [[ $id == -* ]] && id=A${id:1}
  fi
  # Static controller.quorum.voters: plain format. (--standalone is for a dynamic quorum; 3.9.1
  # accepts it here too but then writes a voter-set checkpoint this config never uses.)
  # Split on spaces without glob expansion: --add-scram's [name=…] is a bracket pattern to bash.
  local extra=()
  read -r -a extra <<<"$KAFKA_FORMAT_ARGS"
  "$JAVA" -cp "$KAFKA_HOME/lib/*" "${LOG_OPTS[@]}" \
    kafka.tools.StorageTool format -t "$id" -c "$CONFIG_FILE" "${extra[@]}" >>"$LOG_FILE" 2>&1 ||
    { tail -n 20 "$LOG_FILE" >&2; die "formatting $KAFKA_DATA_DIR failed"; }
}

# ---------------------------------------------------------------- commands

cmd_start() {
  cmd_fetch
  run_paths
  local pid
  if pid=$(running_pid); then
    log "already running (pid $pid) on 127.0.0.1:$KAFKA_PORT"
    port_open "$KAFKA_PORT" || die "pid $pid is alive but 127.0.0.1:$KAFKA_PORT does not answer"
    return 0
  fi
  port_open "$KAFKA_PORT" && die "127.0.0.1:$KAFKA_PORT is already taken by another process"
  port_open "$KAFKA_CONTROLLER_PORT" && die "127.0.0.1:$KAFKA_CONTROLLER_PORT is already taken by another process"

  mkdir -p "$KAFKA_DATA_DIR"
  write_config
  format_if_needed

  # Only lines written by this start may count as "started": the log is appended across restarts.
  local log_offset
  log_offset=$(stat -c %s "$LOG_FILE" 2>/dev/null || echo 0)
  printf '\n===== kafka.sh start %s (port %s, Kafka %s) =====\n' "$(date -Is)" "$KAFKA_PORT" "$KAFKA_VERSION" >>"$LOG_FILE"

  # A previous run that was killed may have left its pending archive behind.
  cds_settle 0
  local cds t0=$SECONDS
  cds=$(cds_flag)
  # shellcheck disable=SC2086 # heap/extra opts are deliberately word-split
  "$JAVA" $KAFKA_HEAP_OPTS -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
    -Djava.awt.headless=true "${LOG_OPTS[@]}" $cds $KAFKA_JVM_OPTS \
    -cp "$KAFKA_HOME/lib/*" kafka.Kafka "$CONFIG_FILE" \
    >>"$LOG_FILE" 2>&1 </dev/null &
  pid=$!
  # Out of the job table: bash would otherwise print "Killed" when a failed start kills it.
  disown "$pid" 2>/dev/null || true
  echo "$pid" >"$PID_FILE"

  local deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  while :; do
    if ! pid_alive "$pid"; then
      tail -n 50 "$LOG_FILE" >&2
      rm -f "$PID_FILE"
      cds_settle 0
      die "broker exited during startup (log: $LOG_FILE)"
    fi
    # "Kafka Server started" comes after the broker is registered and unfenced, so metadata
    # requests get a real answer; the port check guards against a log line from elsewhere.
    if tail -c +$((log_offset + 1)) "$LOG_FILE" | grep -q 'Kafka Server started' &&
      port_open "$KAFKA_PORT"; then
      break
    fi
    if ((SECONDS >= deadline)); then
      tail -n 50 "$LOG_FILE" >&2
      # A half-started JVM would hold the ports and the data dir lock for the next attempt.
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" 10 || true
      rm -f "$PID_FILE"
      cds_settle 0
      die "broker not ready after ${KAFKA_START_TIMEOUT}s (log: $LOG_FILE)"
    fi
    sleep 0.1
  done
  log "started Kafka $KAFKA_VERSION pid $pid on 127.0.0.1:$KAFKA_PORT in ~$((SECONDS - t0))s (data $KAFKA_DATA_DIR)"
}

cmd_stop() {
  run_paths
  local pid
  pid=$(running_pid) || { log "not running (port $KAFKA_PORT)"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" "$KAFKA_STOP_TIMEOUT"; then
    log "pid $pid ignored SIGTERM for ${KAFKA_STOP_TIMEOUT}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 10 || die "pid $pid survived SIGKILL"
    rm -f "$PID_FILE"
    cds_settle 0
    return 1
  fi
  rm -f "$PID_FILE"
  cds_settle 1
  log "stopped pid $pid"
}

cmd_kill() {
  run_paths
  local pid
  pid=$(running_pid) || { log "not running (port $KAFKA_PORT)"; return 0; }
  kill -KILL "$pid" 2>/dev/null || true
  wait_gone "$pid" 30 || die "pid $pid survived SIGKILL"
  rm -f "$PID_FILE"
  cds_settle 0
  log "killed pid $pid"
}

cmd_status() {
  run_paths
  local pid
  pid=$(running_pid) || { log "not running (port $KAFKA_PORT)"; return 1; }
  port_open "$KAFKA_PORT" || { log "pid $pid alive but 127.0.0.1:$KAFKA_PORT does not answer"; return 1; }
  echo "running pid $pid bootstrap 127.0.0.1:$KAFKA_PORT data $KAFKA_DATA_DIR"
}

cmd_ensure() {
  if port_open "$KAFKA_PORT"; then
    log "127.0.0.1:$KAFKA_PORT already answers; not starting another broker"
    return 0
  fi
  cmd_start
}

cmd_wipe() {
  cmd_stop || true
  rm -rf "$KAFKA_DATA_DIR"
  cds_settle 0
  rm -f "$CONFIG_FILE" "$PID_FILE"
  log "wiped $KAFKA_DATA_DIR"
}

case ${1:-} in
  fetch) cmd_fetch ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  kill) cmd_kill ;;
  restart)
    # Even a stop that had to escalate to SIGKILL leaves the data dir ready for a start.
    cmd_stop || true
    cmd_start
    ;;
  status) cmd_status ;;
  ensure) cmd_ensure ;;
  wipe) cmd_wipe ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
