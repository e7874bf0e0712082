#!/usr/bin/env bash
# test-slurm.sh: raygo-launch on a real Slurm cluster.
#
# Starts the one-machine Slurm 22.05 cluster of scripts/slurm (installing
# Slurm if needed; needs root then), builds raygo-launch, the raygo CLI, the
# test driver (examples/slurm/driver) and the pipeline example into a
# temporary directory, submits the batch scripts of examples/slurm with
# sbatch, and checks with squeue/scontrol/scancel what a user would see:
#
#   a  a 3-node job runs a task on every node; the job ends with the
#      driver's exit code (0 and 7)
#   p  the pipeline example runs on 3 nodes
#   b  two jobs on the same nodes at the same time both succeed
#   c  scancel: the driver checkpoints (raygo.JobContext ends), and no
#      process, /dev/shm/raygo-*, socket, rgl-* state dir or rendezvous
#      entry is left within KillWait + 5 s
#   d  SIGUSR1 reaches the driver as a raygo.Notices value: sent to the
#      job's steps (scancel --signal=USR1 JOB, as --signal=USR1@N does), to
#      the batch shell (scancel -b, as --signal=B:USR1@N does), and from a
#      real time limit (--time=1 --signal=USR1@50; takes up to a minute,
#      run alongside the others; RAYGO_SLURM_TEST_TIMELIMIT=0 skips it)
#   e  the GPUs Slurm gives (fake gres, 2 per node) are the ones raygo reports
#   f  the job's head refuses a client without the cluster secret
#   g  kill -9 of a node agent mid-pipeline: rank 2's raygo-launch (node3)
#      is SIGKILLed while it holds a third of the driver's intermediate
#      objects; its workers die with it, the lost objects are rebuilt from
#      lineage (their fill tasks run again elsewhere), the total is right
#      and the job COMPLETES with the driver's exit code 0. The killed
#      node leaves exactly its store and state dir; the store is removed by
#      the next job's agents (checked in c), the state dir by this script
#   m  the mpi collectives backend's check program
#      (collectives/mpi/internal/mpicheck) as 4 ranks on 3 nodes, one MPI
#      world started by srun: Open MPI through --mpi=pmix, MPICH through
#      --mpi=pmi2, and the stand-in built without the mpi tag (ranks from
#      SLURM_PROCID, data over tcp) under plain srun; every operation,
#      element type and reduction against a float64 reference. A plugin
#      `srun --mpi=list` lacks, or an MPI not installed (make mpi-deps), is
#      a failure naming what is missing
#
# and prints the time from srun to the first task having run on every node.
#
# Prints PASS/FAIL lines and a last line "N passed, N failed"; exits non-zero
# on any failure. Leaves the cluster running unless this script started it.
# Every job listens on loopback only (RAYGO_INTERFACE=127.0.0.1), finds its
# head through a private rendezvous directory, and keeps its state under
# this run's TMPDIR, so other users of the cluster are left alone.
#
# Environment: RAYGO_SLURM_DIR (the cluster's state dir, /tmp/raygo-slurm),
# GO (go), RAYGO_SLURM_TEST_TIMEOUT (seconds for the whole run, 240),
# RAYGO_SLURM_TEST_KEEP=1 (keep the temporary directory).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=$(realpath -m -- "${RAYGO_SLURM_DIR:-/tmp/raygo-slurm}")
export SLURM_CONF=$STATE/etc/slurm.conf
GO=${GO:-go}
BUDGET=${RAYGO_SLURM_TEST_TIMEOUT:-240}
T_START=$(date +%s)
DEADLINE=$((T_START + BUDGET))

