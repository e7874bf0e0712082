package raygo

// UnregisteredForTest is a remote function that no binary registers.
func UnregisteredForTest() *Task1[int, int] { return &Task1[int, int]{name: "test.not-registered"} }

// ActorForTest copies a handle, keeping its ID but not its creation error.
func ActorForTest[S any](h Actor[S]) Actor[S] { return Actor[S]{id: h.id, class: h.class} }
