#!/usr/bin/env bash
# A one-node Slurm cluster (Debian's slurm-wlm + munge) for testing the Snakemake Slurm executor.
#
#   tests/slurm/onenode.sh DIR COMMAND...
#
# runs COMMAND inside private network and mount namespaces (`unshare --net --mount`: loopback only,
# so no daemon is reachable from outside this process tree; DIR/etc is bind-mounted on /etc/slurm
# there, so batch jobs find the config and the machine's /etc/slurm is untouched), after starting
# munged, slurmctld and slurmd with their state under DIR; everything started is stopped on exit.
# Needs root, unshare, slurm-wlm, munge.
#
# Why the unusual settings (found by bringing it up here):
# - CommunicationParameters=EnableIPv6: with IPv4 only, Slurm resolves addresses with AF_INET +
#   AI_ADDRCONFIG, which glibc refuses when the only interface is loopback (the namespace's case);
#   enabling IPv6 makes Slurm use AF_UNSPEC, which resolves 127.0.0.1.
# - No slurmdbd, so no sacct: Snakemake's plugin is run with --slurm-status-command squeue and the
#   finished jobs are kept visible to squeue with a long MinJobAge; an sacct shim answers the status
#   query the plugin still sends at times (see below).
# - ProctrackType=proctrack/linuxproc, TaskPlugin=task/none: no cgroups inside the sandbox.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "onenode.sh: needs root" >&2; exit 2; }
DIR=$(realpath -m "$1"); shift
[ $# -gt 0 ] || { echo "usage: onenode.sh DIR COMMAND..." >&2; exit 2; }
for tool in unshare munged slurmctld slurmd sbatch squeue; do
  command -v "$tool" >/dev/null || { echo "onenode.sh: '$tool' missing (apt-get install slurm-wlm munge util-linux)" >&2; exit 2; }
done

if [ "${ONENODE_INSIDE:-}" != 1 ]; then
  exec env ONENODE_INSIDE=1 unshare --net --mount "$0" "$DIR" "$@"
fi

ip link set lo up
mkdir -p "$DIR/state" "$DIR/spool" "$DIR/etc" /run/munge /etc/slurm
host=$(hostname)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 2048 ))
cat > "$DIR/etc/slurm.conf" <<CONF
ClusterName=trilemma-test
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CommunicationParameters=EnableIPv6
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=3600
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
mount --bind "$DIR/etc" /etc/slurm
export SLURM_CONF=/etc/slurm/slurm.conf
# munged's socket lives in /run/munge, which is the host's directory in this mount namespace too:
# a second cluster (a test run beside a hand run) would replace the socket with its own and remove
# it on exit, and this cluster's commands then fail to authenticate.  Give each cluster its own.
mkdir -p "$DIR/munge-run"
mount --bind "$DIR/munge-run" /run/munge

# An sacct for a cluster without accounting, first on PATH.  Snakemake's Slurm plugin (2.8.0) is run
# with --slurm-status-command squeue, yet it switches a status check to sacct whenever
# `scontrol show config` fails (its 10-s timeout passes, or munge is unreachable), and when
# every attempt of a check fails it yields none of its active jobs: the executor then forgets them
# and Snakemake waits forever (the whole toy profile stalled so, all of its Slurm jobs COMPLETED).
# The real sacct only says "Slurm accounting storage is disabled" (exit 1).  This one answers the
# plugin's status query (`--name <run>`, "id|STATE" lines) from squeue, which keeps finished jobs
# for MinJobAge, and prints nothing for any other query (the plugin's account guess).
mkdir -p "$DIR/bin"
cat > "$DIR/bin/sacct" <<'SACCT'
#!/bin/sh
name=
while [ $# -gt 0 ]; do
  case "$1" in --name) name=$2; shift ;; --name=*) name=${1#--name=} ;; esac
  shift
done
[ -n "$name" ] && exec squeue --states=all --noheader --format='%i|%T' --name "$name"
exit 0
SACCT
chmod +x "$DIR/bin/sacct"
export PATH="$DIR/bin:$PATH"

pids=()
cleanup() {
  set +e
  [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null
  for _ in $(seq 20); do kill -0 "${pids[@]}" 2>/dev/null || break; sleep 0.25; done
  [ ${#pids[@]} -gt 0 ] && kill -9 "${pids[@]}" 2>/dev/null
  return 0
}
trap cleanup EXIT

munged --foreground --force --log-file="$DIR/munged.log" --seed-file="$DIR/munged.seed" >"$DIR/munged.out" 2>&1 & pids+=($!)
sleep 0.5
slurmctld -D -f "$SLURM_CONF" >"$DIR/slurmctld.out" 2>&1 & pids+=($!)
slurmd -D -f "$SLURM_CONF" >"$DIR/slurmd.out" 2>&1 & pids+=($!)
for _ in $(seq 60); do
  sinfo -h -o %t 2>/dev/null | grep -q idle && break
  sleep 0.5
done
sinfo -h -o %t | grep -q idle || { echo "onenode.sh: the node did not come up; see $DIR/*.log" >&2; exit 1; }
"$@"
