#!/usr/bin/env bash
# compare.sh: Open MPI's MPI_Allreduce next to raygo's allreduce, in one run.
#
# Builds allreduce.c with Debian's mpicc (Open MPI) and cmd/raygo, then
# times float32 sum allreduce with 2 ranks on this machine at each size:
#
#   openmpi-shm  mpirun -np 2 --mca btl self,vader (shared memory)
#   openmpi-tcp  mpirun -np 2 --mca btl self,tcp --mca btl_tcp_if_include lo
#   raygo shm    raygo bench collectives --backend shm --ranks 2 --op allreduce --json
#   raygo tcp    raygo bench collectives --backend tcp ...
#
# and prints, per size, each one's time and busbw (algbw * 2(n-1)/n) and
# raygo's busbw over MPI's (shm over shared memory, tcp over TCP). A raygo
# backend that cannot run (not built in yet, or failing) is reported and
# left out; the MPI numbers still print. Everything stays on loopback.
#
# Environment: SIZES (4,4K,64K,1M,16M,64M), RANKS (2), MIN_TIME (seconds
# per size and run, 0.2), TIMEOUT (seconds for each of the four runs,
# 300), RAYGO_FLAGS (more flags for raygo bench collectives, such as
# "--warmup 20"), GO (go), KEEP=1 (keep the raw JSON lines).
# Needs openmpi-bin and libopenmpi-dev (make mpi-deps). Takes about 20 s.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
GO=${GO:-go}
SIZES=${SIZES:-4,4K,64K,1M,16M,64M}
RANKS=${RANKS:-2}
MIN_TIME=${MIN_TIME:-0.2}
TIMEOUT=${TIMEOUT:-300}
W=$(mktemp -d /tmp/rgcmp.XXXXXX)
cleanup() { if [ "${KEEP:-0}" = 1 ]; then echo "kept $W" >&2; else rm -rf "$W"; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM
export OMPI_MCA_oob_tcp_if_include=lo RAYGO_INTERFACE=127.0.0.1

for tool in mpicc.openmpi mpirun.openmpi; do
	command -v $tool >/dev/null || { echo "compare.sh: $tool is missing (make mpi-deps)" >&2; exit 1; }
done
mpicc.openmpi -O2 -o "$W/allreduce" "$ROOT/benchmarks/collectives/allreduce.c"
raygo_built=1
if ! (cd "$ROOT" && "$GO" build -o "$W/raygo" ./cmd/raygo) >"$W/build.log" 2>&1; then
	raygo_built=0
fi

# Where this ran.
echo "# $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $("$GO" version | cut -d' ' -f3), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+changes'), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "# float32 sum allreduce, $RANKS ranks, about ${MIN_TIME}s per size and run"

# MPI: shared memory, then TCP on loopback.
MPIRUN=(timeout "$TIMEOUT" mpirun.openmpi --allow-run-as-root -np "$RANKS")
[ "$RANKS" -le "$(nproc)" ] || MPIRUN+=(--oversubscribe)
"${MPIRUN[@]}" --mca btl self,vader "$W/allreduce" -sizes "$SIZES" -min-time "$MIN_TIME" -label openmpi-shm -json >"$W/mpi-shm.json"
"${MPIRUN[@]}" --mca btl self,tcp --mca btl_tcp_if_include lo "$W/allreduce" -sizes "$SIZES" -min-time "$MIN_TIME" -label openmpi-tcp -json >"$W/mpi-tcp.json"
echo "# $(sed -n 's/.*"library":"\([^"]*\)".*/\1/p' "$W/mpi-shm.json" | head -1): mpirun -np $RANKS --mca btl self,vader | self,tcp --mca btl_tcp_if_include lo"

# raygo, each backend on its own.
for b in shm tcp; do
	: >"$W/raygo-$b.json"
	if [ $raygo_built = 0 ]; then
		echo "# raygo $b: not run: cmd/raygo does not build ($(grep -m1 . "$W/build.log"))"
		continue
	fi
	rc=0
	timeout "$TIMEOUT" "$W/raygo" bench collectives --backend "$b" --ranks "$RANKS" --op allreduce --sizes "$SIZES" \
		--min-time "$(awk -v t="$MIN_TIME" 'BEGIN{printf "%dms", t*1000}')" --json ${RAYGO_FLAGS:-} >"$W/raygo-$b.json" 2>"$W/raygo-$b.err" || rc=$?
	if [ $rc = 124 ]; then
		echo "# raygo $b: not finished after ${TIMEOUT}s (TIMEOUT)"
	elif [ $rc != 0 ]; then
		echo "# raygo $b: failed (exit $rc): $(grep -m1 . "$W/raygo-$b.err" || echo "no message")"
		: >"$W/raygo-$b.json"
	elif ! grep -q '"busbw_gbs"' "$W/raygo-$b.json"; then
		echo "# raygo $b: no JSON lines from raygo bench collectives --json"
		: >"$W/raygo-$b.json"
	else
		echo "# raygo $b: raygo bench collectives --backend $b --ranks $RANKS --op allreduce --sizes $SIZES --json${RAYGO_FLAGS:+ $RAYGO_FLAGS}"
	fi
done

# field FILE BYTES NAME: NAME of the line for BYTES in FILE ("" if none).
field() {
	awk -v b="$2" -v k="\"$3\":" '
		index($0, "\"bytes\":" b ",") {
			i = index($0, k); if (!i) next
			s = substr($0, i + length(k)); sub(/[,}].*/, "", s); print s; exit
		}' "$1"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
num() { if [ -n "$1" ]; then printf "%.${2}f" "$1"; else printf -- "-"; fi; }

echo
printf "%10s | %28s %28s %6s | %28s %28s %6s\n" "" "shared memory: openmpi" "raygo shm" "" "tcp on loopback: openmpi" "raygo tcp" ""
printf "%10s | %12s %15s %12s %15s %6s | %12s %15s %12s %15s %6s\n" size "time(us)" "busbw(GB/s)" "time(us)" "busbw(GB/s)" ratio "time(us)" "busbw(GB/s)" "time(us)" "busbw(GB/s)" ratio
for bytes in $(sed -n 's/.*"bytes":\([0-9]*\),.*/\1/p' "$W/mpi-shm.json"); do
	line=$(printf "%10s |" "$bytes")
	for t in shm tcp; do
		mt=$(field "$W/mpi-$t.json" "$bytes" time_us)
		mb=$(field "$W/mpi-$t.json" "$bytes" busbw_gbs)
		rt=$(field "$W/raygo-$t.json" "$bytes" time_us)
		rb=$(field "$W/raygo-$t.json" "$bytes" busbw_gbs)
		line+=$(printf " %12s %15s %12s %15s %6s |" "$(num "$mt" 2)" "$(num "$mb" 3)" "$(num "$rt" 2)" "$(num "$rb" 3)" "$(ratio "$rb" "$mb")")
	done
	echo "${line% |}"
done
echo "# ratio: raygo's busbw / Open MPI's (above 1: raygo is faster); busbw = algbw * 2(n-1)/n"
if [ "${KEEP:-0}" = 1 ]; then cat "$W"/*.json; fi
