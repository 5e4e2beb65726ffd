package tunnel

import (
	"encoding/hex"
	"fmt"
	"net/netip"
)

// ConfiguredEndpoint is the peer's endpoint as configured ("host:port",
// the host maybe a DNS name); empty when the peer dials us. WireGuard's
// current endpoint, which roaming may have changed, is in Status.
func (p *PeerPort) ConfiguredEndpoint() string {
	p.t.mu.Lock()
	defer p.t.mu.Unlock()
	return p.cfg.Endpoint
}

// SetEndpoint points WireGuard at a new address for the peer (a DNS name
// that now answers differently), keeping its session, keepalive and port.
// WireGuard sends its next packet for the peer, a handshake included, there.
func (t *Tunnel) SetEndpoint(publicKey [32]byte, ep netip.AddrPort) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.peers[publicKey]
	if p == nil {
		return fmt.Errorf("set endpoint %s: no such peer", ep)
	}
	if err := t.dev.IpcSet(fmt.Sprintf("public_key=%s\nupdate_only=true\nendpoint=%s\n", hex.EncodeToString(publicKey[:]), ep)); err != nil {
		return fmt.Errorf("peer %q: set endpoint %s: %w", p.cfg.Name, ep, err)
	}
	return nil
}
