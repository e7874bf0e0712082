package launcher_test

import (
	"context"
	"fmt"
	"os"

	"github.com/raygo/raygo/launcher"
)

// A launch of one node, by hand: rank 0 of 1 starts the head and a node
// agent on 127.0.0.1 and runs the driver (here a shell command) with
// RAYGO_ADDRESS set; with more ranks, each would run the same call with
// its own Rank and the same Key and RendezvousDir.
func ExampleRun() {
	dir, err := os.MkdirTemp("", "rendezvous-") // 0700
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	code := launcher.Run(context.Background(), launcher.Config{
		Manual:        launcher.Manual{Rank: 0, WorldSize: 1, Key: "example"},
		RendezvousDir: dir,
		Interface:     "127.0.0.1",
		Command:       []string{"sh", "-c", `echo "driver on $RAYGO_WORLD_SIZE node, launched: $RAYGO_LAUNCH"; exit 3`},
	})
	fmt.Println("exit code", code)
	// Output:
	// driver on 1 node, launched: 1
	// exit code 3
}
