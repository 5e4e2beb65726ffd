package tunnel

import (
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/l2wg/l2wg/bridge"
)

// TestPeerCannotSendUnderAnotherPeersLabel: hub A peers with B and C; B
// rewrites its own label to C's (an l2wg changed to spoof) and sends frames
// to A. WireGuard authenticates B, and B's allowed IP is B's label only, so
// A drops every one of them and counts it; none reaches A's switch, on C's
// port or any other. Frames that C sends arrive on C's port, so the path a
// spoofed frame would take works.
func TestPeerCannotSendUnderAnotherPeersLabel(t *testing.T) {
	mem := newMemNet(3) // node i listens at 127.0.0.1:i+1
	keyA, keyB, keyC := genKey(t), genKey(t), genKey(t)
	swA, swB, swC := newFakeSwitch(), newFakeSwitch(), newFakeSwitch()
	// No probes (a one-hour interval): every packet B sends is a frame,
	// and the drops can be counted exactly.
	newTunnel := func(key [32]byte, bind conn.Bind, sw Switch) *Tunnel {
		tn, err := New(Config{PrivateKey: key, MTU: DefaultMTU, Bind: bind, Logger: quiet, ProbeInterval: time.Hour}, sw)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tn.Close() })
		return tn
	}
	a := newTunnel(keyA, mem.bind(0), swA)
	b := newTunnel(keyB, mem.bind(1), swB)
	c := newTunnel(keyC, mem.bind(2), swC)
	labelC := LabelOf(PublicKey(keyC))
	// Before B has a peer, so before anything reads it.
	b.vtun.self = labelC

	addPeer := func(tn *Tunnel, name string, key [32]byte, endpoint string) *PeerPort {
		p, err := tn.AddPeer(PeerConfig{Name: name, PublicKey: PublicKey(key), Endpoint: endpoint})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	aToB := addPeer(a, "b", keyB, "127.0.0.1:2")
	aToC := addPeer(a, "c", keyC, "127.0.0.1:3")
	addPeer(b, "a", keyA, "127.0.0.1:1")
	addPeer(c, "a", keyA, "127.0.0.1:1")
	for _, tn := range []*Tunnel{a, b, c} {
		if err := tn.Up(); err != nil {
			t.Fatal(err)
		}
	}
	waitSessions(t, a, b, c) // frames are withheld until then (session.go)

	// C's frame arrives on A's port for C.
	genuine := ethFrame(t, 1514, 0)
	swC.port(0).WriteFrames([]bridge.Frame{{Data: genuine}})
	select {
	case got := <-swA.frames:
		if got.port != aToC.id {
			t.Fatalf("C's frame arrived on port %d, want C's port %d", got.port, aToC.id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("C's frame did not reach A")
	}

	// B's frames under C's label, each one packet.
	const spoofed = 20
	for i := range spoofed {
		swB.port(0).WriteFrames([]bridge.Frame{{Data: ethFrame(t, 60+i*60, 0)}})
	}
	// Every one of them crosses B's session and is dropped by A: wait for
	// the count.
	deadline := time.Now().Add(10 * time.Second)
	for a.Drops().ForeignLabel < spoofed {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s A counted %d packets under a foreign label, want %d", a.Drops().ForeignLabel, spoofed)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := a.Drops().ForeignLabel; n != spoofed {
		t.Errorf("A counted %d packets under a foreign label, want %d", n, spoofed)
	}
	st, err := a.Status()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range st.Peers {
		if p.Port == aToB.id && (!p.Live(time.Now()) || p.RxBytes == 0) {
			t.Fatalf("B has no session with A (%+v): the frames were not carried", p)
		}
	}
	// All of B's packets are accounted for as dropped, so none is still
	// on its way to the switch.
	select {
	case got := <-swA.frames:
		t.Fatalf("a frame of %d bytes from B reached A's switch on port %d", len(got.data), got.port)
	default:
	}
	if d := a.Drops(); d.UnknownPeer != 0 || d.Malformed != 0 {
		t.Errorf("A's drops %+v: the spoofed packets reached l2wg's receive path", d)
	}
}
