// Collectives: data-parallel linear regression. Four worker actors, each
// in its own process, hold a shard of the data; every step each computes
// the gradient on its shard and the workers average their gradients with
// an allreduce, so every copy of the model stays the same without a
// parameter server. The driver declares the group and only starts steps.
//
//	go run ./examples/collectives
package main

import (
	"context"
	"fmt"
	"log"
	"math"
	"math/rand/v2"

	"github.com/raygo/raygo"
	"github.com/raygo/raygo/collectives"
)

const (
	workers  = 4
	features = 16
	rowsEach = 2000
	steps    = 40
	rate     = 0.1
)

// trueWeights is the model the data is drawn from; training should find it.
func trueWeights() []float64 {
	w := make([]float64, features)
	for i := range w {
		w[i] = float64(i%5) - 2
	}
	return w
}

// Worker is one rank: its shard of the data and its copy of the model.
type Worker struct {
	x     [][]float64
	y     []float64
	w     []float64
	group *collectives.Group
}

var (
	worker = raygo.Actor1("collectives.Worker", func(ctx context.Context, shard int) (*Worker, error) {
		rng := rand.New(rand.NewPCG(uint64(shard), 42))
		tw := trueWeights()
		s := &Worker{w: make([]float64, features)}
		for i := 0; i < rowsEach; i++ {
			row := make([]float64, features)
			var y float64
			for j := range row {
				row[j] = rng.NormFloat64()
				y += row[j] * tw[j]
			}
			s.x = append(s.x, row)
			s.y = append(s.y, y+0.01*rng.NormFloat64())
		}
		return s, nil
	})
	// join opens the group the driver declared; it returns the rank.
	join = raygo.Method1(worker, "Join", func(ctx context.Context, s *Worker, name string) (int, error) {
		g, err := collectives.Open(ctx, name)
		if err != nil {
			return 0, err
		}
		s.group = g
		return g.Rank(), nil
	})
	// train runs n steps of gradient descent and returns the shard's loss.
	train = raygo.Method1(worker, "Train", func(ctx context.Context, s *Worker, n int) (float64, error) {
		grad := make([]float64, features)
		for step := 0; step < n; step++ {
			clear(grad)
			for i, row := range s.x {
				var pred float64
				for j, v := range row {
					pred += v * s.w[j]
				}
				e := pred - s.y[i]
				for j, v := range row {
					grad[j] += 2 * e * v / rowsEach
				}
			}
			// Every worker ends the call with the mean of all gradients.
			if err := collectives.AllreduceInPlace(ctx, s.group, grad, collectives.Avg); err != nil {
				return 0, err
			}
			for j := range s.w {
				s.w[j] -= rate * grad[j]
			}
		}
		var loss float64
		for i, row := range s.x {
			var pred float64
			for j, v := range row {
				pred += v * s.w[j]
			}
			loss += (pred - s.y[i]) * (pred - s.y[i]) / rowsEach
		}
		return loss, nil
	})
	weights = raygo.Method0(worker, "Weights", func(ctx context.Context, s *Worker) ([]float64, error) {
		return s.w, nil
	})
	leave = raygo.Method0(worker, "Leave", func(ctx context.Context, s *Worker) (bool, error) {
		return true, s.group.Destroy(ctx)
	})
)

func main() {
	ctx := context.Background()
	if err := raygo.Init(ctx, raygo.NumCPUs(workers)); err != nil {
		log.Fatal(err)
	}
	defer raygo.Shutdown(ctx)
	if err := run(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("OK")
}

func run(ctx context.Context) error {
	ws := make([]raygo.Actor[*Worker], workers)
	for i := range ws {
		ws[i] = worker.With(raygo.Dedicated()).Remote(raygo.Val(i))
	}
	if err := collectives.Declare(ctx, "sgd", ws); err != nil {
		return err
	}
	ranks := make([]raygo.Ref[int], workers)
	for i, w := range ws {
		ranks[i] = join.Remote(w, raygo.Val("sgd"))
	}
	got, err := raygo.GetAll(ctx, ranks)
	if err != nil {
		return err
	}
	fmt.Printf("group sgd: ranks %v\n", got)

	for round := 1; round <= 4; round++ {
		losses := make([]raygo.Ref[float64], workers)
		for i, w := range ws {
			losses[i] = train.Remote(w, raygo.Val(steps/4))
		}
		ls, err := raygo.GetAll(ctx, losses)
		if err != nil {
			return err
		}
		var mean float64
		for _, l := range ls {
			mean += l / workers
		}
		fmt.Printf("after %3d steps: mean squared error %.6f\n", round*steps/4, mean)
	}
	// Every worker holds the same model, close to the true one.
	var first []float64
	for i, w := range ws {
		wt, err := weights.Remote(w).Get(ctx)
		if err != nil {
			return err
		}
		if i == 0 {
			first = wt
		} else if fmt.Sprint(wt) != fmt.Sprint(first) {
			return fmt.Errorf("worker %d's model differs from worker 0's", i)
		}
	}
	var worst float64
	for j, v := range trueWeights() {
		worst = max(worst, math.Abs(first[j]-v))
	}
	fmt.Printf("models identical on %d workers; largest weight error %.4f\n", workers, worst)
	if worst > 0.01 {
		return fmt.Errorf("training did not converge: weight error %v", worst)
	}
	done := make([]raygo.Ref[bool], workers)
	for i, w := range ws {
		done[i] = leave.Remote(w)
	}
	_, err = raygo.GetAll(ctx, done)
	return err
}
