package resolve

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/tunnel"
)

type nullSwitch struct{ n bridge.PortID }

func (s *nullSwitch) AddPort(string, bridge.Port) bridge.PortID { s.n++; return s.n }
func (s *nullSwitch) RemovePort(bridge.PortID)                  {}
func (s *nullSwitch) Input(bridge.PortID, []bridge.Frame)       {}

func key(t *testing.T) [32]byte {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		t.Fatal(err)
	}
	k[0] &= 248
	k[31] = k[31]&127 | 64
	return k
}

// The adapter reads a real tunnel's configured endpoints and WireGuard's
// current ones, and a re-resolved answer reaches WireGuard's peer state.
// Every address is on loopback: what WireGuard sends stays on this host.
func TestTunnelEndpointMovesInWireGuard(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	tn, err := tunnel.New(tunnel.Config{PrivateKey: key(t), Bind: conn.NewStdNetBind(), Logger: quiet}, &nullSwitch{})
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Close()
	named, literal := tunnel.PublicKey(key(t)), tunnel.PublicKey(key(t))
	// "localhost" resolves from /etc/hosts when the peer is added.
	if _, err := tn.AddPeer(tunnel.PeerConfig{Name: "named", PublicKey: named, Endpoint: "localhost:9"}); err != nil {
		t.Fatal(err)
	}
	if _, err := tn.AddPeer(tunnel.PeerConfig{Name: "literal", PublicKey: literal, Endpoint: "127.0.0.2:9"}); err != nil {
		t.Fatal(err)
	}
	if _, err := tn.AddPeer(tunnel.PeerConfig{Name: "dialer", PublicKey: tunnel.PublicKey(key(t))}); err != nil {
		t.Fatal(err)
	}
	dev := Tunnel(tn)
	peers, err := dev.Peers()
	if err != nil {
		t.Fatal(err)
	}
	if len(peers) != 2 {
		t.Fatalf("adapter lists %d peers with endpoints, want 2: %+v", len(peers), peers)
	}
	for _, p := range peers {
		if p.Name == "named" && (p.Endpoint != "localhost:9" || p.Current != netip.MustParseAddrPort("127.0.0.1:9") || !p.LastHandshake.IsZero()) {
			t.Fatalf("named peer read as %+v", p)
		}
	}

	dns := newFakeDNS()
	dns.set("localhost", "127.0.0.77")
	r := New(dev, Config{Resolver: dns, Logger: quiet})
	if n := r.Check(context.Background(), time.Now(), false); n != 1 {
		t.Fatalf("%d endpoints changed, want 1", n)
	}
	st, err := tn.Status()
	if err != nil {
		t.Fatal(err)
	}
	for _, ps := range st.Peers {
		want := map[string]string{"named": "127.0.0.77:9", "literal": "127.0.0.2:9", "dialer": ""}[ps.Name]
		if ps.Endpoint != want {
			t.Errorf("WireGuard has peer %s at %q, want %q", ps.Name, ps.Endpoint, want)
		}
	}
	if err := tn.SetEndpoint([32]byte{9}, netip.MustParseAddrPort("192.0.2.1:1")); err == nil {
		t.Error("SetEndpoint of an unknown peer succeeded")
	}
}
