package bridge

import (
	"bytes"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// fakeClock is a clock stepped by hand.
type fakeClock struct {
	mu  sync.Mutex // protects now
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// written is one frame a fakePort was handed, copied, with the address of the
// Data it was handed (to check that the switch copies nothing).
type written struct {
	Frame
	ptr *byte
}

// fakePort records what it is handed, one entry per WriteFrames call.
type fakePort struct {
	mu    sync.Mutex // protects calls
	calls [][]written
}

func (p *fakePort) WriteFrames(frames []Frame) {
	call := make([]written, len(frames))
	for i, f := range frames {
		// as a link sends it: Head, then Data
		call[i] = written{Frame{Offload: f.Offload, Data: append(bytes.Clone(f.Head), f.Data...)}, unsafe.SliceData(f.Data)}
	}
	p.mu.Lock()
	p.calls = append(p.calls, call)
	p.mu.Unlock()
}

// take returns and forgets what the port was handed.
func (p *fakePort) take() [][]written {
	p.mu.Lock()
	defer p.mu.Unlock()
	calls := p.calls
	p.calls = nil
	return calls
}

// takeFrames returns and forgets the frames the port was handed, all calls
// joined.
func (p *fakePort) takeFrames() []written {
	var all []written
	for _, c := range p.take() {
		all = append(all, c...)
	}
	return all
}

// countPort only counts, for tests and benchmarks that move many frames.
type countPort struct {
	calls, frames atomic.Uint64
}

func (p *countPort) WriteFrames(frames []Frame) {
	p.calls.Add(1)
	p.frames.Add(uint64(len(frames)))
}

// testBridge is a bridge with fake ports and a fake clock.
type testBridge struct {
	*Bridge
	clock *fakeClock
	ports []*fakePort
	ids   []PortID
}

var testPortNames = []string{"tap", "peer-a", "peer-b", "peer-c", "peer-d", "peer-e"}

func newTestBridge(t testing.TB, nports int, cfg Config) *testBridge {
	t.Helper()
	tb := &testBridge{clock: newFakeClock()}
	cfg.Clock = tb.clock
	if cfg.Logger == nil {
		cfg.Logger = discardLogger()
	}
	tb.Bridge = New(cfg)
	for i := range nports {
		p := new(fakePort)
		tb.ports = append(tb.ports, p)
		tb.ids = append(tb.ids, tb.AddPort(testPortNames[i], p))
	}
	return tb
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// send inputs one frame on port index in.
func (tb *testBridge) send(in int, data []byte) {
	tb.Input(tb.ids[in], []Frame{{Data: data}})
}

// portOf returns the port index of id, -1 if none.
func (tb *testBridge) portOf(id PortID) int {
	for i, x := range tb.ids {
		if x == id {
			return i
		}
	}
	return -1
}

// receivers takes what every port was handed and returns the indexes of the
// ports that got exactly data once, failing on anything else.
func (tb *testBridge) receivers(t *testing.T, data []byte) []int {
	t.Helper()
	var got []int
	for i, p := range tb.ports {
		frames := p.takeFrames()
		switch {
		case len(frames) == 0:
		case len(frames) == 1 && bytes.Equal(frames[0].Data, data):
			got = append(got, i)
		default:
			t.Errorf("port %s got %d frames, want the one sent", testPortNames[i], len(frames))
		}
	}
	return got
}

// host returns the locally administered unicast address of test host n.
func host(n byte) MAC { return MAC{0x02, 0, 0, 0, 0, n} }

func hw(m MAC) net.HardwareAddr { return net.HardwareAddr(m[:]) }

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return bytes.Clone(buf.Bytes())
}

// udpFrame returns an Ethernet/IPv4/UDP frame from src to dst.
func udpFrame(t testing.TB, src, dst MAC, payload string) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: hw(src), DstMAC: hw(dst), EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IPv4(10, 0, 0, src[5]), DstIP: net.IPv4(10, 0, 0, dst[5])}
	if dst.IsMulticast() {
		ip.DstIP = net.IPv4(224, 0, 0, 251)
	}
	udp := &layers.UDP{SrcPort: 5353, DstPort: 5353}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	return serialize(t, eth, ip, udp, gopacket.Payload(payload))
}

// arpRequest returns a broadcast ARP request from src.
func arpRequest(t testing.TB, src MAC, vlan uint16) []byte {
	t.Helper()
	arp := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest,
		SourceHwAddress: hw(src), SourceProtAddress: []byte{10, 0, 0, src[5]},
		DstHwAddress: make([]byte, 6), DstProtAddress: []byte{10, 0, 0, 254}}
	eth := &layers.Ethernet{SrcMAC: hw(src), DstMAC: hw(Broadcast), EthernetType: layers.EthernetTypeARP}
	if vlan == 0 {
		return serialize(t, eth, arp)
	}
	eth.EthernetType = layers.EthernetTypeDot1Q
	return serialize(t, eth, &layers.Dot1Q{VLANIdentifier: vlan, Type: layers.EthernetTypeARP}, arp)
}

// taggedUDPFrame returns an 802.1Q-tagged Ethernet/IPv4/UDP frame.
func taggedUDPFrame(t testing.TB, src, dst MAC, vlan uint16, prio uint8) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: hw(src), DstMAC: hw(dst), EthernetType: layers.EthernetTypeDot1Q}
	tag := &layers.Dot1Q{VLANIdentifier: vlan, Priority: prio, Type: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IPv4(10, 0, 0, src[5]), DstIP: net.IPv4(10, 0, 0, dst[5])}
	udp := &layers.UDP{SrcPort: 4789, DstPort: 4789}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	return serialize(t, eth, tag, ip, udp, gopacket.Payload("tagged"))
}

// llcFrame returns an 802.3/LLC frame to dst, as a configuration BPDU is
// (LLC 42-42-03, 35 bytes of BPDU).
func llcFrame(t testing.TB, src, dst MAC) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: hw(src), DstMAC: hw(dst), EthernetType: layers.EthernetTypeLLC}
	llc := &layers.LLC{DSAP: 0x42, SSAP: 0x42, Control: 0x03}
	bpdu := make([]byte, 35) // protocol 0, version 0, type 0 (configuration)
	return serialize(t, eth, llc, gopacket.Payload(bpdu))
}

// controlRecorder is a control handler that records what it is handed.
type controlRecorder struct {
	mu     sync.Mutex // protects frames
	frames []controlFrame
}

type controlFrame struct {
	in PortID
	f  Frame
}

func (r *controlRecorder) handle(in PortID, f Frame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frames = append(r.frames, controlFrame{in, Frame{Offload: f.Offload, Data: bytes.Clone(f.Data)}})
}

func (r *controlRecorder) take() []controlFrame {
	r.mu.Lock()
	defer r.mu.Unlock()
	fs := r.frames
	r.frames = nil
	return fs
}
