package tunnel

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/conn/bindtest"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/frag"
)

// fakeSwitch records the frames the tunnel delivers, by port.
type fakeSwitch struct {
	mu     sync.Mutex
	ports  []bridge.Port
	names  []string
	frames chan received
}

type received struct {
	port    bridge.PortID
	offload [10]byte
	data    []byte
}

func newFakeSwitch() *fakeSwitch { return &fakeSwitch{frames: make(chan received, 4096)} }

func (s *fakeSwitch) AddPort(name string, p bridge.Port) bridge.PortID {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ports = append(s.ports, p)
	s.names = append(s.names, name)
	return bridge.PortID(len(s.ports) - 1)
}

func (s *fakeSwitch) RemovePort(id bridge.PortID) {}

func (s *fakeSwitch) Input(in bridge.PortID, frames []bridge.Frame) {
	for _, f := range frames {
		s.frames <- received{port: in, offload: f.Offload, data: bytes.Clone(f.Data)}
	}
}

func (s *fakeSwitch) port(i int) bridge.Port {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ports[i]
}

func genKey(t testing.TB) [32]byte {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		t.Fatal(err)
	}
	k[0] &= 248
	k[31] = k[31]&127 | 64
	return k
}

// pair builds two tunnels peered over in-memory binds, with a session: a's
// port 0 is b, and b's port 0 is a.
func pair(t testing.TB, mtu int) (a, b *Tunnel, swA, swB *fakeSwitch) {
	t.Helper()
	a, b, swA, swB = pairNoSession(t, mtu)
	waitSessions(t, a, b)
	return a, b, swA, swB
}

// pairNoSession is pair before any handshake.
func pairNoSession(t testing.TB, mtu int) (a, b *Tunnel, swA, swB *fakeSwitch) {
	t.Helper()
	binds := bindtest.NewChannelBinds()
	keyA, keyB := genKey(t), genKey(t)
	swA, swB = newFakeSwitch(), newFakeSwitch()
	var err error
	a, err = New(Config{PrivateKey: keyA, ListenPort: 1, MTU: mtu, Bind: binds[0], Logger: quiet}, swA)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	b, err = New(Config{PrivateKey: keyB, ListenPort: 2, MTU: mtu, Bind: binds[1], Logger: quiet}, swB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	// bindtest: bind 0 reaches bind 1 at endpoint 1, bind 1 reaches bind 0 at 2.
	if _, err := a.AddPeer(PeerConfig{Name: "b", PublicKey: PublicKey(keyB), Endpoint: "127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddPeer(PeerConfig{Name: "a", PublicKey: PublicKey(keyA), Endpoint: "127.0.0.1:2"}); err != nil {
		t.Fatal(err)
	}
	for _, tn := range []*Tunnel{a, b} {
		if err := tn.Up(); err != nil {
			t.Fatal(err)
		}
	}
	return a, b, swA, swB
}

// ethFrame builds a frame of exactly size bytes with gopacket: Ethernet
// (802.1Q-tagged if vlan > 0), IPv4, UDP, random payload.
func ethFrame(t testing.TB, size int, vlan uint16) []byte {
	t.Helper()
	src, _ := net.ParseMAC("02:00:00:00:00:01")
	dst, _ := net.ParseMAC("02:00:00:00:00:02")
	eth := &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: layers.EthernetTypeIPv4}
	hdr := 14 + 20 + 8
	ls := []gopacket.SerializableLayer{eth}
	if vlan > 0 {
		eth.EthernetType = layers.EthernetTypeDot1Q
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: vlan, Type: layers.EthernetTypeIPv4})
		hdr += 4
	}
	if size < hdr {
		size = hdr
	}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IPv4(192, 168, 77, 11), DstIP: net.IPv4(192, 168, 77, 21)}
	udp := &layers.UDP{SrcPort: 4000, DstPort: 5000}
	udp.SetNetworkLayerForChecksum(ip)
	payload := make([]byte, size-hdr)
	rand.Read(payload)
	ls = append(ls, ip, udp, gopacket.Payload(payload))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	if len(buf.Bytes()) != size {
		t.Fatalf("built %d bytes, want %d", len(buf.Bytes()), size)
	}
	return buf.Bytes()
}

