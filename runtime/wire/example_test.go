package wire_test

import (
	"fmt"
	"net"

	"github.com/raygo/raygo/runtime/wire"
)

// A driver connects to its node agent, both prove they hold the cluster
// secret, and the driver submits a task with two inline arguments.
func Example() {
	secret := []byte("cluster secret")
	driverSide, agentSide := net.Pipe() // or net.Dial and a listener's Accept

	received := make(chan string)
	go func() { // the node agent
		role, err := wire.ServerHandshake(agentSide, secret)
		if err != nil {
			agentSide.Close()
			received <- err.Error()
			return
		}
		c := wire.NewConn(agentSide, wire.DefaultMaxFrame)
		defer c.Close()
		m, err := c.Recv()
		if err != nil {
			received <- err.Error()
			return
		}
		s := m.(*wire.Submit).Spec
		received <- fmt.Sprintf("%v sent %v: %s(%q, %q) as %v", role, m.Type(), s.Func, s.Args[0].Data, s.Args[1].Data, s.ID)
	}()

	if err := wire.ClientHandshake(driverSide, secret, wire.RoleDriver); err != nil {
		fmt.Println(err)
		return
	}
	c := wire.NewConn(driverSide, 0)
	err := c.Send(&wire.Submit{Spec: wire.TaskSpec{
		ID:         wire.TaskID{Node: 1, Proc: 1, Seq: 1},
		Func:       "example.com/app.Add",
		Args:       []wire.Arg{{Data: []byte("2")}, {Data: []byte("3")}},
		NumReturns: 1,
		Resources:  wire.Resources{"CPU": 1},
	}})
	if err != nil {
		fmt.Println(err)
	}
	fmt.Println(<-received)
	c.Close()
	// Output: driver sent submit: example.com/app.Add("2", "3") as t1.1.1
}
