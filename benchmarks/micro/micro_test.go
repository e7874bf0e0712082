package micro_test

import (
	"context"
	"errors"
	"os"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/raygo/raygo"
	"github.com/raygo/raygo/benchmarks/micro"
)

func TestMain(m *testing.M) {
	if raygo.IsWorker() {
		raygo.Init(context.Background()) // serves tasks until released; never returns
	}
	os.Exit(m.Run())
}

// TestRunAll runs every workload once or twice (a warm-up call and one
// round, each as short as it can be) on an embedded cluster: each must
// produce a positive rate.
func TestRunAll(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := raygo.Init(ctx, micro.InitOptions()...); err != nil {
		t.Fatal(err)
	}
	defer raygo.Shutdown(context.Background())

	var reported []string
	start := time.Now()
	results, err := micro.Run(ctx, micro.Options{DurationScale: 1e-6, Rounds: 1, Report: func(r micro.Result) {
		reported = append(reported, r.Name)
		t.Logf("%v (%.2fs into the run)", r, time.Since(start).Seconds())
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]micro.Result{}
	for _, r := range results {
		got[r.Name] = r
		if !(r.Value > 0) || r.SD < 0 || r.Unit == "" {
			t.Errorf("%s: value %v, sd %v, unit %q; want a positive value and a unit", r.Name, r.Value, r.SD, r.Unit)
		}
	}
	for _, name := range append(micro.Names(), "memcpy_gigabytes", "single_client_put_gigabytes_vs_memcpy") {
		if _, ok := got[name]; !ok {
			t.Errorf("no result for %s", name)
		}
	}
	if names := resultNames(results); !slices.Equal(names, reported) {
		t.Errorf("reported %v, returned %v", reported, names)
	}
}

func resultNames(rs []micro.Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

func TestOptions(t *testing.T) {
	for _, o := range []micro.Options{{DurationScale: -1}, {Rounds: -1}, {Servers: -2}} {
		if err := o.Validate(); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	if err := (micro.Options{}).Validate(); err != nil {
		t.Errorf("zero options: %v", err)
	}
	// The filter is checked before anything runs, so this needs no cluster.
	_, err := micro.Run(context.Background(), micro.Options{Filter: regexp.MustCompile("^nothing$")})
	if !errors.Is(err, micro.ErrNoWorkload) {
		t.Errorf("filter matching nothing: %v, want ErrNoWorkload", err)
	}
}

func TestResultString(t *testing.T) {
	r := micro.Result{Name: "single_client_tasks_sync", Value: 971.317, SD: 32.7325, Unit: "tasks/s"}
	if got, want := r.String(), "single_client_tasks_sync per second 971.32 +- 32.73"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
