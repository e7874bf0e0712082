#!/usr/bin/env bash
# Side by side with Dask distributed: the same workloads in Dask (a
# LocalCluster with one worker process per core, threads_per_worker=1) and
# in raygo (an embedded cluster; its workers are separate processes), one
# after the other in one run, then a table of raygo/Dask ratios.
#
#   benchmarks/peers/run.sh [-duration SECONDS] [-rounds N]   (defaults 1 and 3)
#
# Needs Python 3 with dask.distributed and numpy (Debian: apt-get install
# python3-distributed python3-numpy); PYTHON overrides which interpreter.
# About 2 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}
PYTHON=${PYTHON:-/usr/bin/python3}
duration=1
rounds=3
while [ $# -gt 0 ]; do
	case $1 in
	-duration) duration=$2; shift 2 ;;
	-rounds) rounds=$2; shift 2 ;;
	*) echo "usage: $0 [-duration SECONDS] [-rounds N]" >&2; exit 2 ;;
	esac
done
if ! "$PYTHON" -c 'import distributed, numpy' 2>/dev/null; then
	echo "$PYTHON lacks dask.distributed or numpy (Debian: apt-get install python3-distributed python3-numpy)" >&2
	exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$GO build -o "$tmp/peers" ./benchmarks/peers
echo "Dask $("$PYTHON" -c 'import distributed; print(distributed.__version__)'), $($GO version | cut -d' ' -f3), $(nproc) cores" >&2
echo "== Dask" >&2
"$PYTHON" benchmarks/peers/peers_dask.py --duration "$duration" --rounds "$rounds" | tee "$tmp/dask.jsonl" >&2
echo "== raygo" >&2
"$tmp/peers" -duration "${duration}s" -rounds "$rounds" -dask "$tmp/dask.jsonl"
