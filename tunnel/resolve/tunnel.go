package resolve

import (
	"net/netip"

	"github.com/l2wg/l2wg/tunnel"
)

// Tunnel adapts a *tunnel.Tunnel to Device: the configured endpoints of its
// peer ports, WireGuard's current endpoints and handshakes from its status.
func Tunnel(t *tunnel.Tunnel) Device { return tunnelDevice{t} }

type tunnelDevice struct{ t *tunnel.Tunnel }

func (d tunnelDevice) Peers() ([]Peer, error) {
	st, err := d.t.Status()
	if err != nil {
		return nil, err
	}
	byKey := make(map[string]tunnel.PeerStatus, len(st.Peers))
	for _, ps := range st.Peers {
		byKey[ps.PublicKey] = ps
	}
	var peers []Peer
	for _, pp := range d.t.Peers() {
		ep := pp.ConfiguredEndpoint()
		if ep == "" {
			continue
		}
		p := Peer{Key: pp.Key(), Name: pp.Name(), Endpoint: ep}
		if ps, ok := byKey[pp.PublicKey()]; ok {
			p.LastHandshake = ps.LastHandshake
			p.Current, _ = netip.ParseAddrPort(ps.Endpoint)
		}
		peers = append(peers, p)
	}
	return peers, nil
}

func (d tunnelDevice) SetEndpoint(key [32]byte, ep netip.AddrPort) error {
	return d.t.SetEndpoint(key, ep)
}
