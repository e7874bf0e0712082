package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo"
)

// TestMain lets this test binary be a raygo worker and a workload's child
// process, as the command is.
func TestMain(m *testing.M) {
	if raygo.IsWorker() {
		raygo.Init(context.Background()) // serves tasks; never returns
	}
	if name := os.Getenv(envWorkload); name != "" {
		os.Exit(child(name))
	}
	os.Exit(m.Run())
}

// TestQuick runs every workload at 1/1000 of its size: the quick check
// that the program works (make bench-scale SCALE=0.01 is the larger one).
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 7 clusters")
	}
	var log bytes.Buffer
	cfg := config{scale: 0.001, timeout: 2 * time.Minute}
	results, err := runAll(context.Background(), os.Args[0], cfg, &log)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(workloads) {
		t.Fatalf("%d results for %d workloads", len(results), len(workloads))
	}
	for _, r := range results {
		if r.Err != "" {
			t.Errorf("%s: %s", r.Name, r.Err)
			continue
		}
		if r.Seconds <= 0 || r.DriverHWM <= 0 || len(r.Phases) == 0 {
			t.Errorf("%s: incomplete result %+v", r.Name, r)
		}
	}
	var table bytes.Buffer
	printTable(&table, results, cfg.scale)
	for _, w := range workloads {
		if !strings.Contains(table.String(), w.title) {
			t.Errorf("table lacks %q", w.title)
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", log.String())
	}
	t.Logf("\n%s", table.String())
}