pass=0
fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
note() { echo "     $*"; }
# finish: the count line, then exit (through cleanup) 0 or 1.
finished=0
finish() {
	finished=1
	echo "$pass passed, $fail failed"
	[ "$fail" = 0 ] && exit 0
	exit 1
}
# An unexpected error (set -e) is a failure too, and the count line still
# comes last.
on_err() { bad "unexpected error at line $1: $2"; }
trap 'on_err $LINENO "$BASH_COMMAND"' ERR
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# ------------------------------------------------------------- the cluster
started_cluster=0
W=""
JOBS=()
cleanup() {
	local rc=$?
	set +e
	if [ ${#JOBS[@]} -gt 0 ]; then
		scancel "${JOBS[@]}" 2>/dev/null
		# KillWait, then what is left of this run's binaries (by PID).
		local end=$(($(date +%s) + 10))
		while [ -n "$(my_procs)" ] && [ "$(date +%s)" -lt $end ]; do sleep 0.2; done
		local p
		for p in $(my_procs | cut -d: -f1); do kill -KILL "$p" 2>/dev/null; done
	fi
	if [ -n "$W" ] && [ "${RAYGO_SLURM_TEST_KEEP:-0}" != 1 ]; then
		rm -rf "$W"
	elif [ -n "$W" ]; then
		echo "kept $W" >&2
	fi
	if [ $started_cluster = 1 ]; then
		"$ROOT/scripts/slurm/stop-slurm.sh" "$STATE" >/dev/null 2>&1
	fi
	if [ $finished = 0 ]; then
		[ "$fail" -gt 0 ] || bad "stopped early (exit status $rc)"
		echo "$pass passed, $fail failed"
		[ $rc != 0 ] || rc=1
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$(id -u)" != 0 ] && ! timeout 5 scontrol ping 2>/dev/null | grep -q 'is UP'; then
	echo "SKIP: no Slurm cluster at $SLURM_CONF, and starting one (scripts/slurm/start-slurm.sh) needs root"
	finish
fi
if ! out=$("$ROOT/scripts/slurm/start-slurm.sh" "$STATE" 2>&1); then
	echo "$out" | tail -20
	bad "start the Slurm cluster (scripts/slurm/start-slurm.sh $STATE)"
	finish
fi
grep -q 'already running' <<<"$out" || started_cluster=1
KILLWAIT=$(scontrol show config | sed -n 's/^KillWait *= *\([0-9]*\).*/\1/p')
KILLWAIT=${KILLWAIT:-30}
echo "cluster: $STATE ($( [ $started_cluster = 1 ] && echo "started by this run" || echo "already running")), $(sinfo -h -o '%D nodes, %c CPUs, gres %G' | head -1), KillWait ${KILLWAIT}s"

# ------------------------------------------------------------- build
W=$(mktemp -d /tmp/rgst.XXXXXX)
chmod 755 "$W"
mkdir -p "$W/bin" "$W/out" "$W/tmp"
t=$(date +%s)
if ! (cd "$ROOT" && "$GO" build -o "$W/bin/" ./cmd/raygo-launch ./cmd/raygo ./examples/slurm/driver ./examples/pipeline); then
	bad "build raygo-launch, raygo, the driver and the pipeline example"
	finish
fi
echo "built into $W/bin in $(($(date +%s) - t))s"

# What every job inherits from sbatch (--export=ALL is the default).
export RAYGO_BIN=$W/bin
export RAYGO_INTERFACE=127.0.0.1 # loopback only: never the machine's NIC
export RAYGO_RENDEZVOUS_DIR=$W/rv
export TMPDIR=$W/tmp
unset RAYGO_ADDRESS RAYGO_SECRET_FILE RAYGO_HEAD

# ------------------------------------------------------------- helpers
# sb SBATCH_ARGS...: sbatch from $W/out, output to $W/out/JOBID.out; sets
# ID to the job ID. submit SCRIPT [ARGS...]: sb a script of examples/slurm.
ID=""
SBATCH_EXTRA=()
sb() {
	ID=$(cd "$W/out" && sbatch --parsable --output="$W/out/%j.out" ${SBATCH_EXTRA[@]+"${SBATCH_EXTRA[@]}"} "$@")
	ID=${ID%%;*}
	JOBS+=("$ID")
}
submit() {
	local script=$1
	shift
	sb "$ROOT/examples/slurm/$script" "$@"
}

# field JOB NAME: one field of `scontrol show job -o`.
field() {
	scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1
}
terminal() {
	case $1 in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | PREEMPTED | BOOT_FAIL | DEADLINE) return 0 ;; esac
	return 1
}

# wait_end JOB SECONDS: wait until the job has ended; sets STATE_OF.
STATE_OF=""
wait_end() {
	local id=$1 t0 end said=0
	t0=$(date +%s)
	end=$((t0 + $2))
	[ $end -le $DEADLINE ] || end=$DEADLINE
	while :; do
		STATE_OF=$(field "$id" JobState)
		terminal "$STATE_OF" && return 0
		if [ "$STATE_OF" = PENDING ] && [ $said = 0 ] && [ $(($(date +%s) - t0)) -ge 5 ]; then
			note "job $id pending: $(field "$id" Reason) (other jobs hold the nodes?)"
			said=1
		fi
		[ "$(date +%s)" -lt $end ] || return 1
		sleep 0.1
	done
}

# wait_line JOB REGEX SECONDS: wait until the job's output has a matching
# line; fails early if the job ends without one.
wait_line() {
	local id=$1 re=$2 end=$(($(date +%s) + $3)) st said=0 t0
	t0=$(date +%s)
	[ $end -le $DEADLINE ] || end=$DEADLINE
	while :; do
		grep -qE "$re" "$W/out/$id.out" 2>/dev/null && return 0
		st=$(field "$id" JobState)
		if terminal "$st"; then
			grep -qE "$re" "$W/out/$id.out" 2>/dev/null && return 0
			note "job $id ended ($st) without printing /$re/"
			return 1
		fi
		if [ "$st" = PENDING ] && [ $said = 0 ] && [ $(($(date +%s) - t0)) -ge 5 ]; then
			note "job $id pending: $(field "$id" Reason) (other jobs hold the nodes?)"
			said=1
		fi
		if [ "$(date +%s)" -ge $end ]; then
			note "job $id ($st): no line /$re/ after $3 s"
			return 1
		fi
		sleep 0.05
	done
}

# val JOB WORD: the rest of the driver's output line that starts with WORD.
val() { sed -n "s/^$2 //p" "$W/out/$1.out" 2>/dev/null | head -1; }

# my_procs [JOB]: this run's processes (raygo-launch, drivers, workers),
# found by their executable under $W/bin, as PID:NAME; with JOB, only those
# whose environment names that Slurm job.
my_procs() {
	local p e
	[ -n "$W" ] || return 0
	for p in /proc/[0-9]*; do
		e=$(readlink "$p/exe" 2>/dev/null) || continue
		case $e in "$W"/bin/*) ;; *) continue ;; esac
		if [ $# -gt 0 ] && ! tr '\0' '\n' <"$p/environ" 2>/dev/null | grep -qx "SLURM_JOB_ID=$1"; then
			continue
		fi
		echo "${p#/proc/}:${e##*/}"
	done
}

# leftovers JOB...: what those jobs left behind (nothing: empty): their
# processes, /dev/shm/raygo-CLUSTER-*, agent sockets and the rgl-* state
# dirs holding them (from the driver's TASK lines), rendezvous entries.
leftovers() {
	local id cl s
	for id in "$@"; do
		cl=$(val "$id" CLUSTER)
		if [ -n "$cl" ]; then
			for s in /dev/shm/raygo-"$cl"-*; do [ -e "$s" ] && echo "shm $s"; done
		fi
		for s in $(sed -n 's/^TASK .* agent=unix:\([^ ]*\) .*/\1/p' "$W/out/$id.out" 2>/dev/null); do
			[ -e "$s" ] && echo "socket $s"
			s=$(dirname "$(dirname "$s")")
			[ -e "$s" ] && echo "state dir $s"
		done
		for s in "$W"/rv/slurm-"$id".* "$W"/rv/slurm-*-"$id".*; do [ -e "$s" ] && echo "rendezvous $s"; done
		my_procs "$id" | sed 's/^/process /'
	done
	return 0
}
# leftovers_all: anything of this run (once none of its jobs runs).
leftovers_all() {
	local s
	leftovers "${JOBS[@]}"
	for s in "$W"/tmp/rgl-* "$W"/tmp/raygo-* "$W"/rv/*; do [ -e "$s" ] && echo "$s"; done
	my_procs | sed 's/^/process /'
	return 0
}

# wait_clean SECONDS JOB...: wait until nothing is left; sets CLEAN_MS
# (how long it took) and LEFT (what was left at the end).
CLEAN_MS=0
LEFT=""
wait_clean() {
	local t0 end
	t0=$(now_ms)
	end=$((t0 + $1 * 1000))
	shift
	while :; do
		if [ "$1" = all ]; then LEFT=$(leftovers_all); else LEFT=$(leftovers "$@"); fi
		CLEAN_MS=$(($(now_ms) - t0))
		[ -n "$LEFT" ] || return 0
		[ "$(now_ms)" -lt $end ] || return 1
		sleep 0.1
	done
}

# nodes_of JOB: the job's nodes, sorted, comma-separated.
nodes_of() { scontrol show hostnames "$(field "$1" NodeList)" | sort | paste -sd, -; }

STARTUPS=()
record_startup() {
	local ms
	ms=$(val "$1" STARTUP_MS)
	[ -z "$ms" ] || STARTUPS+=("$ms")
}

# ran_everywhere JOB: the driver's tasks ran on each of the job's nodes,
# one raygo node per Slurm node, ranks 0..2, labelled with the job.
ran_everywhere() {
	local id=$1 want got
	want=$(nodes_of "$id")
	got=$(val "$id" NODES)
	if [ "$got" != "$want" ]; then
		note "job $id: tasks ran on '$got', the job has '$want'"
		return 1
	fi
	local ranks
	ranks=$(grep '^TASK ' "$W/out/$id.out" | grep -o ',rank=[0-9]*' | sort | paste -sd' ' -)
	if [ "$ranks" != ",rank=0 ,rank=1 ,rank=2" ] || [ "$(grep '^TASK ' "$W/out/$id.out" | grep -c "job=$id,")" != 3 ]; then
		note "job $id: TASK lines do not show ranks 0-2 of job $id:"
		grep '^TASK ' "$W/out/$id.out" | sed 's/^/       /'
		return 1
	fi
}

# rank_procs JOB RANK: this run's processes (as my_procs) of one rank
# (SLURM_PROCID) of that job: its raygo-launch and the workers it started.
rank_procs() {
	local p e env
	for p in /proc/[0-9]*; do
		e=$(readlink "$p/exe" 2>/dev/null) || continue
		case $e in "$W"/bin/*) ;; *) continue ;; esac
		env=$(tr '\0' '\n' <"$p/environ" 2>/dev/null) || continue
		grep -qx "SLURM_JOB_ID=$1" <<<"$env" && grep -qx "SLURM_PROCID=$2" <<<"$env" || continue
		echo "${p#/proc/}:${e##*/}:$(sed -n 's/^SLURMD_NODENAME=//p' <<<"$env")"
	done
	return 0
}

