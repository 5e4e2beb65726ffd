package tunnel

import (
	"encoding/base64"
	"sync"
	"sync/atomic"
	"time"

	"github.com/l2wg/l2wg/bridge"
)

// PeerConfig describes one WireGuard peer.
type PeerConfig struct {
	Name      string
	PublicKey [32]byte
	// Endpoint is "host:port" (IPv4, [IPv6] or a DNS name); empty when the
	// peer dials us. A DNS name is resolved when the peer is added, and again
	// in the background until it resolves.
	Endpoint            string
	PersistentKeepalive time.Duration
}

// PeerPort is one WireGuard peer as a port of the switch.
type PeerPort struct {
	t     *Tunnel
	cfg   PeerConfig
	label Label
	id    bridge.PortID

	probe  probeState
	sender sender       // its frames on the way to wireguard-go
	added  time.Time    // when AddPeer made the port
	lastRx atomic.Int64 // unix ns of the last packet received from the peer; 0: none

	sessionUntil atomic.Int64 // unix ns until which its session carries traffic (session.go)
	lastNudge    atomic.Int64 // unix ns of the last handshake request for withheld traffic
	lastRedial   atomic.Int64 // unix ns of the last forced initiation (redial, status.go)
	redialGap    atomic.Int64 // ns from the last redial to the next; 0: redialEvery
	redials      atomic.Int32 // forced initiations since the peer was last heard from
	expired      atomic.Int64 // unix ns of the last redial: handshakes up to it no longer carry a session
	handshake    atomic.Int64 // unix ns of the last handshake the device reported (session.go); 0: none

	// dialMu orders what may make wireguard-go send a handshake
	// initiation to the peer (status.go, Dials); lastDial is the last.
	dialMu   sync.Mutex
	lastDial atomic.Int64 // unix ns
}

var _ bridge.Port = (*PeerPort)(nil)

// WriteFrames queues frames for the peer, copying them, so it retains
// nothing. While the tunnel's queue is full it waits a little for room
// (queueWait per batch), then drops and counts (Drops.QueueFull); so does a
// peer that holds its share of the queue. A slow or dead peer thus never
// stalls the port that sends. Without a session with the peer, frames are
// dropped and counted (Drops.NoSession) and a handshake is requested
// (session.go says why).
func (p *PeerPort) WriteFrames(frames []bridge.Frame) {
	if now := time.Now(); !p.hasSession(now) {
		p.t.withheld(p, len(frames), now)
		return
	}
	p.t.vtun.enqueue(&p.sender, p.label, frames)
}

// Name is the peer's configured name.
func (p *PeerPort) Name() string { return p.cfg.Name }

// PortID is the peer's port on the switch.
func (p *PeerPort) PortID() bridge.PortID { return p.id }

// Label is the peer's routing label.
func (p *PeerPort) Label() Label { return p.label }

// PublicKey is the peer's key in base64, as wg prints it.
func (p *PeerPort) PublicKey() string { return base64.StdEncoding.EncodeToString(p.cfg.PublicKey[:]) }

// Key is the peer's public key.
func (p *PeerPort) Key() [32]byte { return p.cfg.PublicKey }
