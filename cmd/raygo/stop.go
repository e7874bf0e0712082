package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/raygo/raygo/runtime/wire"
)

func stopCommand() *cli.Command {
	return &cli.Command{
		Name:  "stop",
		Usage: "stop one cluster: its head tells every node of that cluster to shut down",
		Description: "Only the cluster whose head is at --address (and which accepts the secret) is stopped;\n" +
			"other clusters on the same machines are not touched.",
		OnUsageError: usageError,
		Flags: []cli.Flag{
			addressFlag("the head of the cluster to stop,"),
			secretFileFlag(),
			&cli.DurationFlag{Name: "timeout", Value: 15 * time.Second,
				Usage: "how long to wait for the head to go away"},
		},
		Action: stopAction,
	}
}

func stopAction(c *cli.Context) error {
	if c.Args().Present() {
		return fmt.Errorf("stop takes no arguments (got %q)", c.Args().Slice())
	}
	h, err := newHeadClient(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	st, err := h.status(ctx)
	if err != nil {
		return err
	}
	alive := 0
	for _, n := range st.Nodes {
		if n.Alive {
			alive++
		}
	}
	if _, err := h.request(ctx, wire.OpStop, nil); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "asked cluster %s (head %s, %s) to stop\n", st.ClusterID, h.addr, count(alive, "live node"))
	if err := waitHeadGone(ctx, h); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "head %s no longer accepts connections; its nodes are shutting down\n", h.addr)
	return nil
}

// waitHeadGone asks the head for its status until it can no longer be
// connected to. Asking with the secret, rather than probing the port,
// keeps the head's log free of refused handshakes.
func waitHeadGone(ctx context.Context, h *headClient) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		attempt, cancel := context.WithTimeout(ctx, time.Second)
		_, err := h.request(attempt, wire.OpStatus, nil)
		cancel()
		var ne net.Error
		if errors.Is(err, errUnreachable) && !(errors.As(err, &ne) && ne.Timeout()) {
			return nil // refused: the listener is closed
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("head %s still accepts connections after being asked to stop: %w", h.addr, ctx.Err())
		case <-t.C:
		}
	}
}
