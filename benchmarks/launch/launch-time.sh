#!/usr/bin/env bash
# launch-time.sh [-n N] [--append]: how long raygo-launch takes to bring up
# a 3-node raygo cluster under Slurm, measured N times (default 5).
#
# Each run submits examples/slurm/exit-code.sbatch 0 to the one-machine
# Slurm cluster of scripts/slurm (started if needed, and then stopped
# again). The batch script records RAYGO_T0 just before `srun raygo-launch`;
# the driver prints how long after it the first task had run on every node
# (STARTUP_MS): srun starting the tasks, rank 0's head, the other ranks
# finding it through the rendezvous directory and joining, the driver
# starting and connecting, and one task per node (each starting a worker
# process). Also shown: from sbatch to the same point, which adds Slurm's
# own scheduling and job start.
#
# Prints each run, then median, min and max, as a Markdown section; with
# --append, also appends that section to benchmarks/RESULTS.md.
#
# Environment: RAYGO_SLURM_DIR (the cluster's state dir, /tmp/raygo-slurm), GO (go).
set -euo pipefail

n=5
append=0
while [ $# -gt 0 ]; do
	case $1 in
	-n) n=$2; shift 2 ;;
	--append) append=1; shift ;;
	*) echo "usage: $0 [-n N] [--append]" >&2; exit 2 ;;
	esac
done
[[ $n =~ ^[1-9][0-9]*$ ]] || { echo "-n wants a count, got '$n'" >&2; exit 2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE=$(realpath -m -- "${RAYGO_SLURM_DIR:-/tmp/raygo-slurm}")
export SLURM_CONF=$STATE/etc/slurm.conf
GO=${GO:-go}

W=""
started=0
JOBS=()
cleanup() {
	set +e
	[ ${#JOBS[@]} -eq 0 ] || scancel "${JOBS[@]}" 2>/dev/null
	[ -z "$W" ] || rm -rf "$W"
	[ $started = 0 ] || "$ROOT/scripts/slurm/stop-slurm.sh" "$STATE" >/dev/null 2>&1
}
trap cleanup EXIT

out=$("$ROOT/scripts/slurm/start-slurm.sh" "$STATE" 2>&1) || { echo "$out" >&2; exit 1; }
grep -q 'already running' <<<"$out" || started=1

W=$(mktemp -d /tmp/rglt.XXXXXX)
chmod 755 "$W"
mkdir -p "$W/bin" "$W/out" "$W/tmp"
(cd "$ROOT" && "$GO" build -o "$W/bin/" ./cmd/raygo-launch ./examples/slurm/driver)
export RAYGO_BIN=$W/bin RAYGO_INTERFACE=127.0.0.1 RAYGO_RENDEZVOUS_DIR=$W/rv TMPDIR=$W/tmp

field() { scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
val() { sed -n "s/^$2 //p" "$W/out/$1.out" | head -1; }

startups=()
fromsbatch=()
for i in $(seq 1 "$n"); do
	submitted=$(($(date +%s%N) / 1000000))
	id=$(cd "$W/out" && sbatch --parsable --output="$W/out/%j.out" "$ROOT/examples/slurm/exit-code.sbatch" 0)
	JOBS+=("$id")
	end=$(($(date +%s) + 60))
	until case $(field "$id" JobState) in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL) true ;; *) false ;; esac; do
		[ "$(date +%s)" -lt $end ] || { echo "job $id did not end in 60 s" >&2; exit 1; }
		sleep 0.1
	done
	ms=$(val "$id" STARTUP_MS)
	[ -n "$ms" ] && [ "$(field "$id" JobState)" = COMPLETED ] || { echo "job $id failed:" >&2; cat "$W/out/$id.out" >&2; exit 1; }
	startups+=("$ms")
	fromsbatch+=($(($(val "$id" TASKS_AT_UNIX_MS) - submitted)))
	printf 'run %d (job %s): %s ms from srun (%s), %d ms from sbatch\n' "$i" "$id" "$ms" \
		"$(val "$id" STARTUP_BREAKDOWN_MS | sed 's/_ms//g')" "${fromsbatch[-1]}"	# Let Slurm release the nodes (COMPLETING) before the next sbatch.
	while [ -n "$(squeue -h -j "$id" 2>/dev/null)" ] && [ "$(date +%s)" -lt $((end + 10)) ]; do sleep 0.1; done
done

stats() { # median min max of the arguments
	local s
	s=$(printf '%s\n' "$@" | sort -n)
	echo "$(sed -n "$((($# + 1) / 2))p" <<<"$s") $(head -1 <<<"$s") $(tail -1 <<<"$s")"
}
read -r med lo hi <<<"$(stats "${startups[@]}")"
read -r smed slo shi <<<"$(stats "${fromsbatch[@]}")"

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -z "$(git -C "$ROOT" status --porcelain 2>/dev/null)" ] || commit="$commit (with uncommitted changes)"
section=$(
	cat <<EOF

## raygo-launch start time

Machine: $(nproc) vCPU ${cpu:-unknown CPU}, $mem, Linux $(uname -r); Slurm $(sinfo -V | awk '{print $2}'),
the one-machine test cluster of \`scripts/slurm\` (3 nodes, each a UTS namespace
on this machine, on loopback). $("$GO" env GOVERSION). Commit $commit. $(date -u +%Y-%m-%d).

Command: \`benchmarks/launch/launch-time.sh -n $n\` (each run: \`sbatch
examples/slurm/exit-code.sbatch 0\`, \`srun raygo-launch -- driver\` on 3 nodes
with 1 CPU each; the driver runs one task on every node).

| from | to | median | min | max |
|---|---|---|---|---|
| \`srun raygo-launch\` starts | a task has run on each of the 3 nodes | $med ms | $lo ms | $hi ms |
| \`sbatch\` | the same | $smed ms | $slo ms | $shi ms |

The row from \`sbatch\` adds Slurm's own scheduling and job start, which
raygo does not control.

Target: at most 1 s from srun on 3 nodes. For comparison, Ray's documented
Slurm template (\`doc/source/cluster/doc_code/slurm-basic.sh\` in ray-project/ray)
starts the head, sleeps 10 s, then starts each other node with its own srun
followed by \`sleep 5\`: 20 s of sleeps for 3 nodes (10 s + 5 s for each of the
2 worker nodes) before the driver starts. That is Ray's documentation, not a
measurement of Ray.
EOF
)
echo "$section"
if [ $append = 1 ]; then
	echo "$section" >>"$ROOT/benchmarks/RESULTS.md"
	echo "(appended to benchmarks/RESULTS.md)"
fi