show() { note "output of job $1:"; sed 's/^/       | /' "$W/out/$1.out" 2>/dev/null | tail -25; }

echo "run: $W (TMPDIR and rendezvous dir of the jobs)"

# d (time limit) runs alongside the others: Slurm checks time limits
# periodically, so the warning due 10 s after the start comes some 5-30 s
# after it. The job holds one CPU per node, so b (two jobs) comes last.
TL=""
if [ "${RAYGO_SLURM_TEST_TIMELIMIT:-1}" = 1 ]; then
	SBATCH_EXTRA=(--time=1 --signal=USR1@50 --job-name=raygo-timelimit)
	submit signal.sbatch -wait-notice
	TL=$ID
	SBATCH_EXTRA=()
fi

# ------------------------------------------------------------- a: exit codes
for code in 0 7; do
	submit exit-code.sbatch "$code"
	id=$ID
	if ! wait_end "$id" 60; then
		bad "a: 3-node job $id exits $code: still $STATE_OF"
		show "$id"
		continue
	fi
	want_state=COMPLETED
	[ "$code" = 0 ] || want_state=FAILED
	ec=$(field "$id" ExitCode)
	if [ "$STATE_OF" = $want_state ] && [ "$ec" = "$code:0" ] && ran_everywhere "$id"; then
		ok "a: 3-node job $id: tasks on $(val "$id" NODES), job $STATE_OF with ExitCode=$ec (driver: -exit $code)"
	else
		bad "a: 3-node job $id: $STATE_OF ExitCode=$ec, want $want_state $code:0"
		show "$id"
	fi
	record_startup "$id"
	if wait_clean 5 "$id"; then ok "a: job $id left nothing behind"; else bad "a: job $id left:" && note "$LEFT"; fi
