package collectives

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/raygo/raygo"
)

// declaration is what Declare records for the members to find.
type declaration struct {
	Size      int               `json:"size"`
	Ranks     map[string]int    `json:"ranks,omitempty"` // actor ID → rank
	Placement uint64            `json:"placement,omitempty"`
	Backend   string            `json:"backend,omitempty"`
	Options   map[string]string `json:"options,omitempty"`
}

func declKey(name string) string { return kvPrefix(name) + "declared" }

// ActorHandle is what Declare needs of an actor: any raygo.Actor[S].
type ActorHandle interface{ ID() string }

// Declare records, from the driver (or any process in the cluster), a
// group over actors: actor i gets rank i, or ranks[i] with WithRanks.
// Each actor then calls Open from one of its methods to join it. Several
// groups may share actors.
func Declare[A ActorHandle](ctx context.Context, name string, actors []A, opts ...Option) error {
	var cfg groupConfig
	for _, o := range opts {
		o(&cfg)
	}
	if err := validName(name); err != nil {
		return err
	}
	if len(actors) == 0 {
		return fmt.Errorf("collectives: declare group %q: no actors", name)
	}
	ranks := cfg.ranks
	if ranks == nil {
		ranks = make([]int, len(actors))
		for i := range ranks {
			ranks[i] = i
		}
	}
	if len(ranks) != len(actors) {
		return fmt.Errorf("collectives: declare group %q: %d ranks for %d actors", name, len(ranks), len(actors))
	}
	d := declaration{Size: len(actors), Ranks: map[string]int{}, Backend: cfg.backend, Options: cfg.options}
	taken := make([]bool, len(actors))
	for i, a := range actors {
		r := ranks[i]
		if r < 0 || r >= len(actors) || taken[r] {
			return fmt.Errorf("collectives: declare group %q: ranks %v must be a permutation of 0..%d", name, ranks, len(actors)-1)
		}
		taken[r] = true
		if _, dup := d.Ranks[a.ID()]; dup {
			return fmt.Errorf("collectives: declare group %q: actor %s is listed twice", name, a.ID())
		}
		d.Ranks[a.ID()] = r
	}
	return declare(ctx, name, d)
}

// DeclarePlacementGroup records a group with one rank per bundle of pg:
// the actor (or task) placed in bundle i is rank i once it calls Open.
func DeclarePlacementGroup(ctx context.Context, name string, pg *raygo.PlacementGroup, opts ...Option) error {
	var cfg groupConfig
	for _, o := range opts {
		o(&cfg)
	}
	if err := validName(name); err != nil {
		return err
	}
	if cfg.ranks != nil {
		return fmt.Errorf("collectives: declare group %q: WithRanks does not apply to a placement group (ranks are bundle indexes)", name)
	}
	return declare(ctx, name, declaration{Size: len(pg.Bundles()), Placement: pg.ID(), Backend: cfg.backend, Options: cfg.options})
}

func declare(ctx context.Context, name string, d declaration) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	if err := raygo.KVPut(ctx, declKey(name), b, false); err != nil {
		if errors.Is(err, raygo.ErrKeyExists) {
			return fmt.Errorf("collectives: group %q is already declared (destroy it, or collectives.Remove it, first): %w", name, err)
		}
		return fmt.Errorf("collectives: declare group %q: %w", name, err)
	}
	return nil
}

// Open joins, from inside an actor method (or a task placed in a
// placement group), the group that Declare or DeclarePlacementGroup
// recorded, as the rank given there. It waits for the declaration if it
// is not there yet (bounded by ctx, or a minute without a deadline).
func Open(ctx context.Context, name string, opts ...Option) (*Group, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	here := raygo.CurrentContext(ctx)
	if here.Task == "" {
		return nil, fmt.Errorf("collectives: open group %q: call Open with the context of an actor method or a task (ctx carries neither)", name)
	}
	wctx := ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, time.Minute)
		defer cancel()
	}
	b, err := raygo.KVWait(wctx, declKey(name))
	if err != nil {
		return nil, fmt.Errorf("collectives: open group %q: no declaration (did the driver call Declare?): %w", name, err)
	}
	var d declaration
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("collectives: open group %q: bad declaration: %w", name, err)
	}
	rank := -1
	switch {
	case d.Placement != 0:
		if here.PlacementGroup != d.Placement || here.Bundle < 0 {
			return nil, fmt.Errorf("collectives: open group %q: the caller (task %s) is not placed in a bundle of placement group %d", name, here.Task, d.Placement)
		}
		rank = here.Bundle
	default:
		if here.Actor == "" {
			return nil, fmt.Errorf("collectives: open group %q: call Open with the context of an actor method (ctx carries no actor)", name)
		}
		r, ok := d.Ranks[here.Actor]
		if !ok {
			return nil, fmt.Errorf("collectives: open group %q: actor %s is not one of its %d members", name, here.Actor, d.Size)
		}
		rank = r
	}
	cfg := groupConfig{backend: d.Backend, options: d.Options}
	for _, o := range opts {
		o(&cfg)
	}
	return join(ctx, name, rank, d.Size, cfg)
}
