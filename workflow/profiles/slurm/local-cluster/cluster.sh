#!/usr/bin/env bash
# A one-node Slurm on this machine, to try `snakemake --profile workflow/profiles/slurm` before a real cluster
# (the test suite's `slurm` tests run against it too).
#
#   sudo workflow/profiles/slurm/local-cluster/cluster.sh start [--no-accounting]
#   sudo workflow/profiles/slurm/local-cluster/cluster.sh status
#   sudo workflow/profiles/slurm/local-cluster/cluster.sh stop
#
# Needs root on a Debian-like machine with `apt-get install slurm-wlm munge` (and `slurmdbd mariadb-server` for
# accounting, i.e. `sacct`). The node `localhost` has one fake GPU (gres.conf `File=/dev/null`: jobs get
# CUDA_VISIBLE_DEVICES, not a card) in partition `local`; with accounting, slurmdbd keeps jobs in a private MariaDB
# and the account `local` exists. Nothing is enforced (no cgroups): the node declares at least 8 CPUs and 32 GB
# (SlurmdParameters=config_overrides) so that the profile's requests of a GPU node fit on a small machine.
# Daemons, logs and state live in $LOCAL_SLURM_STATE (default /var/tmp/seq2seq-local-slurm), wiped on each
# start; `stop` ends the daemons it started by the PIDs it recorded there. Slurm reads /etc/slurm/slurm.conf
# (job steps ignore SLURM_CONF): the script writes it, marked as its own, and never overwrites one it did not write.
# `stop` removes the files it wrote there: a slurm.conf left behind naming a controller that is gone makes every
# Slurm command wait about 10 s for it, and so every Snakemake start where the SLURM executor plugin is installed
# (the plugin asks `scontrol show config` as it loads). LOCAL_SLURM_ETC replaces /etc/slurm for the script's tests.
set -euo pipefail

STATE=${LOCAL_SLURM_STATE:-/var/tmp/seq2seq-local-slurm}
ETC=${LOCAL_SLURM_ETC:-/etc/slurm}
CONFIG_FILES=(slurm.conf gres.conf slurmdbd.conf)   # what write_config writes in $ETC
MARK="# written by seq2seq local-cluster/cluster.sh"
STATE_MARK=.seq2seq-local-cluster   # in $STATE: the folder is ours to wipe
ACCOUNT=local
PARTITION=local
CLUSTER=local
DB_SOCKET=$STATE/mariadb/mysqld.sock   # a private server: slurmdbd finds it through MYSQL_UNIX_PORT
# Order matters for stop: the last started stops first.
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)

say() { echo "local-cluster: $*" >&2; }
die() { say "$*"; exit 1; }

pid_of() {  # the recorded PID of daemon $1 if that process still runs (and is that daemon), else nothing
    local file="$STATE/$1.pid" pid
    [ -s "$file" ] || return 0
    pid=$(tr -dc 0-9 <"$file")
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] && echo "$pid"
    return 0
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: run COMMAND until it succeeds
    local seconds=$1 what=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || die "$what did not come up within ${seconds}s (logs in $STATE)"
        sleep 0.2
    done
}

