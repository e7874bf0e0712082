package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/raygo/raygo/runtime"
	"github.com/raygo/raygo/runtime/wire"
)

// Flags shared by the commands that talk to a running cluster.
func addressFlag(usage string) *cli.StringFlag {
	return &cli.StringFlag{Name: "address", Usage: usage + " `HOST:PORT`", EnvVars: []string{runtime.EnvAddress}}
}

func secretFileFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "secret-file", EnvVars: []string{"RAYGO_SECRET_FILE"},
		Usage: "`FILE` holding the cluster secret", DefaultText: "the one 'raygo start --head' wrote on this machine"}
}

// clusterSecret reads the secret of the cluster at addr, from file or from
// where `raygo start --head` stored it on this machine. It returns the
// file it used, for error messages; never the secret's text.
func clusterSecret(addr, file string) ([]byte, string, error) {
	if file == "" {
		file = filepath.Join(runtime.ClusterDir(addr), "secret")
	}
	secret, err := runtime.ReadSecret(addr, file)
	if err != nil {
		return nil, file, fmt.Errorf("head %s: %w", addr, err)
	}
	return secret, file, nil
}

// headClient makes requests of one head with one secret.
type headClient struct {
	addr, secretFile string
	secret           []byte
}

func newHeadClient(c *cli.Context) (*headClient, error) {
	addr := c.String("address")
	if addr == "" {
		return nil, fmt.Errorf("no head address: give --address HOST:PORT (or set %s)", runtime.EnvAddress)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("--address %q: want HOST:PORT: %w", addr, err)
	}
	secret, file, err := clusterSecret(addr, c.String("secret-file"))
	if err != nil {
		return nil, err
	}
	return &headClient{addr: addr, secretFile: file, secret: secret}, nil
}

func (h *headClient) request(ctx context.Context, op wire.Op, body []byte) ([]byte, error) {
	b, err := runtime.HeadRequest(ctx, h.addr, h.secret, op, body)
	if err != nil {
		return nil, headError(h.addr, h.secretFile, err)
	}
	return b, nil
}

func (h *headClient) status(ctx context.Context) (*runtime.ClusterStatus, error) {
	b, err := h.request(ctx, wire.OpStatus, nil)
	if err != nil {
		return nil, err
	}
	st, err := runtime.DecodeStatus(b)
	if err != nil {
		return nil, fmt.Errorf("head %s: bad status reply: %w", h.addr, err)
	}
	return st, nil
}

// errUnreachable marks a head that could not be connected to at all.
var errUnreachable = errors.New("not reachable")

// headError says what went wrong in the words a person needs: the head is
// not there, or it refused the secret.
func headError(addr, secretFile string, err error) error {
	var op *net.OpError
	switch {
	case errors.Is(err, wire.ErrAuth):
		return fmt.Errorf("head %s refused authentication: the secret in %s is not this cluster's (%w)", addr, secretFile, err)
	case errors.Is(err, wire.ErrVersion):
		return fmt.Errorf("head %s runs another raygo version: %w", addr, err)
	case errors.As(err, &op) && op.Op == "dial":
		return fmt.Errorf("head %s is %w: %w", addr, errUnreachable, err)
	}
	return fmt.Errorf("head %s: %w", addr, err)
}
