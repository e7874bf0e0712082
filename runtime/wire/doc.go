// Package wire is raygo's wire protocol: the frames, messages and handshake
// that the head, node agents, drivers and workers use to talk to each other
// over TCP or unix sockets.
//
// # Frames
//
// After the handshake a connection carries frames. A frame is a 4-byte
// little-endian length n, then n bytes of body. The body's first byte is the
// message Type; the message's fields follow in a fixed order, untagged:
//
//	+-------------+--------+---------------------+
//	| n (uint32)  |  Type  |  fields             |
//	+-------------+--------+---------------------+
//	  4 bytes LE    1 byte   n-1 bytes
//
// Enc writes fields and Dec reads them. A field is one of: a fixed-width
// little-endian integer or float64; an unsigned or zig-zag varint, as in
// encoding/binary (IDs and most counts are varints); a bool, one byte 0 or 1;
// or a string, byte string, slice or map, each with a uvarint count first.
// Frames do not describe themselves. Version fixes the shape of every
// message, and the handshake refuses a peer that speaks another version.
//
// Decoding gives back what was encoded, in a normal form: empty byte
// strings, slices and maps decode as nil; an inline Value's Size is the
// length of its Data; a field the encoding leaves out (an Arg's Ref when it
// is inline, a Value's Data when it is in the store) decodes as zero.
//
// # Handshake
//
// Before any frame, ServerHandshake (on the accepting side) and
// ClientHandshake (on the dialing side) prove to each other that both hold
// the cluster secret. Each side makes a fresh random 32-byte nonce and MACs
// both nonces with HMAC-SHA256, so a recorded handshake cannot be replayed:
//
//	server → client  "RAYGO\x00"  Version (uint16 LE)  server nonce
//	client → server  "RAYGO\x00"  Version (uint16 LE)  Role (1 byte)  client nonce
//	                 HMAC(secret, "raygo client" ‖ server nonce ‖ client nonce)
//	server → client  status 0 (ok)  HMAC(secret, "raygo server" ‖ client nonce ‖ server nonce)
//	             or  status 1 (version mismatch), then a short text naming both versions
//	             or  status 2 (wrong secret)
//
// A wrong secret is refused with an error wrapping ErrAuth, another version
// with one wrapping ErrVersion; the caller then closes the connection. The
// different labels stop a peer from sending the server's proof back as its
// own. HandshakeTimeout bounds the whole exchange, so a peer that connects
// and stays silent is dropped. Before the peer has proved itself, only the
// fixed-size fields above are read (and, by a refused client, at most 256
// bytes of refusal text): no frame from an unauthenticated peer is parsed.
//
// The handshake authenticates the peers and nothing else. It does not
// encrypt the frames that follow or MAC them, and the Role byte is not
// covered by the client's HMAC.
//
// # Limits
//
// A Conn refuses a frame longer than its limit (DefaultMaxFrame unless
// NewConn is given another) when it reads the 4-byte length, before it
// allocates anything for the frame. Send refuses to queue a message over the
// limit. Large objects never travel in one frame: they are pulled in pieces
// of at most ChunkSize. Inside a frame, every count is checked against the
// bytes left in the frame, divided by the smallest encoded size of one
// element, before anything is allocated. So a hostile count fails with
// ErrMalformed instead of allocating memory. Decode never panics, and every
// error it returns wraps ErrMalformed.
//
// # Sending and receiving
//
// Send encodes the message into the Conn's queue under a lock and returns at
// once. One writer goroutine per Conn takes the whole queue and writes it
// in one call. NewConn starts that goroutine, and it ends at Close, at Abort
// or at the first write error. A lone message leaves at once, and a burst
// of messages from many goroutines leaves in a few system calls. Messages
// sent by one goroutine arrive in the order it sent them. Close waits until
// the queue is written and then closes, so it waits as long as a peer that
// has stopped reading keeps the socket full; Abort drops the queue and
// closes at once. Send is safe for concurrent use. Recv is not: one
// goroutine per Conn reads.
package wire
