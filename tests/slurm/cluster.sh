#!/usr/bin/env bash
# A real single-node SLURM cluster on loopback, for tests/test_slurm.py (and by hand).
#
#   tests/slurm/cluster.sh start    install slurm-wlm + munge if missing (apt, needs root), write
#                                   /etc/slurm/slurm.conf, start munged, slurmctld, slurmd; wait for the node
#   tests/slurm/cluster.sh stop     cancel every job, stop slurmd, slurmctld (and munged if this script started it),
#                                   remove the config it wrote (restoring one found before)
#   tests/slurm/cluster.sh status   sinfo + squeue
#
# Idempotent: `start` on a running cluster with the same config does nothing. The config must be at
# /etc/slurm/slurm.conf: snakemake-executor-plugin-slurm-jobstep drops SLURM_CONF inside jobs.
# No slurmdbd (no accounting): the profile queries job states with squeue, which keeps finished jobs for
# MinJobAge seconds. Logs: /var/log/slurm-test/. Override the wait with SLURM_TEST_WAIT (seconds).
set -euo pipefail

CONF=/etc/slurm/slurm.conf
STATE=/var/lib/slurm-test       # StateSaveLocation, slurmd spool, pid files, marker files
LOGS=/var/log/slurm-test
NODE=localhost
PARTITION=debug
WAIT=${SLURM_TEST_WAIT:-60}

say() { echo "cluster.sh: $*" >&2; }
die() {
    say "ERROR: $*"
    for f in "$LOGS/slurmctld.log" "$LOGS/slurmd.log"; do
        [[ -f $f ]] && { echo "--- tail $f" >&2; tail -n 20 "$f" >&2; }
    done
    exit 1
}

alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

install_if_missing() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sinfo >/dev/null &&
        command -v munged >/dev/null; then
        return
    fi
    [[ $(id -u) -eq 0 ]] || die "slurm-wlm/munge are not installed and installing them needs root"
    say "installing slurm-wlm and munge (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null ||
        { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null; } ||
        die "apt-get install slurm-wlm munge failed"
}

start_munge() {
    if [[ ! -s /etc/munge/munge.key ]]; then
        say "writing /etc/munge/munge.key"
        install -d -o munge -g munge -m 0700 /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    fi
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        return  # a munged is already answering (ours or the system's)
    fi
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    runuser -u munge -- /usr/sbin/munged || die "munged did not start (see /var/log/munge/munged.log)"
    touch "$STATE/munged.ours"
    for _ in $(seq 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return
        sleep 0.2
    done
    die "munged started but does not answer"
}

write_conf() {
    # The node as slurmd sees it (CPUs, sockets, cores, threads, RealMemory), renamed to $NODE.
    local hw
    hw=$(slurmd -C | head -n 1 | sed -E 's/^NodeName=[^ ]+ //')
    [[ $hw == *CPUs=* && $hw == *RealMemory=* ]] || die "unexpected 'slurmd -C' output: $hw"
    local new
    new=$(
        cat <<EOF
# Written by tests/slurm/cluster.sh: a single-node test cluster on loopback (no accounting).
ClusterName=clipcluster-test
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmdSpoolDir=$STATE/slurmd
StateSaveLocation=$STATE/slurmctld
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Finished jobs stay visible to squeue this long (1 h): the only job-state source without slurmdbd.
MinJobAge=3600
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=$NODE NodeAddr=127.0.0.1 $hw State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    )
    mkdir -p /etc/slurm
    if [[ -f $CONF ]] && [[ $(cat "$CONF") == "$new" ]]; then
        return 1  # unchanged
    fi
    if [[ -f $CONF ]] && ! grep -q '^# Written by tests/slurm/cluster.sh' "$CONF"; then
        cp -p "$CONF" "$CONF.before-test" && say "kept the previous $CONF as $CONF.before-test"
    fi
    printf '%s\n' "$new" >"$CONF"
    return 0
}

node_state() { sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -n 1; }

stop_daemons() {
    if alive "$STATE/slurmctld.pid"; then
        local ids
        ids=$(squeue -h -o '%i' 2>/dev/null || true)
        [[ -n $ids ]] && { say "cancelling jobs: $(echo $ids)"; scancel $ids 2>/dev/null || true; }
    fi
    local name pid
    for name in slurmd slurmctld; do
        if alive "$STATE/$name.pid"; then
            pid=$(cat "$STATE/$name.pid")
            kill -TERM "$pid"
            for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && { say "$name ($pid) ignored SIGTERM; killing"; kill -KILL "$pid"; }
        fi
        rm -f "$STATE/$name.pid"
    done
}

start() {
    install_if_missing
    [[ $(id -u) -eq 0 ]] || die "starting the test cluster needs root"
    install -d -m 0755 "$STATE" "$STATE/slurmd" "$STATE/slurmctld" "$LOGS"
    start_munge
    if write_conf; then
        say "wrote $CONF"
        stop_daemons  # daemons running on an older config: restart them
    fi
    if ! alive "$STATE/slurmctld.pid"; then
        # -c: a cold start, no jobs recovered from an earlier run of the test cluster
        /usr/sbin/slurmctld -c -f "$CONF" || die "slurmctld did not start"
    fi
    if ! alive "$STATE/slurmd.pid"; then
        /usr/sbin/slurmd -N "$NODE" -f "$CONF" || die "slurmd did not start"
    fi
    local state=""
    for _ in $(seq $((WAIT * 2))); do
        state=$(node_state)
        case $state in
            idle | mixed | allocated) say "node $NODE is $state (partition $PARTITION)"; return 0 ;;
            drain* | down*) scontrol update NodeName="$NODE" State=RESUME 2>/dev/null || true ;;
        esac
        sleep 0.5
    done
    die "node $NODE not idle after ${WAIT}s (state: '${state:-no answer}'; scontrol: $(scontrol show node "$NODE" 2>&1 | grep -o 'Reason=.*' || true))"
}

stop() {
    stop_daemons
    # A config naming a controller that is not running makes every slurm client command wait ~10 s for it, and
    # snakemake-executor-plugin-slurm runs `scontrol show config` when it is imported: every snakemake start (local
    # runs too) would wait. So the test cluster's config goes with it (and a config found before it comes back).
    if [[ -f $CONF ]] && grep -q '^# Written by tests/slurm/cluster.sh' "$CONF"; then
        rm -f "$CONF"
        [[ -f $CONF.before-test ]] && mv "$CONF.before-test" "$CONF"
    fi
    if [[ -f $STATE/munged.ours ]]; then
        if [[ -f /run/munge/munged.pid ]]; then
            kill -TERM "$(cat /run/munge/munged.pid)" 2>/dev/null || true
        fi
        rm -f "$STATE/munged.ours"
    fi
    say "stopped"
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    status) sinfo && squeue ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
