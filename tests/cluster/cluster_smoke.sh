#!/usr/bin/env bash
# `make cluster-smoke`: bring cluster-local.yaml up for real on this machine and run a study
# on it. An OpenSSH server on 127.0.0.1 (a free port, a throwaway host key and user key,
# nothing in ~/.ssh touched), `ray up -y` of cluster-local.yaml with the head at 127.0.0.1,
# a 2-trial study submitted with `ray exec` (`yct tune --address auto`, MLflow server on the
# head), its results checked in MLflow, then `ray down -y`. Everything is cleaned up even
# when a step fails. Only loopback is used. `ray up`/`ray down` run `ray stop` on the head,
# which stops every Ray process of this machine: do not run it beside another Ray job.
#
# Skipped, with the reason printed, only when sshd cannot be installed. YCT_SMOKE_KEEP=1
# keeps the working folder (configs, logs) for a look after a failure.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VENV=${VENV:-$ROOT/.venv}
PY=$VENV/bin/python
WORK=$(mktemp -d /tmp/yct-cluster-smoke.XXXXXX)
NAME="yct-smoke-${WORK##*.}"  # the cluster name smoke_config.py gives
ls ~/ray_bootstrap_config.yaml ~/ray_bootstrap_key.pem > "$WORK/preexisting" 2> /dev/null || true
CLUSTER=$WORK/cluster.yaml
say() { echo "cluster-smoke: $(date +%T) $*"; }

cleanup() {
    status=$?
    set +e
    if [ -f "$CLUSTER" ]; then
        say "ray down"
        timeout 120 "$VENV/bin/ray" down -y "$CLUSTER" > "$WORK/ray_down.log" 2>&1 ||
            tail -5 "$WORK/ray_down.log"
    fi
    # `ray down` runs a bare `ray stop` on the head, which finds no `ray` here: the login
    # PATH of this machine is not changed for the smoke (cluster-local.yaml puts the venv on
    # it through ~/.bashrc). The head is this machine, so stop it here.
    "$VENV/bin/ray" stop --force > /dev/null 2>&1
    [ -f "$WORK/sshd.pid" ] && kill "$(cat "$WORK/sshd.pid")" 2> /dev/null
    # what `ray up` leaves behind: the head's bootstrap files in ~ (unless they were there
    # before), the local provider's state, the launcher's config cache
    for file in ~/ray_bootstrap_config.yaml ~/ray_bootstrap_key.pem; do
        grep -qxF "$file" "$WORK/preexisting" 2> /dev/null || rm -f "$file"
    done
    rm -f "/tmp/ray/cluster-$NAME.state" "/tmp/ray/cluster-$NAME.lock"
    grep -l "$NAME" /tmp/ray-config-* 2> /dev/null | xargs -r rm -f
    # the MLflow server (its own session, from setsid) with the workers it started, and
    # any shell of the head's start command still around: every session they are in
    own_session=$(ps -o sid= -p $$ | tr -d ' ')
    sessions=$(for pid in $(pgrep -f "mlflow server.*$WORK"); do ps -o sid= -p "$pid"; done |
        tr -d ' ' | sort -u | grep -vx "$own_session")
    for session in $sessions; do pkill -s "$session" 2> /dev/null; done
    for _ in $(seq 30); do
        alive=0
        for session in $sessions; do pgrep -s "$session" > /dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.5
    done
    for session in $sessions; do pkill -9 -s "$session" 2> /dev/null; done
    if [ "$status" -ne 0 ]; then
        say "FAILED (exit $status); logs:"
        for log in "$WORK"/*.log "$WORK"/*/*.log; do
            [ -f "$log" ] && { echo "--- $log"; tail -20 "$log"; }
        done
    fi
    if [ -n "${YCT_SMOKE_KEEP:-}" ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
    exit "$status"
}
trap cleanup EXIT

# -- an OpenSSH server, installed if missing ------------------------------------------------
if [ ! -x /usr/sbin/sshd ] || ! command -v rsync > /dev/null || ! command -v nc > /dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
        say "installing openssh-server, rsync, netcat-openbsd"
        (DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                openssh-server rsync netcat-openbsd) > "$WORK/apt.log" 2>&1 || true
    fi
fi
if [ ! -x /usr/sbin/sshd ] || ! command -v rsync > /dev/null || ! command -v nc > /dev/null; then
    say "SKIPPED: sshd, rsync or nc is missing and could not be installed (needs root and apt-get)"
    exit 0
fi

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
SSH_PORT=$(free_port)
MLFLOW_PORT=$(free_port)
RAY_PORT=$(free_port)

ssh-keygen -q -t ed25519 -N "" -f "$WORK/host_key"
ssh-keygen -q -t ed25519 -N "" -f "$WORK/id_ed25519"
cp "$WORK/id_ed25519.pub" "$WORK/authorized_keys"
cat > "$WORK/sshd_config" << EOF
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $WORK/host_key
AuthorizedKeysFile $WORK/authorized_keys
PidFile $WORK/sshd.pid
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
EOF
mkdir -p /run/sshd 2> /dev/null || true
/usr/sbin/sshd -f "$WORK/sshd_config" -E "$WORK/sshd.log"
for _ in $(seq 50); do nc -z 127.0.0.1 "$SSH_PORT" && break; sleep 0.1; done
say "sshd on 127.0.0.1:$SSH_PORT"

# -- the cluster: cluster-local.yaml, pointed at this machine -------------------------------
"$PY" "$ROOT/tests/cluster/smoke_config.py" "$ROOT/cluster-local.yaml" "$CLUSTER" \
    --work "$WORK" --venv "$VENV" --ssh-port "$SSH_PORT" --ray-port "$RAY_PORT" \
    --mlflow-port "$MLFLOW_PORT"
say "ray up"
timeout 300 "$VENV/bin/ray" up -y --no-config-cache "$CLUSTER" > "$WORK/ray_up.log" 2>&1

# -- a 2-trial study through ray exec, MLflow on the head -----------------------------------
"$VENV/bin/yct" data demo "$WORK/data" --images 40 --size 64 > /dev/null
"$PY" "$ROOT/tests/cluster/smoke_config.py" --space "$WORK/space.yaml" --data "$WORK/data/data.yaml"
say "ray exec: yct tune --address auto"
timeout 600 "$VENV/bin/ray" exec "$CLUSTER" \
    "cd $ROOT && MLFLOW_TRACKING_URI=http://127.0.0.1:$MLFLOW_PORT YCT_STORAGE=$WORK/results $VENV/bin/yct tune $WORK/space.yaml --address auto --name smoke --report-dir $WORK/pareto" \
    > "$WORK/study.log" 2>&1
"$PY" "$ROOT/tests/cluster/smoke_config.py" --check "http://127.0.0.1:$MLFLOW_PORT" \
    --storage "$WORK/results"
say "passed"
