package backend

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

func TestDirRendezvous(t *testing.T) {
	base := t.TempDir()
	const size = 3
	var wg sync.WaitGroup
	errs := make(chan error, size)
	for rank := range size {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			d, err := NewDirRendezvous(base, "g", rank, size)
			if err != nil {
				errs <- err
				return
			}
			all, err := d.Exchange(ctx, "a/b c", []byte(fmt.Sprint(rank*10))) // keys are escaped into file names
			if err != nil {
				errs <- err
				return
			}
			for r, v := range all {
				if string(v) != fmt.Sprint(r*10) {
					errs <- fmt.Errorf("rank %d got %q from rank %d", rank, v, r)
				}
			}
			v, err := d.Broadcast(ctx, "root", 2, []byte(fmt.Sprint("from ", rank)))
			if err != nil || string(v) != "from 2" {
				errs <- fmt.Errorf("rank %d: Broadcast = %q, %v", rank, v, err)
			}
			if err := d.Finish(ctx); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Rank 0 removes the directory once everyone has left it.
	if _, err := os.Stat(base + "/g"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Finish the directory is still there (%v)", err)
	}
}

func TestDirRendezvousNamesMissingRanks(t *testing.T) {
	base := t.TempDir()
	d, err := NewDirRendezvous(base, "g", 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewDirRendezvous(base, "g", 2, 4)
	if _, err := other.Exchange(canceled(), "k", []byte("two")); err == nil {
		t.Fatal("Exchange with ranks missing and ctx done: no error")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = d.Exchange(ctx, "k", []byte("one"))
	var we *WaitError
	if !errors.As(err, &we) || fmt.Sprint(we.Missing) != "[0 3]" {
		t.Fatalf("Exchange: %v, want a WaitError missing ranks 0 and 3", err)
	}
	d.Abandon()
	other.Abandon()
	left, _ := os.ReadDir(base + "/g")
	if len(left) != 0 {
		t.Fatalf("after Abandon: %d files left", len(left))
	}
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
