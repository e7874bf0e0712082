package wire

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Version is the wire protocol version. Peers with another version are
// refused during the handshake with an error naming both.
const Version uint16 = 2

// HandshakeTimeout bounds the whole handshake: a peer that connects and
// stays silent is dropped.
var HandshakeTimeout = 5 * time.Second

var (
	// ErrAuth means the peer did not prove it holds the cluster secret.
	ErrAuth = errors.New("authentication failed")
	// ErrVersion means the peer speaks another protocol version.
	ErrVersion = errors.New("protocol version mismatch")
)

var magic = [6]byte{'R', 'A', 'Y', 'G', 'O', 0}

const nonceSize = 32

func mac(secret []byte, label string, role Role, a, b []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(label))
	h.Write([]byte{byte(role)})
	h.Write(a)
	h.Write(b)
	return h.Sum(nil)
}

// Handshake status bytes sent by the server.
const (
	hsOK byte = iota
	hsVersion
	hsAuth
)

// ServerHandshake proves both sides hold secret before any message is read.
// The server sends magic, version and a nonce; the client answers with its
// version, its nonce and an HMAC over both nonces; the server checks it and
// proves itself the same way. Nothing else is parsed from an unauthenticated
// peer, and the whole exchange is bounded by HandshakeTimeout.
func ServerHandshake(nc net.Conn, secret []byte) (Role, error) {
	nc.SetDeadline(time.Now().Add(HandshakeTimeout))
	defer nc.SetDeadline(time.Time{})
	var hello [len(magic) + 2 + nonceSize]byte
	copy(hello[:], magic[:])
	binary.LittleEndian.PutUint16(hello[len(magic):], Version)
	sn := hello[len(magic)+2:]
	if _, err := rand.Read(sn); err != nil {
		return 0, err
	}
	if _, err := nc.Write(hello[:]); err != nil {
		return 0, fmt.Errorf("handshake with %s: %w", nc.RemoteAddr(), err)
	}
	var reply [len(magic) + 2 + 1 + nonceSize + sha256.Size]byte
	if _, err := io.ReadFull(nc, reply[:]); err != nil {
		return 0, fmt.Errorf("handshake with %s: %w: no valid reply: %v", nc.RemoteAddr(), ErrAuth, err)
	}
	if !bytes.Equal(reply[:len(magic)], magic[:]) {
		return 0, fmt.Errorf("handshake with %s: %w: not a raygo peer", nc.RemoteAddr(), ErrAuth)
	}
	v := binary.LittleEndian.Uint16(reply[len(magic):])
	role := Role(reply[len(magic)+2])
	cn := reply[len(magic)+3 : len(magic)+3+nonceSize]
	cm := reply[len(magic)+3+nonceSize:]
	if v != Version {
		msg := fmt.Sprintf("peer speaks v%d, this node speaks v%d", v, Version)
		nc.Write(append([]byte{hsVersion}, msg...))
		return 0, fmt.Errorf("handshake with %s: %w: %s", nc.RemoteAddr(), ErrVersion, msg)
	}
	if !hmac.Equal(cm, mac(secret, "raygo client", role, sn, cn)) {
		nc.Write([]byte{hsAuth})
		return 0, fmt.Errorf("handshake with %s: %w: wrong cluster secret", nc.RemoteAddr(), ErrAuth)
	}
	out := append([]byte{hsOK}, mac(secret, "raygo server", role, cn, sn)...)
	if _, err := nc.Write(out); err != nil {
		return 0, fmt.Errorf("handshake with %s: %w", nc.RemoteAddr(), err)
	}
	return role, nil
}

// ClientHandshake is the other half of ServerHandshake.
func ClientHandshake(nc net.Conn, secret []byte, role Role) error {
	nc.SetDeadline(time.Now().Add(HandshakeTimeout))
	defer nc.SetDeadline(time.Time{})
	var hello [len(magic) + 2 + nonceSize]byte
	if _, err := io.ReadFull(nc, hello[:]); err != nil {
		return fmt.Errorf("handshake with %s: %w", nc.RemoteAddr(), err)
	}
	if !bytes.Equal(hello[:len(magic)], magic[:]) {
		return fmt.Errorf("handshake with %s: not a raygo node (bad greeting)", nc.RemoteAddr())
	}
	if v := binary.LittleEndian.Uint16(hello[len(magic):]); v != Version {
		return fmt.Errorf("handshake with %s: %w: peer speaks v%d, this process speaks v%d", nc.RemoteAddr(), ErrVersion, v, Version)
	}
	sn := hello[len(magic)+2:]
	var reply [len(magic) + 2 + 1 + nonceSize + sha256.Size]byte
	copy(reply[:], magic[:])
	binary.LittleEndian.PutUint16(reply[len(magic):], Version)
	reply[len(magic)+2] = byte(role)
	cn := reply[len(magic)+3 : len(magic)+3+nonceSize]
	if _, err := rand.Read(cn); err != nil {
		return err
	}
	copy(reply[len(magic)+3+nonceSize:], mac(secret, "raygo client", role, sn, cn))
	if _, err := nc.Write(reply[:]); err != nil {
		return fmt.Errorf("handshake with %s: %w", nc.RemoteAddr(), err)
	}
	var status [1]byte
	if _, err := io.ReadFull(nc, status[:]); err != nil {
		return fmt.Errorf("handshake with %s: %w: connection closed (wrong cluster secret?)", nc.RemoteAddr(), ErrAuth)
	}
	switch status[0] {
	case hsOK:
	case hsVersion:
		msg, _ := io.ReadAll(io.LimitReader(nc, 256))
		return fmt.Errorf("handshake with %s: %w: %s", nc.RemoteAddr(), ErrVersion, msg)
	case hsAuth:
		return fmt.Errorf("handshake with %s: %w: the node refused this process's cluster secret", nc.RemoteAddr(), ErrAuth)
	default:
		return fmt.Errorf("handshake with %s: unexpected status %d", nc.RemoteAddr(), status[0])
	}
	var sm [sha256.Size]byte
	if _, err := io.ReadFull(nc, sm[:]); err != nil {
		return fmt.Errorf("handshake with %s: %w", nc.RemoteAddr(), err)
	}
	if !hmac.Equal(sm[:], mac(secret, "raygo server", role, cn, sn)) {
		return fmt.Errorf("handshake with %s: %w: the node could not prove it holds the cluster secret", nc.RemoteAddr(), ErrAuth)
	}
	return nil
}
