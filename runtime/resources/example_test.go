package resources_test

import (
	"fmt"
	"log"

	"github.com/raygo/raygo/runtime/resources"
)

func Example() {
	// Detect what this node offers this process, honouring its CPU
	// affinity, cgroup limits and CUDA_VISIBLE_DEVICES.
	node, err := resources.Detect(resources.Options{})
	if err != nil {
		log.Printf("resource detection incomplete: %v", err)
	}

	// Add resources the operator names on the command line.
	custom, err := resources.ParseCustom("ib_port=1,license=0.5")
	if err != nil {
		log.Fatal(err)
	}
	node.Custom = custom
	log.Printf("this node: %s", node) // e.g. "16 CPUs, 251.4 GiB, 4 GPUs, ib_port=1, license=0.5"

	// The summary of a fixed node is deterministic.
	fmt.Println(resources.Node{CPUs: 2, MemoryBytes: 24 << 30, Custom: custom})
	// Output: 2 CPUs, 24.0 GiB, 0 GPUs, ib_port=1, license=0.5
}

func ExampleParseCustom() {
	_, err := resources.ParseCustom("ib_port=1,license=lots")
	fmt.Println(err)
	// Output: resources: custom resource "license=lots": amount "lots" is not a number
}