require_root_and_packages() {
    local accounting=$1 missing=()
    [ "$(id -u)" = 0 ] || die "must run as root (it writes $ETC and starts daemons): sudo $0 start"
    for command in munged slurmctld slurmd sbatch; do command -v "$command" >/dev/null || missing+=("$command"); done
    if [ "$accounting" = yes ]; then
        for command in slurmdbd mariadbd mariadb-install-db; do command -v "$command" >/dev/null || missing+=("$command"); done
    fi
    [ ${#missing[@]} = 0 ] || die "missing ${missing[*]}: on Debian/Ubuntu run apt-get install slurm-wlm munge" \
        "$([ "$accounting" = yes ] && echo "slurmdbd mariadb-server (or start --no-accounting)")"
}

write_config() {  # write_config ACCOUNTING(yes|no)
    local accounting=$1 cpus memory
    cpus=$(nproc); [ "$cpus" -ge 8 ] || cpus=8
    memory=$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo); [ "$memory" -ge 32000 ] || memory=32000
    if [ -e "$ETC/slurm.conf" ] && ! grep -qxF "$MARK" "$ETC/slurm.conf"; then
        die "$ETC/slurm.conf exists and was not written by this script: not touching it (a real Slurm here?)"
    fi
    mkdir -p "$ETC"
    cat >"$ETC/slurm.conf.tmp" <<EOF
$MARK
ClusterName=$CLUSTER
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/slurmctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
# no cgroups on many test machines: track a job's processes by process group, bind nothing (proctrack/linuxproc
# follows parents, and lost a batch step's Snakemake whose shell died first on SIGTERM: it outlived the job)
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
SchedulerType=sched/backfill
# the main scheduler stops at the first pending job it cannot start: a job waiting for the one GPU held the 1-CPU
# jobs queued behind it until the next backfill pass (every 30 s by default); on this one small node, every 2 s
SchedulerParameters=bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# without a default a job takes the node's whole memory and jobs run one at a time
DefMemPerCPU=1000
# the executor plugin's status_command squeue needs finished jobs kept >= 3 x its first status-check delay
MinJobAge=300
# SIGTERM at the time limit, SIGKILL this many seconds later (Slurm's default)
KillWait=30
ReturnToService=2
SlurmdParameters=config_overrides
GresTypes=gpu
EOF
    if [ "$accounting" = yes ]; then
        cat >>"$ETC/slurm.conf.tmp" <<EOF
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageTRES=gres/gpu
EOF
    fi
    cat >>"$ETC/slurm.conf.tmp" <<EOF
NodeName=localhost CPUs=$cpus RealMemory=$memory Gres=gpu:1 State=UNKNOWN
PartitionName=$PARTITION Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$ETC/slurm.conf.tmp" "$ETC/slurm.conf"
    # a GPU without a device file is dropped by slurmd (and the node drained): /dev/null stands in for the card
    printf '%s\nAutoDetect=off\nName=gpu File=/dev/null\n' "$MARK" >"$ETC/gres.conf"
    if [ "$accounting" = yes ]; then
        (umask 077; cat >"$ETC/slurmdbd.conf" <<EOF
$MARK
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=$STATE/slurmdbd.pid
LogFile=$STATE/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
EOF
        )
    else
        rm -f "$ETC/slurmdbd.conf"
    fi
}

start_munge() {
    if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
        say "munged already runs: using it"
        return
    fi
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 "$STATE/munge"
    [ -s /etc/munge/munge.key ] || die "/etc/munge/munge.key is missing (reinstall munge)"
    runuser -u munge -- munged --pid-file="$STATE/munge/munged.pid" --log-file="$STATE/munge/munged.log" \
        --seed-file="$STATE/munge/munged.seed"
    wait_for 10 munged sh -c 'munge -n </dev/null | unmunge'
    cp "$STATE/munge/munged.pid" "$STATE/munged.pid"
}

start_mariadb() {
    install -d -o mysql -g mysql -m 0700 "$STATE/mysql"
    mariadb-install-db --user=mysql --datadir="$STATE/mysql" --skip-test-db \
        --auth-root-authentication-method=socket >"$STATE/mariadb-install.log" 2>&1 \
        || die "mariadb-install-db failed (see $STATE/mariadb-install.log)"
    # no network, its own socket: slurmdbd (as root, socket authentication) reaches it there, and a MariaDB or
    # MySQL server this machine may run already is left alone
    install -d -o mysql -g mysql -m 0755 "$STATE/mariadb"
    mariadbd --user=mysql --datadir="$STATE/mysql" --socket="$DB_SOCKET" --pid-file="$STATE/mariadb/mariadbd.pid" \
        --skip-networking --log-error="$STATE/mariadb/mariadb.log" --innodb-buffer-pool-size=64M \
        </dev/null >/dev/null 2>&1 &
    echo $! >"$STATE/mariadbd.pid"   # mariadbd does not fork: this is its PID
    wait_for 30 mariadbd mariadb --socket="$DB_SOCKET" -e "SELECT 1"
}

start_slurmdbd() {
    MYSQL_UNIX_PORT="$DB_SOCKET" slurmdbd
    wait_for 30 slurmdbd sacctmgr -n list cluster
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
    sacctmgr -i add account "$ACCOUNT" Description="local test account" Organization=local >/dev/null
    sacctmgr -i add user root Account="$ACCOUNT" >/dev/null
    # under sudo, the user who asked submits the jobs
    if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
        sacctmgr -i add user "$SUDO_USER" Account="$ACCOUNT" >/dev/null
    fi
}

node_idle() { sinfo -h -n localhost -o %t | grep -qx idle; }

wait_for_controller() {  # slurmctld answers; fails at once, quoting its log, when its process is gone
    local deadline=$((SECONDS + 30))
    until scontrol ping 2>/dev/null | grep -q "is UP"; do
        if { [ -s "$STATE/slurmctld.pid" ] && [ -z "$(pid_of slurmctld)" ]; } || [ $SECONDS -ge $deadline ]; then
            die "the controller (slurmctld) did not come up: $(grep -m1 fatal "$STATE/slurmctld.log" 2>/dev/null \
                || echo "its log has no fatal error") (logs in $STATE)"
        fi
        sleep 0.2
    done
}

start() {
    local accounting=yes
    case "${1:-}" in
        "") ;;
        --no-accounting) accounting=no ;;
        *) die "unknown option $1 (usage: $0 start [--no-accounting])" ;;
    esac
    require_root_and_packages "$accounting"
    local running=()
    for daemon in "${DAEMONS[@]}"; do [ -z "$(pid_of "$daemon")" ] || running+=("$daemon"); done
    [ ${#running[@]} = 0 ] || die "already running (${running[*]}): $0 stop first"
    pgrep -x slurmctld >/dev/null && die "a slurmctld this script did not start already runs: not starting another"
    if [ -e "$STATE" ] && [ ! -e "$STATE/$STATE_MARK" ] && [ -n "$(ls -A "$STATE")" ]; then
        die "$STATE is not empty and was not made by this script: not wiping it (set LOCAL_SLURM_STATE)"
    fi
    write_config "$accounting"
    rm -rf "$STATE"
    install -d -m 0755 "$STATE" "$STATE/slurmctld" "$STATE/slurmd"
    touch "$STATE/$STATE_MARK"
    echo "$accounting" >"$STATE/accounting"
    # One interrupt (Ctrl-C, timeout's SIGTERM) ends the start, and the cleanup runs once, to the end: signals
    # during it (a process group gets each one again) are ignored
    trap 'trap "" INT TERM HUP; say "start failed: stopping what it started"; stop_daemons; remove_config' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
    start_munge
    if [ "$accounting" = yes ]; then
        start_mariadb
        start_slurmdbd
    fi
    slurmctld
    wait_for_controller
    slurmd -N localhost
    wait_for 30 "the node (slurmd)" node_idle
    trap - EXIT INT TERM HUP
    say "up: Slurm $(sinfo -V | awk '{print $2}'), node localhost with 1 GPU (gres gpu:1, fake), partition" \
        "$PARTITION, accounting $([ "$accounting" = yes ] && echo "on (sacct; account $ACCOUNT)" || echo "off (use status_command: squeue)")"
}

stop() {
    [ "$(id -u)" = 0 ] || die "must run as root: sudo $0 stop"
    stop_daemons
    remove_config
    say "stopped"
}

remove_config() {  # the config files this script wrote (marked), so that Slurm's commands stop asking for it
    local file
    for file in "${CONFIG_FILES[@]}"; do
        if [ -e "$ETC/$file" ] && grep -qxF "$MARK" "$ETC/$file"; then rm -f "$ETC/$file"; fi
    done
    rm -f "$ETC/slurm.conf.tmp"
}

stop_daemons() {
    local pid
    if [ -n "$(pid_of slurmctld)" ]; then
        # jobs still running would outlive slurmd (their slurmstepd keeps going): cancel them first
        squeue -h -o %i | xargs -r scancel --quiet 2>/dev/null || true
        for _ in $(seq 50); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.2; done
    fi
    for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
        pid=$(pid_of "${DAEMONS[i]}")
        [ -n "$pid" ] || continue
        kill -TERM "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            say "${DAEMONS[i]} ($pid) ignored SIGTERM for 10 s: killing it"
            kill -KILL "$pid"
        fi
        rm -f "$STATE/${DAEMONS[i]}.pid"
    done
}

status() {
    local any=no pid
    for daemon in "${DAEMONS[@]}"; do
        pid=$(pid_of "$daemon")
        if [ -n "$pid" ]; then echo "$daemon $pid"; any=yes; fi
    done
    [ "$any" = yes ] || { say "not running"; return 1; }
    for daemon in "${DAEMONS[@]}"; do
        case "$daemon:$(cat "$STATE/accounting" 2>/dev/null)" in mariadbd:no | slurmdbd:no) continue ;; esac
        [ -n "$(pid_of "$daemon")" ] || say "$daemon is not running (logs in $STATE)"
    done
    sinfo -N -o "%N %t %c %m %G %P"
}

case "${1:-}" in
    start) shift; start "$@" ;;
    stop) stop ;;
    status) status ;;
    *) die "usage: $0 start [--no-accounting] | stop | status" ;;
esac