done

# ------------------------------------------------------------- s: raygo slurm script
# The script `raygo slurm script` writes, submitted as it is (raygo-launch
# found on PATH, as the script expects).
if "$W/bin/raygo" slurm script --nodes 3 --cpus-per-task 1 --time 5 --job-name raygo-script \
	-- "$W/bin/driver" -exit 3 >"$W/generated.sbatch"; then
	PATH=$W/bin:$PATH sb "$W/generated.sbatch"
	id=$ID
	if wait_end "$id" 60 && [ "$STATE_OF" = FAILED ] && [ "$(field "$id" ExitCode)" = 3:0 ] && ran_everywhere "$id"; then
		ok "s: the script from 'raygo slurm script --nodes 3 --cpus-per-task 1 --time 5 -- driver -exit 3' ran (job $id): tasks on 3 nodes, ExitCode=3:0"
	else
		bad "s: generated script (job $id): $STATE_OF ExitCode=$(field "$id" ExitCode)"
		show "$id"
	fi
else
	bad "s: raygo slurm script failed"
fi

# ------------------------------------------------------------- t: a node that never joins
# Rank 2 runs something else: rank 0 gives up after --join-timeout and
# names it; the job ends with raygo-launch's code 3.
sb --nodes=3 --ntasks-per-node=1 --cpus-per-task=1 --time=2 --job-name=raygo-nojoin --wrap \
	"srun --cpus-per-task=1 bash -c 'if [ \$SLURM_PROCID = 2 ]; then sleep 4; else exec $W/bin/raygo-launch --join-timeout 2s -- $W/bin/driver; fi'"
id=$ID
if wait_end "$id" 60; then
	third=$(scontrol show hostnames "$(field "$id" NodeList)" | sed -n 3p)
	msg=$(grep -o 'only 2 of 3 nodes joined within 2s; missing: .*' "$W/out/$id.out" || true)
	if [ "$(field "$id" ExitCode)" = 3:0 ] && [ "$msg" = "only 2 of 3 nodes joined within 2s; missing: rank 2 ($third)" ]; then
		ok "t: rank 2 never starts raygo-launch (job $id): rank 0 says '$msg', ExitCode=3:0"
	else
		bad "t: rank 2 never joins (job $id): ExitCode=$(field "$id" ExitCode), message '$msg', want rank 2 ($third)"
		show "$id"
	fi
	if wait_clean 5 "$id"; then :; else bad "t: job $id left:" && note "$LEFT"; fi
else
	bad "t: job $id did not end: $STATE_OF"
fi

# ------------------------------------------------------------- p: pipeline
submit pipeline-3node.sbatch
id=$ID
if wait_end "$id" 90 && [ "$STATE_OF" = COMPLETED ] && grep -q '^OK$' "$W/out/$id.out"; then
	ok "p: pipeline example on 3 nodes (job $id): OK, $(grep -c '^  node [0-9]*: [0-9]* tasks' "$W/out/$id.out") nodes ran tasks"
else
	bad "p: pipeline example (job $id): $STATE_OF"
	show "$id"
fi

