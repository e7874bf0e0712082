package runtime

// Version is the raygo release. Node agents of another version are refused
// when they join the head.
const Version = "0.1.0"
