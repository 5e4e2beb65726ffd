package mesh

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Key is a node's identity: its WireGuard public key, which WireGuard has
// already authenticated on every tunnel.
type Key [32]byte

// NodeID is the short name of a node in records and in the data-plane header:
// the first four bytes of SHA-256 of its key. 0 is never a node.
type NodeID uint32

// IDFromKey returns the node ID of a key. A hash that comes out as 0 is
// mapped to 1, so that 0 stays "no node".
func IDFromKey(k Key) NodeID {
	sum := sha256.Sum256(k[:])
	id := NodeID(binary.BigEndian.Uint32(sum[:4]))
	if id == 0 {
		id = 1
	}
	return id
}

// String returns the ID as eight hex digits.
func (id NodeID) String() string { return fmt.Sprintf("%08x", uint32(id)) }

// Port is the caller's name for the link to one neighbour (the bridge's
// port ID of the peer). The machine only compares ports; 0 is never a port.
type Port uint16
