#!/usr/bin/env bash
# gpucheck.sh checks the nccl backend against the real NCCL on this
# machine's GPUs: a real allreduce on device memory with one rank per
# visible GPU (on one GPU, a group of one), every device collective, every
# host-slice operation on every element type, and a table of allreduce
# times for both paths. It prints what it checked and ends with a line
# "RESULT: PASS", "RESULT: FAIL" or "SKIP: why" (exit 0, 1 and 0). It
# takes well under 5 minutes; the program itself is stopped at 4.
#
#   collectives/nccl/gpucheck.sh                 find the libraries, build if need be, run
#   collectives/nccl/gpucheck.sh --build-only    build .gpucheck/gpucheck and stop
#
# The program comes from $GPUCHECK_BIN, else .gpucheck/gpucheck in the
# repository root, else it is built with go (Go and a C compiler needed).
# On a GPU machine without Go, run --build-only on a machine with Go first
# and take .gpucheck along.
#
# The libraries come from $RAYGO_NCCL_LIBRARY and $RAYGO_CUDART_LIBRARY
# when set, else from the loader cache (ldconfig -p), the usual CUDA and
# NCCL directories, and the nvidia-* Python wheels (nvidia-nccl-cu12,
# nvidia-nccl-cu13, nvidia-cuda-runtime) and torch/lib of every python3
# on PATH.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
say() { echo "gpucheck: $*"; }

build() {
	local out=$1
	command -v go >/dev/null || { say "go is not installed: cannot build $out"; return 1; }
	mkdir -p "$(dirname "$out")"
	say "building $out"
	CGO_ENABLED=1 go build -o "$out" ./collectives/nccl/internal/gpucheck
}

if [ "${1:-}" = "--build-only" ]; then
	build "$root/.gpucheck/gpucheck" && say "built $root/.gpucheck/gpucheck"
	exit $?
fi

bin=${GPUCHECK_BIN:-}
if [ -z "$bin" ] && [ -x "$root/.gpucheck/gpucheck" ]; then
	bin=$root/.gpucheck/gpucheck
fi
if [ -z "$bin" ]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	bin=$tmp/gpucheck
	build "$bin" || { echo "RESULT: FAIL (no gpucheck program: set GPUCHECK_BIN, or run $0 --build-only where Go is installed)"; exit 1; }
fi
say "program $bin"

# Directories that may hold the libraries, most specific first.
dirs=(/usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib64 /usr/lib
	/usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda/targets/sbsa-linux/lib
	/usr/local/nccl/lib /opt/nccl/lib /usr/local/lib)
for d in /usr/local/cuda-*/lib64; do [ -d "$d" ] && dirs+=("$d"); done
wheel_dirs=()
for py in python3 python; do
	command -v "$py" >/dev/null || continue
	while IFS= read -r sp; do
		[ -d "$sp" ] || continue
		for sub in nvidia/nccl/lib nvidia/cu13/lib nvidia/cu12/lib nvidia/cuda_runtime/lib torch/lib; do
			[ -d "$sp/$sub" ] && wheel_dirs+=("$sp/$sub")
		done
	done < <("$py" -c 'import site, sys
paths = list(sys.path)
try: paths += site.getsitepackages() + [site.getusersitepackages()]
except Exception: pass
print("\n".join(p for p in paths if p))' 2>/dev/null)
done

# find_lib NAME...: the first file found under any of the names, from the
# loader cache, then dirs, then the wheels.
find_lib() {
	local name d p
	for name in "$@"; do
		p=$(ldconfig -p 2>/dev/null | awk -v n="$name" '$1 == n { print $NF; exit }')
		[ -n "$p" ] && [ -e "$p" ] && { echo "$p"; return 0; }
		for d in "${dirs[@]}" "${wheel_dirs[@]}"; do
			[ -e "$d/$name" ] && { echo "$d/$name"; return 0; }
		done
	done
	return 1
}

if [ -z "${RAYGO_NCCL_LIBRARY:-}" ]; then
	RAYGO_NCCL_LIBRARY=$(find_lib libnccl.so.2 libnccl.so) || {
		echo "SKIP: libnccl.so.2 not found (searched ldconfig -p, ${dirs[*]} ${wheel_dirs[*]}); set RAYGO_NCCL_LIBRARY"
		exit 0
	}
fi
if [ -z "${RAYGO_CUDART_LIBRARY:-}" ]; then
	RAYGO_CUDART_LIBRARY=$(find_lib libcudart.so.13 libcudart.so.12 libcudart.so.11.0 libcudart.so) || {
		echo "SKIP: the CUDA runtime (libcudart.so.13/12/11.0) not found (searched ldconfig -p, ${dirs[*]} ${wheel_dirs[*]}); set RAYGO_CUDART_LIBRARY"
		exit 0
	}
fi
export RAYGO_NCCL_LIBRARY RAYGO_CUDART_LIBRARY
# Every rank runs on this machine: NCCL's bootstrap can use the loopback
# interface, which every machine has. NCCL_DEBUG=WARN explains failures.
export NCCL_SOCKET_IFNAME=${NCCL_SOCKET_IFNAME:-lo} NCCL_DEBUG=${NCCL_DEBUG:-WARN}
say "NCCL_SOCKET_IFNAME=$NCCL_SOCKET_IFNAME NCCL_DEBUG=$NCCL_DEBUG"
say "NCCL $RAYGO_NCCL_LIBRARY"
say "CUDA runtime $RAYGO_CUDART_LIBRARY"
if command -v nvidia-smi >/dev/null; then
	nvidia-smi -L 2>&1 | sed 's/^/gpucheck: /'
else
	say "nvidia-smi not found"
fi
say "CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-(unset)}"

timeout -k 10 270 "$bin" -timeout 4m "$@"
rc=$?
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
	echo "RESULT: FAIL (gpucheck ran past 270 s and was stopped)"
fi
exit $rc
