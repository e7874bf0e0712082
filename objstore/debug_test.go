package objstore

import "runtime/debug"

func debugSetPanicOnFault(on bool) bool { return debug.SetPanicOnFault(on) }