func TestTunnelCarriesFramesBothWays(t *testing.T) {
	for _, mtu := range []int{576, 1280, DefaultMTU} {
		t.Run(fmt.Sprintf("mtu%d", mtu), func(t *testing.T) {
			_, _, swA, swB := pair(t, mtu)
			cases := []struct {
				name    string
				size    int
				vlan    uint16
				offload [10]byte
			}{
				{name: "minimum", size: 60},
				{name: "full", size: 1514},
				{name: "tagged-full", size: 1518, vlan: 100},
				{name: "jumbo", size: 9018},
				{name: "gso-superframe", size: 65535 + 14, offload: [10]byte{1, 1, 66, 0, 0xa8, 5, 34, 0, 16, 0}},
			}
			for _, dir := range []struct {
				name     string
				from, to *fakeSwitch
			}{{"a-to-b", swA, swB}, {"b-to-a", swB, swA}} {
				for _, c := range cases {
					frame := ethFrame(t, c.size, c.vlan)
					dir.from.port(0).WriteFrames([]bridge.Frame{{Offload: c.offload, Data: frame}})
					select {
					case got := <-dir.to.frames:
						if got.port != 0 {
							t.Errorf("%s %s: arrived on port %d, want 0", dir.name, c.name, got.port)
						}
						if !bytes.Equal(got.data, frame) {
							t.Errorf("%s %s: frame of %d bytes arrived as %d bytes, not identical", dir.name, c.name, len(frame), len(got.data))
						}
						if got.offload != c.offload {
							t.Errorf("%s %s: offload header %x, want %x", dir.name, c.name, got.offload, c.offload)
						}
						pkt := gopacket.NewPacket(got.data, layers.LayerTypeEthernet, gopacket.Default)
						if c.vlan > 0 {
							if d, ok := pkt.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q); !ok || d.VLANIdentifier != c.vlan {
								t.Errorf("%s %s: 802.1Q tag lost", dir.name, c.name)
							}
						}
					case <-time.After(10 * time.Second):
						t.Fatalf("%s %s: frame of %d bytes did not arrive", dir.name, c.name, c.size)
					}
				}
			}
		})
	}
}