# ------------------------------------------------------------- g: kill -9 of a node mid-pipeline
# The driver stores 30 objects of 256 KiB spread over the 3 nodes, prints
# READY and waits for $W/go-g; meanwhile rank 2's raygo-launch (node3) is
# SIGKILLed. Each fill task prints a FILL line, so the lines beyond 30 are
# the tasks run again to rebuild what node3 held.
G_STORE=""
GN=30
# g_left JOB: its leftovers and any raygo-* entry in the jobs' TMPDIR
# (object spill directories), sorted.
g_left() {
	local s
	{
		leftovers "$1"
		for s in "$W"/tmp/raygo-*; do [ ! -e "$s" ] || echo "$s"; done
	} | sort
}
submit node-loss.sbatch -pipeline $GN -go-file "$W/go-g"
id=$ID
if wait_line "$id" '^READY$' 60; then
	third=$(scontrol show hostnames "$(field "$id" NodeList)" | sed -n 3p)
	stored=$(val "$id" STORED)
	held=$(grep -o " $third=[0-9]*" <<<" $stored" | cut -d= -f2 || true)
	before=$(rank_procs "$id" 2)
	launch=$(grep ':raygo-launch:' <<<"$before" || true)
	if [ "$(grep -c . <<<"$launch")" = 1 ] && [ "${launch##*:}" = "$third" ] && [ "${held:-0}" -gt 0 ]; then
		pid=${launch%%:*}
		t0=$(now_ms)
		kill -KILL "$pid"
		end=$((t0 + 5000))
		# Gone: no executable (exited, a zombie at most) for any of them.
		pids=$(cut -d: -f1 <<<"$before")
		while :; do
			left=""
			for p in $pids; do readlink "/proc/$p/exe" >/dev/null 2>&1 && left="$left $p"; done
			[ -n "$left" ] && [ "$(now_ms)" -lt $end ] || break
			sleep 0.01
		done
		gone_ms=$(($(now_ms) - t0))
		left=$(rank_procs "$id" 2)
		if [ -z "$left" ]; then
			ok "g: kill -9 of rank 2's raygo-launch (pid $pid on $third, holding $held bytes of the driver's objects): it and its $(($(grep -c . <<<"$before") - 1)) worker(s) gone within $gone_ms ms"
		else
			bad "g: after kill -9 of rank 2's raygo-launch (pid $pid), still running: $left"
		fi
	else
		bad "g: job $id: want one raygo-launch of rank 2 on $third holding objects (STORED $stored); rank 2 has: $(paste -sd' ' - <<<"$before")"
	fi
	touch "$W/go-g"
	if wait_end "$id" 60; then :; fi
	out=$W/out/$id.out
	total=$(sed -n 's/^PIPELINE total=\([^ ]*\) .*/\1/p' "$out")
	want=$(sed -n 's/^PIPELINE .* want=\([^ ]*\) .*/\1/p' "$out")
	alive=$(val "$id" ALIVE_AFTER)
	want_alive=$(nodes_of "$id" | tr ',' '\n' | grep -vx "$third" | paste -sd, -)
	fills=$(grep -c '^FILL ' "$out" || true)
	# The parts made on the killed node, and the parts made a second time.
	lost=$(awk -v h="$third" '$1 == "FILL" && !seen[$2]++ && $3 == h {print $2}' "$out" | sort -n | paste -sd, -)
	again=$(awk '$1 == "FILL" && seen[$2]++ {print $2}' "$out" | sort -n | paste -sd, -)
	again_on=$(awk '$1 == "FILL" && seen[$2]++ {print $3}' "$out" | sort -u | paste -sd, -)
	# node-loss.sbatch says what the killed rank exited with (srun would
	# have made it the job's exit code).
	said=$(grep -o "^rank 2 ($third): raygo-launch exited [0-9]*" "$out" || true)
	if [ "$STATE_OF" = COMPLETED ] && [ "$(field "$id" ExitCode)" = 0:0 ] && [ -n "$total" ] && [ "$total" = "$want" ] &&
		[ "$alive" = "$want_alive" ] && [ "${said##* }" = 137 ]; then
		ok "g: job $id COMPLETED, ExitCode=0:0 ('$said'): PIPELINE total=$total = want=$want (the sums, started after the kill, took $(sed -n 's/^PIPELINE .* ms=//p' "$out") ms); alive after: $alive"
	else
		bad "g: job $id $STATE_OF ExitCode=$(field "$id" ExitCode): PIPELINE total='$total' want='$want', alive after '$alive' (want $want_alive), '$said' (want 137)"
		show "$id"
	fi
	if [ -n "$lost" ] && [ "$lost" = "$again" ] && [ "$fills" = $((GN + $(tr ',' '\n' <<<"$lost" | grep -c .))) ] &&
		! tr ',' '\n' <<<"$again_on" | grep -qx "$third"; then
		ok "g: rebuilt from lineage: the $(tr ',' '\n' <<<"$lost" | grep -c .) parts made on $third (fill $lost) ran again on $again_on, nothing else ($fills fill tasks for $GN parts)"
	else
		bad "g: rebuilt: parts made on $third: '$lost'; made twice: '$again' (on '$again_on'); $fills fill tasks for $GN parts"
	fi
	# What the killed rank could not remove, and nothing else.
	cl=$(val "$id" CLUSTER)
	line=$(grep "^TASK $third " "$out" || true)
	nid=$(sed -n 's/.* id=\([0-9]*\) .*/\1/p' <<<"$line")
	sock=$(sed -n 's/.* agent=unix:\([^ ]*\) .*/\1/p' <<<"$line")
	[ -z "$cl" ] || [ -z "$nid" ] || G_STORE=/dev/shm/raygo-$cl-$nid
	gdir=$(dirname "$(dirname "$sock")")
	want_left=$(printf '%s\n' "shm /dev/shm/raygo-$cl-$nid" "socket $sock" "state dir $gdir" | sort)
	t0=$(now_ms)
	while LEFT=$(g_left "$id") && [ "$LEFT" != "$want_left" ] && [ "$(now_ms)" -lt $((t0 + 5000)) ]; do sleep 0.1; done
	if [ -n "$cl" ] && [ -n "$nid" ] && [ "$LEFT" = "$want_left" ]; then
		ok "g: job $id left only what the SIGKILLed rank could not remove: its store $G_STORE, its state dir $gdir (with agent.sock); no process, nothing of the other nodes"
		note "the store is swept by the next raygo agent on the machine (checked in c), the state dir by the next raygo-launch using the same TMPDIR (both record their owner's pid); this script removes the state dir now"
	else
		bad "g: job $id left:"
		note "$LEFT"
		note "want exactly:"
		note "$want_left"
	fi
	case $gdir in "$W"/tmp/rgl-*) rm -rf -- "$gdir" ;; esac
else
	bad "g: job $id never became READY"
	show "$id"
	scancel "$id"
	wait_end "$id" 10 || true
fi

