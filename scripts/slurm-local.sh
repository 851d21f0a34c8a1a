#!/usr/bin/env bash
# A single-node Slurm on this machine, for trying `bumps sweep --executor slurm` (and its slow test).
#
#   scripts/slurm-local.sh start    # install slurm-wlm + munge if missing (apt, needs root), write a
#                                   # minimal slurm.conf (this host, CPUs from nproc, partition "debug"),
#                                   # start munged, slurmctld, slurmd; waits until the node is idle
#   scripts/slurm-local.sh status   # are the daemons up? (sinfo)
#   scripts/slurm-local.sh stop     # stop the daemons this script started (by their pid files)
#
# Debian/Ubuntu only (apt). Everything it writes is under /etc/slurm (only if no slurm.conf of
# someone else's is there), /var/lib/slurm-local, /var/log/slurm-local and /run/slurm-local.
set -euo pipefail

CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
MARK="# written by bumps scripts/slurm-local.sh"
STATE=/var/lib/slurm-local
LOGS=/var/log/slurm-local
RUN=/run/slurm-local
MUNGE_PID=/run/munge/munged.pid

die() { echo "slurm-local: $*" >&2; exit 2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "needs root for: $* (run as root or install sudo)"; fi; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
        && command -v sbatch >/dev/null; then return; fi
    command -v apt-get >/dev/null || die "slurm-wlm/munge are missing and there is no apt-get; install them yourself"
    echo "installing slurm-wlm and munge (apt-get) ..."
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
}

write_conf() {
    if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
        die "$CONF exists and was not written by this script; not touching it"
    fi
    local host cpus mem
    host=$(hostname -s)
    cpus=$(nproc)
    mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
    as_root mkdir -p "$CONF_DIR" "$STATE/ctld" "$STATE/d" "$LOGS" "$RUN"
    as_root tee "$CONF" >/dev/null <<EOF
$MARK
ClusterName=bumps-local
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
KillWait=10
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
    if alive "$MUNGE_PID"; then return; fi
    if [ ! -s /etc/munge/munge.key ]; then
        as_root mkdir -p /etc/munge
        if command -v mungekey >/dev/null; then as_root mungekey --create --keyfile /etc/munge/munge.key
        else as_root dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none; fi
    fi
    local user=root
    id munge >/dev/null 2>&1 && user=munge
    as_root mkdir -p /run/munge /var/log/munge /var/lib/munge
    as_root chown "$user" /etc/munge/munge.key /run/munge /var/log/munge /var/lib/munge
    as_root chmod 0400 /etc/munge/munge.key
    as_root chmod 0755 /run/munge
    if [ "$user" = munge ]; then as_root runuser -u munge -- munged; else as_root munged --force; fi
}

start() {
    install_packages
    write_conf
    start_munge
    alive "$RUN/slurmctld.pid" || as_root slurmctld
    alive "$RUN/slurmd.pid" || as_root slurmd
    for _ in $(seq 60); do
        if sinfo -h -o '%t' 2>/dev/null | grep -Eq '^(idle|mix|alloc)'; then
            echo "slurm-local: up ($(hostname -s), $(nproc) CPUs, partition debug)"; return
        fi
        sleep 1
    done
    as_root scontrol update NodeName="$(hostname -s)" State=RESUME >/dev/null 2>&1 || true
    sinfo -h -o '%t' 2>/dev/null | grep -Eq '^(idle|mix|alloc)' \
        || die "daemons started but the node is not idle; see $LOGS/slurmctld.log and $LOGS/slurmd.log"
    echo "slurm-local: up"
}

stop() {
    local f
    for f in "$RUN/slurmd.pid" "$RUN/slurmctld.pid" "$MUNGE_PID"; do
        if alive "$f"; then
            local pid; pid=$(cat "$f")
            as_root kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        fi
    done
    echo "slurm-local: stopped"
}

status() {
    local name f
    for name in munged slurmctld slurmd; do
        case $name in munged) f=$MUNGE_PID ;; *) f=$RUN/$name.pid ;; esac
        if alive "$f"; then echo "$name: running (pid $(cat "$f"))"; else echo "$name: not running"; fi
    done
    command -v sinfo >/dev/null && sinfo 2>/dev/null || true
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