// A frame's Head (the mesh's data header) crosses in front of its Data, up
// to the longest superframe behind the longest header frag carries.
func TestTunnelSendsHeadBeforeData(t *testing.T) {
	_, _, swA, swB := pair(t, DefaultMTU)
	head := []byte{0x40, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}[:frag.MaxEncapLen]
	offload := [10]byte{1, 1, 66, 0, 0xa8, 5, 34, 0, 16, 0}
	for _, size := range []int{60, 1514, frag.MaxEthernetLen} {
		data := ethFrame(t, size, 0)
		swA.port(0).WriteFrames([]bridge.Frame{{Offload: offload, Head: head, Data: data}})
		select {
		case got := <-swB.frames:
			if want := append(bytes.Clone(head), data...); !bytes.Equal(got.data, want) {
				t.Errorf("%d-byte frame with a %d-byte head arrived as %d bytes, not head then frame", size, len(head), len(got.data))
			}
			if got.offload != offload {
				t.Errorf("%d-byte frame: offload header %x, want %x", size, got.offload, offload)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d-byte frame with a head did not arrive", size)
		}
	}
}

func TestTunnelKeepsOrderInABurst(t *testing.T) {
	a, b, swA, swB := pair(t, DefaultMTU)
	const n = 2000
	sent := make([][]byte, n)
	for i := range sent {
		sent[i] = ethFrame(t, 60+(i*37)%1460, 0)
	}
	go func() {
		for i := 0; i < n; i += 50 {
			batch := make([]bridge.Frame, 0, 50)
			for _, f := range sent[i : i+50] {
				batch = append(batch, bridge.Frame{Data: f})
			}
			swA.port(0).WriteFrames(batch)
		}
	}()
	for i := 0; i < n; i++ {
		select {
		case got := <-swB.frames:
			if !bytes.Equal(got.data, sent[i]) {
				t.Fatalf("frame %d differs (len %d, want %d)", i, len(got.data), len(sent[i]))
			}
		case <-time.After(10 * time.Second):
			st := b.ReassemblyStats()
			t.Fatalf("only %d of %d frames arrived; reassembly %+v; sender drops %+v", i, n, st, a.Drops())
		}
	}
}

func TestAddPeerRefusesOwnKeyAndDuplicates(t *testing.T) {
	key := genKey(t)
	tn, err := New(Config{PrivateKey: key, Bind: conn.NewStdNetBind(), Logger: quiet}, newFakeSwitch())
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Close()
	if _, err := tn.AddPeer(PeerConfig{Name: "self", PublicKey: PublicKey(key)}); err == nil {
		t.Error("AddPeer with our own key succeeded")
	}
	other := PublicKey(genKey(t))
	if _, err := tn.AddPeer(PeerConfig{Name: "x", PublicKey: other}); err != nil {
		t.Fatal(err)
	}
	if _, err := tn.AddPeer(PeerConfig{Name: "y", PublicKey: other}); err == nil {
		t.Error("AddPeer with a duplicate key succeeded")
	}
}

func TestLabelHeaderRoundTrip(t *testing.T) {
	src, dst := Label{10, 1, 2, 3}, Label{10, 4, 5, 6}
	pkt := make([]byte, 64)
	putLabelHeader(pkt, src, dst, 50)
	gotSrc, chunk, ok := parseLabelHeader(pkt)
	if !ok || gotSrc != src || len(chunk) != 30 {
		t.Fatalf("parse = %v %d %v", gotSrc, len(chunk), ok)
	}
	// gopacket as an independent decoder: a valid IPv4 header with our labels.
	ip := gopacket.NewPacket(pkt[:50], layers.LayerTypeIPv4, gopacket.Default).Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if !ip.SrcIP.Equal(net.IP(src[:])) || !ip.DstIP.Equal(net.IP(dst[:])) || ip.Length != 50 || ip.Protocol != labelProto {
		t.Fatalf("gopacket sees %v -> %v len %d proto %d", ip.SrcIP, ip.DstIP, ip.Length, ip.Protocol)
	}
	for _, bad := range [][]byte{nil, pkt[:19], append([]byte{0x46}, pkt[1:50]...)} {
		if _, _, ok := parseLabelHeader(bad); ok {
			t.Errorf("parseLabelHeader(%x) accepted", bad)
		}
	}
}

func TestSplitEndpoint(t *testing.T) {
	for _, c := range []struct {
		in   string
		host string
		ok   bool
	}{
		{"192.0.2.1:51820", "192.0.2.1", true},
		{"[2001:db8::1]:51820", "2001:db8::1", true},
		{"vpn.example.com:51820", "vpn.example.com", true},
		{"192.0.2.1", "", false},
		{"192.0.2.1:0", "", false},
		{"192.0.2.1:70000", "", false},
		{":51820", "", false},
		{"2001:db8::1:51820", "", false},
	} {
		host, _, err := SplitEndpoint(c.in)
		if (err == nil) != c.ok || host != c.host {
			t.Errorf("SplitEndpoint(%q) = %q, %v", c.in, host, err)
		}
	}
}

var quiet = slog.New(slog.DiscardHandler)

func TestStatusReportsHandshakeAndBytes(t *testing.T) {
	a, b, swA, swB := pairNoSession(t, DefaultMTU)
	st, err := a.Status()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Peers) != 1 || st.Peers[0].Name != "b" || st.Peers[0].Live(time.Now()) {
		t.Fatalf("before any traffic: %+v", st)
	}
	waitSessions(t, a, b) // frames are withheld until then
	swA.port(0).WriteFrames([]bridge.Frame{{Data: ethFrame(t, 1514, 0)}})
	select {
	case <-swB.frames:
	case <-time.After(10 * time.Second):
		t.Fatal("the frame did not arrive within 10s")
	}
	st, _ = a.Status()
	p := st.Peers[0]
	if !p.Live(time.Now()) || p.TxBytes < 1514 || p.RxBytes == 0 || p.Endpoint == "" {
		t.Fatalf("after a frame: %+v", p)
	}
}