# ------------------------------------------------------------- c, f: scancel, secret
submit signal.sbatch -wait-term
id=$ID
if wait_line "$id" '^READY$' 60; then
	record_startup "$id"
	# g: the next agents on the machine (this job's) removed the store
	# that the node SIGKILLed in g left.
	if [ -n "$G_STORE" ]; then
		if [ -e "$G_STORE" ]; then
			bad "g: $G_STORE, left by the SIGKILLed node, is still there after job $id's agents started"
		else
			ok "g: $G_STORE, left by the SIGKILLed node, was removed when job $id's agents started"
		fi
	fi
	addr=$(val "$id" ADDRESS)
	secret=$(val "$id" SECRET_FILE)
	# f: a client with a wrong secret is refused; the right one is served.
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$W/wrong-secret"
	chmod 600 "$W/wrong-secret"
	out=$("$W/bin/raygo" status --address "$addr" --secret-file "$W/wrong-secret" --timeout 10s 2>&1) && rc=0 || rc=$?
	if [ $rc != 0 ] && grep -q 'refused authentication' <<<"$out"; then
		ok "f: head $addr refuses a client with another secret: $(grep -o 'refused authentication.*' <<<"$out" | cut -c1-60)..."
	else
		bad "f: raygo status with a wrong secret: rc=$rc: $out"
	fi
	# A raw TCP client: the head greets, and hangs up on bytes that are not
	# a handshake, sending nothing else.
	greeting=""
	reply="?"
	if exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}"; then
		greeting=$(timeout 5 dd bs=4096 count=1 <&3 2>/dev/null | head -c 5 | tr -c 'A-Z' '.')
		printf 'GET / HTTP/1.0\r\n\r\n%0200d' 0 >&3 2>/dev/null || true
		reply=$(timeout 7 cat <&3 2>/dev/null | wc -c) || true
		exec 3<&- 3>&-
	fi
	if [ "$greeting" = RAYGO ] && [ "$reply" = 0 ]; then
		ok "f: a raw TCP client sending junk gets the greeting, then the connection closed with nothing more"
	else
		bad "f: raw TCP probe of $addr: greeting '$greeting', $reply bytes after junk"
	fi
	out=$("$W/bin/raygo" status --address "$addr" --secret-file "$secret" --timeout 10s 2>&1) && rc=0 || rc=$?
	if [ $rc = 0 ] && grep -q '3 nodes (3 alive)' <<<"$out"; then
		ok "f: with the job's own secret, raygo status lists 3 alive nodes (the refusals did not disturb it)"
	else
		bad "f: raygo status with the job's secret: rc=$rc: $out"
	fi
	# c: scancel; everything gone within KillWait + 5 s. First make sure
	# the leftover check sees the running job's processes and files.
	before=$(leftovers "$id")
	summary=$(awk '{print $1}' <<<"$before" | sort | uniq -c | awk '{printf "%s%d %s", sep, $1, $2; sep=", "}')
	if grep -q '^process' <<<"$before" && grep -q '^shm' <<<"$before" && grep -q '^socket' <<<"$before" &&
		grep -q '^state' <<<"$before" && grep -q '^rendezvous' <<<"$before"; then
		ok "c: while job $id runs, the leftover check finds its $summary"
	else
		bad "c: while job $id runs, the leftover check finds only: $summary"
	fi
	t0=$(now_ms)
	scancel "$id"
	limit=$((KILLWAIT + 5))
	if wait_end "$id" "$limit"; then :; fi
	if wait_clean $((limit - ($(now_ms) - t0) / 1000)) "$id"; then
		ok "c: scancel $id: nothing left $(($(now_ms) - t0)) ms after scancel (limit KillWait+5 = ${limit}s; job $STATE_OF)"
	else
		bad "c: scancel $id: after $(($(now_ms) - t0)) ms still left:"
		note "$LEFT"
	fi
	if grep -q '^CHECKPOINT$' "$W/out/$id.out"; then
		ok "c: the driver saw raygo.JobContext end and printed CHECKPOINT"
	else
		bad "c: no CHECKPOINT from the driver"
		show "$id"
	fi
	if grep -q '^CHECKPOINT_TASKS node1,node2,node3$' "$W/out/$id.out"; then
		ok "c: after scancel the cluster still ran a task on every node during the grace period"
	else
		bad "c: checkpoint tasks: $(grep '^CHECKPOINT_TASKS' "$W/out/$id.out" || echo none)"
	fi
else
	bad "c/f: job $id never became READY"
	show "$id"
fi

# ------------------------------------------------------------- d: SIGUSR1
# "steps": scancel --signal=USR1 JOB reaches every process of the job's
# steps (raygo-launch on each node, the driver, workers), as
# --signal=USR1@N does. "batch": scancel -b reaches only the batch shell,
# as --signal=B:USR1@N does; signal.sbatch exec's srun, which passes it on.
for how in steps batch; do
	submit signal.sbatch -wait-notice
	id=$ID
	if ! wait_line "$id" '^READY$' 60; then
		bad "d ($how): job $id never became READY"
		show "$id"
		continue
	fi
	record_startup "$id"
	if [ $how = steps ]; then scancel --signal=USR1 "$id"; else scancel -b --signal=USR1 "$id"; fi
	if wait_end "$id" 30 && [ "$STATE_OF" = COMPLETED ] && grep -q '^NOTICE SIGUSR1$' "$W/out/$id.out" &&
		grep -q '^AFTER_NOTICE_TASKS node1,node2,node3$' "$W/out/$id.out"; then
		ok "d: SIGUSR1 to the job's $how (scancel $([ $how = batch ] && echo '-b ')--signal=USR1 $id): driver printed NOTICE SIGUSR1 (once), every node still ran a task, job COMPLETED"
	else
		bad "d: SIGUSR1 to the job's $how (job $id, $STATE_OF)"
		show "$id"
	fi
	if [ "$(grep -c '^NOTICE' "$W/out/$id.out")" != 1 ]; then
		bad "d: job $id: $(grep -c '^NOTICE' "$W/out/$id.out") notices for one signal"
	fi
