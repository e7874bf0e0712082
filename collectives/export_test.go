package collectives

// Test helpers shared with package collectives_test.

func BytesOf[T Elem](s []T) []byte { return bytesOf(s) }