func TestProbesMeasureRoundTrip(t *testing.T) {
	a, b, _, _ := pair(t, DefaultMTU)
	var pa *PeerPort
	for _, p := range a.Peers() {
		pa = p
	}
	ok := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if rtt, last := pa.RTT(); rtt > 0 && !last.IsZero() {
			ok = true
			break
		}
	}
	if !ok {
		t.Fatal("no probe reply within 10s")
	}
	rtt, last := pa.RTT()
	if rtt > time.Second || time.Since(last) > time.Second {
		t.Fatalf("rtt %v, last reply %v ago", rtt, time.Since(last))
	}
	if m := pa.MinRTT(); m <= 0 || m > rtt*8 {
		t.Fatalf("min rtt %v with smoothed rtt %v", m, rtt)
	}
	// Stop the far side: replies stop, and the last one falls behind.
	b.Close()
	stopped := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(DefaultProbeInterval) {
		if _, last2 := pa.RTT(); time.Since(last2) >= 4*DefaultProbeInterval {
			stopped = true
			break
		}
	}
	if !stopped {
		_, last2 := pa.RTT()
		t.Fatalf("probe replies still arrive (last %v ago) 5s after the peer closed", time.Since(last2))
	}
}

func TestMinRTTIgnoresQueueing(t *testing.T) {
	var p PeerPort
	t0 := time.Unix(1000, 0)
	p.probe.sample(2*time.Millisecond, t0)
	for i := 1; i < 50; i++ { // load: round trips of 40 ms
		p.probe.sample(40*time.Millisecond, t0.Add(time.Duration(i)*100*time.Millisecond))
	}
	if m := p.MinRTT(); m != 2*time.Millisecond {
		t.Fatalf("min rtt under load %v, want the 2ms floor", m)
	}
	// Two windows later the floor has moved up to what the path now is.
	for i := 0; i < 300; i++ {
		p.probe.sample(30*time.Millisecond, t0.Add(5*time.Second+time.Duration(i)*100*time.Millisecond))
	}
	if m := p.MinRTT(); m != 30*time.Millisecond {
		t.Fatalf("min rtt after the path changed %v, want 30ms", m)
	}
}

func TestOnlyOneSideSpeaksFirst(t *testing.T) {
	keyA, keyB := genKey(t), genKey(t)
	pubA, pubB := PublicKey(keyA), PublicKey(keyB)
	if bytes.Compare(pubA[:], pubB[:]) > 0 {
		keyA, keyB, pubA, pubB = keyB, keyA, pubB, pubA
	}
	a := &Tunnel{selfPublic: pubA}
	b := &Tunnel{selfPublic: pubB}
	t0 := time.Unix(1000, 0)
	toB := &PeerPort{cfg: PeerConfig{PublicKey: pubB}, added: t0}
	toA := &PeerPort{cfg: PeerConfig{PublicKey: pubA}, added: t0}
	if !a.speaksFirst(toB, t0) {
		t.Error("the smaller key does not speak first")
	}
	if b.speaksFirst(toA, t0.Add(time.Second)) {
		t.Error("both sides speak first: their handshakes would cross")
	}
	toA.lastRx.Store(t0.Add(2 * time.Second).UnixNano())
	if !b.speaksFirst(toA, t0.Add(3*time.Second)) {
		t.Error("the second side stays silent though the peer is talking")
	}
	toA.lastRx.Store(0)
	if !b.speaksFirst(toA, t0.Add(initiateGrace)) {
		t.Error("the second side never dials a silent peer (it may be unable to reach us)")
	}
	keepalive := &PeerPort{cfg: PeerConfig{PublicKey: pubA, PersistentKeepalive: 25 * time.Second}, added: t0}
	if !b.speaksFirst(keepalive, t0) {
		t.Error("a side that keeps the peer's NAT open waits")
	}
}