done

# ------------------------------------------------------------- e: GPUs
submit gpu.sbatch
id=$ID
if wait_end "$id" 60 && [ "$STATE_OF" = COMPLETED ]; then
	record_startup "$id"
	gpus=$(val "$id" GPUS)
	good=1
	[ "$gpus" = "node1=2 node2=2 node3=2" ] || { good=0; note "GPUS line: '$gpus'"; }
	while read -r _ host _ _ g cuda _; do
		set_=$(sed -n "s/^SLURM_GPUS $host //p" "$W/out/$id.out")
		cuda=${cuda#cuda=}
		if [ "$g" != gpus=2 ] || [ -z "$set_" ] || ! tr ',' '\n' <<<"$set_" | grep -qx -- "$cuda"; then
			good=0
			note "$host: raygo $g, the GPU task saw CUDA_VISIBLE_DEVICES=$cuda; Slurm gave the step '$set_'"
		fi
	done < <(grep '^TASK ' "$W/out/$id.out")
	[ "$(grep -c '^TASK ' "$W/out/$id.out")" = 3 ] || good=0
	if [ $good = 1 ]; then
		ok "e: --gres=gpu:2 (job $id): raygo reports GPUS $gpus; each node's GPU task saw one of the step's GPUs ($(grep '^TASK ' "$W/out/$id.out" | awk '{print $2 ":" $6}' | paste -sd' ' -))"
	else
		bad "e: GPUs (job $id)"
		show "$id"
	fi
else
	bad "e: GPU job $id: $STATE_OF"
	show "$id"
fi

# ------------------------------------------------------------- d: time limit
if [ -n "$TL" ]; then
	if wait_end "$TL" 90 && [ "$STATE_OF" = COMPLETED ] && grep -q '^NOTICE SIGUSR1$' "$W/out/$TL.out" &&
		grep -q '^AFTER_NOTICE_TASKS node1,node2,node3$' "$W/out/$TL.out"; then
		ms=$(($(val "$TL" END_AT_UNIX_MS) - $(val "$TL" TASKS_AT_UNIX_MS)))
		ok "d: --time=1 --signal=USR1@50 (job $TL): the time-limit warning reached the driver $((ms / 1000)) s after it started; job COMPLETED before the limit"
	else
		bad "d: time-limit warning (job $TL): $STATE_OF"
		show "$TL"
	fi
	record_startup "$TL"
fi

# ------------------------------------------------------------- b: two jobs at once
submit exit-code.sbatch 0 -sleep 3s
b1=$ID
submit exit-code.sbatch 0 -sleep 3s
b2=$ID
if wait_end "$b1" 60 && s1=$STATE_OF && wait_end "$b2" 60 && s2=$STATE_OF && [ "$s1" = COMPLETED ] && [ "$s2" = COMPLETED ] &&
	ran_everywhere "$b1" && ran_everywhere "$b2"; then
	start=$(printf '%s\n' "$(val "$b1" TASKS_AT_UNIX_MS)" "$(val "$b2" TASKS_AT_UNIX_MS)" | sort -n | tail -1)
	end=$(printf '%s\n' "$(val "$b1" END_AT_UNIX_MS)" "$(val "$b2" END_AT_UNIX_MS)" | sort -n | head -1)
	n1=$(field "$b1" NodeList)
	n2=$(field "$b2" NodeList)
	if [ "$start" -lt "$end" ] && [ "$n1" = "$n2" ] && [ "$(val "$b1" CLUSTER)" != "$(val "$b2" CLUSTER)" ]; then
		ok "b: jobs $b1 and $b2 ran on the same nodes ($n1) at the same time ($((end - start)) ms overlap), each its own cluster, both COMPLETED"
	else
		bad "b: jobs $b1 ($n1) and $b2 ($n2) did not overlap on the same nodes (tasks done at $start, first end at $end)"
	fi
	record_startup "$b1"
	record_startup "$b2"
else
	bad "b: two jobs at once: $b1 ${s1:-?}, $b2 ${s2:-?}"
	show "$b1"
	show "$b2"
fi

# ------------------------------------------------------------- e: one GPU each, shared nodes
# Two jobs with one GPU per node share the nodes: Slurm gives them
# different devices, and each job's raygo offers and hands out its own.
SBATCH_EXTRA=(--gres=gpu:1)
submit gpu.sbatch -sleep 2s
g1=$ID
submit gpu.sbatch -sleep 2s
g2=$ID
SBATCH_EXTRA=()
good=1
seen=""
for id in $g1 $g2; do
	if ! wait_end "$id" 60 || [ "$STATE_OF" != COMPLETED ]; then
		good=0
		note "job $id: $STATE_OF"
		show "$id"
		continue
	fi
	[ "$(val "$id" GPUS)" = "node1=1 node2=1 node3=1" ] || { good=0; note "job $id: GPUS $(val "$id" GPUS)"; }
	while read -r _ host _ _ g cuda _; do
		cuda=${cuda#cuda=}
		if [ "$g" != gpus=1 ] || [ "$cuda" != "$(sed -n "s/^SLURM_GPUS $host //p" "$W/out/$id.out")" ]; then
			good=0
			note "job $id $host: raygo $g, task CUDA_VISIBLE_DEVICES=$cuda, Slurm gave '$(sed -n "s/^SLURM_GPUS $host //p" "$W/out/$id.out")'"
		fi
		seen="$seen $host:$cuda"
	done < <(grep '^TASK ' "$W/out/$id.out")
done
devices=$(tr ' ' '\n' <<<"$seen" | grep -c . || true)
distinct=$(tr ' ' '\n' <<<"$seen" | grep . | sort -u | wc -l)
if [ $good = 1 ] && [ "$devices" = 6 ] && [ "$distinct" = 6 ]; then
	ok "e: two --gres=gpu:1 jobs ($g1, $g2) on the same nodes: each raygo offers 1 GPU per node, and the GPU tasks saw the job's own device:$seen"
else
	bad "e: two --gres=gpu:1 jobs ($g1, $g2):$seen"
fi

# ------------------------------------------------------------- m: MPI under srun
# Four ranks on 3 nodes started by srun: one MPI world (through pmix for
# Open MPI, pmi2 for MPICH), then the stand-in under plain srun. Every
# transport stays on loopback.
mpi_plugins=$(srun --mpi=list 2>&1 | sed -n 's/^[[:space:]]*\([a-z0-9_]*\)$/\1/p' | paste -sd' ' -)
for v in pmix:ompi:mpi pmi2:mpich:mpi,mpich none:standin:; do
	plugin=${v%%:*}
	lib=${v#*:}
	tags=${lib#*:}
	lib=${lib%%:*}
	case $lib in
	ompi) what="srun --mpi=pmix, Open MPI (-tags mpi)" ;;
	mpich) what="srun --mpi=pmi2, MPICH (-tags mpi,mpich)" ;;
	*) what="srun, the stand-in over tcp (no mpi tag)" ;;
	esac
	if ! grep -qw "$plugin" <<<"$mpi_plugins"; then
		bad "m: $what: srun --mpi=list offers only '$mpi_plugins' (Slurm's mpi_$plugin plugin is missing)"
		continue
	fi
	if [ "$lib" != standin ] && ! pkg-config --exists "$lib"; then
		bad "m: $what: pkg-config finds no $lib (make mpi-deps installs libopenmpi-dev, libmpich-dev and pkg-config)"
		continue
	fi
	if [ "$plugin" = pmix ] && ! ls /usr/lib/*/pmix2/lib/libpmix.so >/dev/null 2>&1; then
		bad "m: $what: Slurm's pmix plugin loads libpmix.so, which only libpmix-dev ships (make mpi-deps)"
		continue
	fi
	if ! (cd "$ROOT" && "$GO" build -tags "$tags" -o "$W/bin/mpicheck-$lib" ./collectives/mpi/internal/mpicheck); then
		bad "m: $what: build mpicheck"
		continue
	fi
	sb --nodes=3 --ntasks=4 --time=2 --job-name=raygo-mpi-$plugin --wrap \
		"OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_btl_tcp_if_include=lo UCX_NET_DEVICES=lo srun --mpi=$plugin $W/bin/mpicheck-$lib -lengths 0,1,7,1000"
	id=$ID
	t0=$(now_ms)
	if wait_end "$id" 120 && [ "$STATE_OF" = COMPLETED ] && grep -aq '^mpicheck: OK: 4 ranks' "$W/out/$id.out"; then
		ok "m: $what on $(field "$id" NodeList) (job $id, $(($(now_ms) - t0)) ms): $(grep -ao 'OK: 4 ranks, [0-9]* checks' "$W/out/$id.out") on each; $(sed -n 's/.*rank and size from \([^)]*\))$/ranks from \1/p' "$W/out/$id.out")"
	else
		bad "m: $what (job $id): $STATE_OF ExitCode=$(field "$id" ExitCode)"
		show "$id"
	fi
	if wait_clean 5 "$id"; then :; else bad "m: job $id left:" && note "$LEFT"; fi
done

# Nothing of any job is left now.
if wait_clean 10 all; then
	ok "no process, /dev/shm/raygo-*, socket, state dir or rendezvous entry left by any of the ${#JOBS[@]} jobs"
else
	bad "left behind by this run's jobs:"
	note "$LEFT"
fi

# ------------------------------------------------------------- start time
if [ ${#STARTUPS[@]} -gt 0 ]; then
	sorted=$(printf '%s\n' "${STARTUPS[@]}" | sort -n)
	median=$(sed -n "$(((${#STARTUPS[@]} + 1) / 2))p" <<<"$sorted")
	echo "start time, srun to a task having run on each of 3 nodes (ms): $(paste -sd' ' - <<<"$sorted"); median $median"
	if [ "$median" -le 1000 ]; then
		ok "start time: median ${median} ms <= 1000 ms"
	else
		bad "start time: median ${median} ms > 1000 ms"
	fi
else
	bad "start time: no job printed STARTUP_MS"
fi

echo "took $(($(date +%s) - T_START)) s"
finish
