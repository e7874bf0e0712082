#!/usr/bin/env bash
# A three-node raygo cluster on one machine, by hand: a head node on
# 127.0.0.1 and two more nodes on 127.0.0.2 and 127.0.0.3 (Linux routes all
# of 127.0.0.0/8 to loopback). On a real cluster, run each `raygo start` on
# its own machine with --node-ip set to that machine's address, and copy the
# secret file to the other machines (see docs/cli.md).
#
# Usage: scripts/cluster-by-hand.sh   (from the repository root)
set -euo pipefail

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/" ./cmd/raygo ./examples/quickstart
raygo=$bin/raygo

# 1. The head node. `start` returns once it is ready; the node runs on in
#    the background, logging to raygo.log in its state directory.
out=$("$raygo" start --head --node-ip 127.0.0.1 --num-cpus 2)
echo "$out"
addr=$(awk '/head address:/ {print $3}' <<<"$out")

# If anything below fails, stop the cluster rather than leave it running.
trap '"$raygo" stop --address "$addr" >/dev/null 2>&1 || true; rm -rf "$bin"' EXIT

# 2. Two more nodes join. On this machine they find the cluster secret
#    where the head stored it; elsewhere, give --secret-file.
"$raygo" start --address "$addr" --node-ip 127.0.0.2 --num-cpus 2 --resources ib_port=1
"$raygo" start --address "$addr" --node-ip 127.0.0.3 --num-cpus 2

# 3. What the cluster has.
"$raygo" status --address "$addr"

# 4. A driver program joins the cluster and runs tasks, objects and an actor.
RAYGO_ADDRESS=$addr "$bin/quickstart"

# 5. Stop the cluster: the head tells its three nodes to shut down. Other
#    raygo clusters on this machine are not touched.
"$raygo" stop --address "$addr"
trap 'rm -rf "$bin"' EXIT
