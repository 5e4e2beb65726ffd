package stp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ciscoFrame is a real switch's config BPDU (gopacket's TestSTP vector): a
// PVST+ bridge with priority 32768 + VLAN 100.
const ciscoFrame = `
0180c2000000 001c0e878504 0026
424203
0000 00 00 00
8064001c0e877800 00000004 8064001c0e878500 8004
0100 1400 0200 0f00
0000000000000000`

// kernelHello is the hello of a Linux bridge with default settings, address
// 02:00:00:00:00:01, on port 1, built by hand from 802.1D clause 9.
const kernelHello = `
0180c2000000 020000000001 0026
424203
0000 00 00 00
8000020000000001 00000000 8000020000000001 8001
0000 1400 0200 0f00
0000000000000000`

// tcnFrame is a TCN BPDU from 02:00:00:00:00:02, padded to 60 bytes.
const tcnFrame = `
0180c2000000 020000000002 0007
424203 0000 00 80
000000000000000000000000000000000000000000000000000000000000000000000000000000`

var (
	mac1 = [6]byte{2, 0, 0, 0, 0, 1}
	mac2 = [6]byte{2, 0, 0, 0, 0, 2}
)

func TestDecodeFrameVectors(t *testing.T) {
	tests := []struct {
		name string
		src  [6]byte
		hex  string
		want BPDU
	}{
		{
			name: "cisco pvst+ config",
			src:  [6]byte{0x00, 0x1c, 0x0e, 0x87, 0x85, 0x04},
			hex:  ciscoFrame,
			want: BPDU{
				Type:         TypeConfig,
				RootID:       NewBridgeID(0x8064, [6]byte{0x00, 0x1c, 0x0e, 0x87, 0x78, 0x00}),
				RootPathCost: 4,
				BridgeID:     NewBridgeID(0x8064, [6]byte{0x00, 0x1c, 0x0e, 0x87, 0x85, 0x00}),
				PortID:       0x8004,
				MessageAge:   time.Second,
				MaxAge:       20 * time.Second,
				HelloTime:    2 * time.Second,
				ForwardDelay: 15 * time.Second,
			},
		},
		{
			name: "linux bridge hello",
			src:  mac1,
			hex:  kernelHello,
			want: BPDU{
				Type:         TypeConfig,
				RootID:       NewBridgeID(0x8000, mac1),
				BridgeID:     NewBridgeID(0x8000, mac1),
				PortID:       NewPortID(DefaultPortPriority, 1),
				MaxAge:       20 * time.Second,
				HelloTime:    2 * time.Second,
				ForwardDelay: 15 * time.Second,
			},
		},
		{
			name: "tcn",
			src:  mac2,
			hex:  tcnFrame,
			want: BPDU{Type: TypeTCN},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame := unhex(t, tt.hex)
			if len(frame) != MinFrameLen {
				t.Fatalf("vector is %d bytes, want %d", len(frame), MinFrameLen)
			}
			got, err := DecodeFrame(frame)
			if err != nil {
				t.Fatalf("DecodeFrame: %v", err)
			}
			if got != tt.want {
				t.Fatalf("DecodeFrame\n got %+v\nwant %+v", got, tt.want)
			}
			// Encoding gives back the very bytes, padding included.
			enc, err := AppendFrame(nil, tt.src, tt.want)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(enc, frame) {
				t.Fatalf("AppendFrame\n got %x\nwant %x", enc, frame)
			}
		})
	}
}

// TestBridgeSendsKernelHello checks a Bridge's first hello against the bytes a
// Linux bridge sends in the same configuration.
func TestBridgeSendsKernelHello(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	b, err := New(DefaultConfig(mac1), t0)
	if err != nil {
		t.Fatal(err)
	}
	mustAdd(t, b, 1, DefaultPortConfig(), t0)
	b.Enable(1, t0)
	var sent []BPDU
	for _, a := range b.Tick(t0.Add(DefaultHelloTime)) {
		if a.Kind == SendBPDU {
			sent = append(sent, a.BPDU)
		}
	}
	if len(sent) != 1 {
		t.Fatalf("sent %d BPDUs, want 1", len(sent))
	}
	frame, err := AppendFrame(nil, mac1, sent[0])
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, kernelHello); !bytes.Equal(frame, want) {
		t.Fatalf("hello\n got %x\nwant %x", frame, want)
	}
}

// TestFramesDecodeWithGopacket decodes our frames with gopacket's Ethernet,
// LLC and STP layers, an independent decoder: 802.3 length, LLC SAPs and
// control, and every field of a config BPDU. (gopacket's STP layer decodes
// config BPDUs only; for a TCN it sees the 4 bytes and gives up.)
func TestFramesDecodeWithGopacket(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	msgs := []BPDU{{Type: TypeTCN}}
	for range 500 {
		msgs = append(msgs, BPDU{
			Type:              TypeConfig,
			TopologyChange:    rng.IntN(2) == 0,
			TopologyChangeAck: rng.IntN(2) == 0,
			RootID:            BridgeID(rng.Uint64()),
			RootPathCost:      rng.Uint32(),
			BridgeID:          BridgeID(rng.Uint64()),
			PortID:            PortID(rng.Uint32()),
			MessageAge:        time.Duration(rng.IntN(1<<16)) * timeUnit,
			MaxAge:            time.Duration(rng.IntN(1<<16)) * timeUnit,
			HelloTime:         time.Duration(rng.IntN(1<<16)) * timeUnit,
			ForwardDelay:      time.Duration(rng.IntN(1<<16)) * timeUnit,
		})
	}
	for i, m := range msgs {
		frame, err := AppendFrame(nil, mac2, m)
		if err != nil {
			t.Fatal(err)
		}
		if len(frame) != MinFrameLen {
			t.Errorf("frame is %d bytes, want %d", len(frame), MinFrameLen)
		}
		pkt := gopacket.NewPacket(frame, layers.LinkTypeEthernet, gopacket.Default)
		eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		llc, _ := pkt.Layer(layers.LayerTypeLLC).(*layers.LLC)
		if eth == nil || llc == nil {
			t.Fatalf("gopacket layers: %v", pkt)
		}
		if !bytes.Equal(eth.DstMAC, GroupAddress[:]) || !bytes.Equal(eth.SrcMAC, mac2[:]) {
			t.Errorf("addresses %v -> %v", eth.SrcMAC, eth.DstMAC)
		}
		if eth.EthernetType != layers.EthernetTypeLLC || int(eth.Length) != m.Len() {
			t.Errorf("ethernet type %v length %d, want LLC length %d", eth.EthernetType, eth.Length, m.Len())
		}
		if llc.DSAP != 0x42 || llc.SSAP != 0x42 || llc.Control != 0x03 || llc.IG || llc.CR {
			t.Errorf("llc %+v", llc)
		}
		if m.Type == TypeTCN {
			if want := []byte{0, 0, 0, 0x80}; !bytes.Equal(llc.Payload, want) {
				t.Errorf("tcn payload %x, want %x", llc.Payload, want)
			}
			continue
		}
		s, _ := pkt.Layer(layers.LayerTypeSTP).(*layers.STP)
		if s == nil {
			t.Fatalf("message %d: no STP layer: %v", i, pkt)
		}
		got := BPDU{
			Type:              BPDUType(s.Type),
			Version:           s.Version,
			TopologyChange:    s.TC,
			TopologyChangeAck: s.TCA,
			RootID:            gopacketSwitchID(s.RouteID),
			RootPathCost:      s.Cost,
			BridgeID:          gopacketSwitchID(s.BridgeID),
			PortID:            PortID(s.PortID),
			MessageAge:        time.Duration(s.MessageAge) * time.Second / 256,
			MaxAge:            time.Duration(s.MaxAge) * time.Second / 256,
			HelloTime:         time.Duration(s.HelloTime) * time.Second / 256,
			ForwardDelay:      time.Duration(s.FDelay) * time.Second / 256,
		}
		if s.ProtocolID != 0 || got != m {
			t.Fatalf("message %d: gopacket reads\n%+v\nwant\n%+v", i, got, m)
		}
	}
}

func gopacketSwitchID(id layers.STPSwitchID) BridgeID {
	return NewBridgeID(id.Priority|id.SysID, [6]byte(id.HwAddr))
}

// TestDecodeGopacketFrame decodes a frame serialized by gopacket's Ethernet,
// LLC and STP layers.
func TestDecodeGopacketFrame(t *testing.T) {
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true},
		&layers.Ethernet{SrcMAC: mac2[:], DstMAC: GroupAddress[:], EthernetType: layers.EthernetTypeLLC},
		&layers.LLC{DSAP: 0x42, SSAP: 0x42, Control: 0x03},
		&layers.STP{
			TC:         true,
			RouteID:    layers.STPSwitchID{Priority: 0x8000, SysID: 1, HwAddr: mac1[:]},
			Cost:       19,
			BridgeID:   layers.STPSwitchID{Priority: 0x9000, HwAddr: mac2[:]},
			PortID:     0x8002,
			MessageAge: 0x0180, MaxAge: 0x1400, HelloTime: 0x0200, FDelay: 0x0f00,
		})
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeFrame(buf.Bytes())
	if err != nil {
		t.Fatalf("DecodeFrame(%x): %v", buf.Bytes(), err)
	}
	want := BPDU{
		Type: TypeConfig, TopologyChange: true,
		RootID: NewBridgeID(0x8001, mac1), RootPathCost: 19,
		BridgeID: NewBridgeID(0x9000, mac2), PortID: 0x8002,
		MessageAge: time.Second + time.Second/2, MaxAge: 20 * time.Second,
		HelloTime: 2 * time.Second, ForwardDelay: 15 * time.Second,
	}
	if got != want {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestDecodeVersionsAndTypes(t *testing.T) {
	config := unhex(t, "424203 0000 00 00 00 8000020000000001 00000000 8000020000000001 8001 0000 1400 0200 0f00")
	with := func(version, typ byte, extra ...byte) []byte {
		b := append([]byte(nil), config...)
		b[5], b[6] = version, typ
		return append(b, extra...)
	}
	tests := []struct {
		name     string
		data     []byte
		wantType BPDUType
		wantVer  uint8
		wantErr  error
	}{
		{"config v0", with(0, 0x00), TypeConfig, 0, nil},
		{"config v3 read as config", with(3, 0x00), TypeConfig, 3, nil},
		{"config with trailing bytes", with(0, 0x00, 1, 2, 3), TypeConfig, 0, nil},
		{"rst v2", with(2, 0x02, 0x00), TypeRST, 2, nil},
		{"mstp v3 read as rst", with(3, 0x02, 0x00, 0x40, 0x99), TypeRST, 3, nil},
		{"rst without version 1 length", with(2, 0x02), 0, 0, ErrTruncated},
		{"tcn v0", unhex(t, "424203 0000 00 80"), TypeTCN, 0, nil},
		{"tcn v2", unhex(t, "424203 0000 02 80"), TypeTCN, 2, nil},
		{"unknown type", with(0, 0x01), 0, 0, ErrUnknownType},
		{"unknown type 0xff", unhex(t, "424203 0000 00 ff"), 0, 0, ErrUnknownType},
		{"protocol id 1", unhex(t, "424203 0001 00 80"), 0, 0, ErrNotBPDU},
		{"snap llc", unhex(t, "aaaa03 0000 00 80"), 0, 0, ErrNotBPDU},
		{"llc control 0x13", unhex(t, "424213 0000 00 80"), 0, 0, ErrNotBPDU},
		{"llc ssap response bit", unhex(t, "424303 0000 00 80"), 0, 0, ErrNotBPDU},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(tt.data)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Decode(%x) error %v, want %v", tt.data, err, tt.wantErr)
			}
			if err != nil {
				if got != (BPDU{}) {
					t.Errorf("Decode returned %+v with an error", got)
				}
				return
			}
			if got.Type != tt.wantType || got.Version != tt.wantVer {
				t.Errorf("type %v version %d, want %v %d", got.Type, got.Version, tt.wantType, tt.wantVer)
			}
			if got.Type != TypeTCN && got.BridgeID != NewBridgeID(0x8000, mac1) {
				t.Errorf("bridge id %v", got.BridgeID)
			}
		})
	}
}

func TestDecodeTruncated(t *testing.T) {
	for _, tt := range []struct {
		name string
		full []byte
	}{
		{"config", unhex(t, "424203 0000 00 00 00 8000020000000001 00000000 8000020000000001 8001 0000 1400 0200 0f00")},
		{"rst", unhex(t, "424203 0000 02 02 3c 8000020000000001 00000000 8000020000000001 8001 0000 1400 0200 0f00 00")},
		{"tcn", unhex(t, "424203 0000 00 80")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode(tt.full); err != nil {
				t.Fatalf("full BPDU: %v", err)
			}
			for n := range len(tt.full) {
				if _, err := Decode(tt.full[:n]); !errors.Is(err, ErrTruncated) {
					t.Errorf("Decode of %d of %d bytes: %v, want ErrTruncated", n, len(tt.full), err)
				}
			}
		})
	}
}

func TestDecodeFrameMalformed(t *testing.T) {
	good := unhex(t, kernelHello)
	withLength := func(n uint16) []byte {
		f := append([]byte(nil), good...)
		f[12], f[13] = byte(n>>8), byte(n)
		return f
	}
	tests := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"empty", nil, ErrTruncated},
		{"short header", good[:13], ErrTruncated},
		{"header only", good[:14], ErrTruncated},
		{"cut in the bpdu", good[:14+37], ErrTruncated},
		{"unpadded is fine", good[:14+38], nil},
		{"length beyond frame", withLength(100), ErrTruncated},
		{"length too short for config", withLength(30), ErrTruncated},
		{"ethertype ipv4", withLength(0x0800), ErrNotBPDU},
		{"length 1501", withLength(1501), ErrNotBPDU},
		{"length 0", withLength(0), ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeFrame(tt.frame); !errors.Is(err, tt.want) {
				t.Fatalf("DecodeFrame: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestEncodeTimes(t *testing.T) {
	tests := []struct {
		in, want time.Duration
	}{
		{0, 0},
		{-time.Second, 0},
		{time.Second, time.Second},
		{time.Second + time.Millisecond, time.Second},              // rounds down
		{time.Second + 3*time.Millisecond, time.Second + timeUnit}, // rounds up
		{255 * time.Second, 255 * time.Second},
		{time.Hour, 0xFFFF * timeUnit}, // clamps
	}
	for _, tt := range tests {
		m := BPDU{Type: TypeConfig, MessageAge: tt.in, MaxAge: tt.in, HelloTime: tt.in, ForwardDelay: tt.in}
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got BPDU
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if got.MessageAge != tt.want || got.MaxAge != tt.want || got.HelloTime != tt.want || got.ForwardDelay != tt.want {
			t.Errorf("%v encodes to %+v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestEncodeUnknownType(t *testing.T) {
	m := BPDU{Type: 0x42}
	if _, err := m.MarshalBinary(); !errors.Is(err, ErrUnknownType) {
		t.Errorf("MarshalBinary: %v", err)
	}
	if b, err := AppendFrame([]byte{1}, mac1, m); !errors.Is(err, ErrUnknownType) || len(b) != 1 {
		t.Errorf("AppendFrame: %x, %v", b, err)
	}
}

func TestRoundTrip(t *testing.T) {
	msgs := []BPDU{
		{Type: TypeTCN},
		{Type: TypeTCN, Version: 7},
		{Type: TypeConfig},
		{
			Type: TypeConfig, TopologyChange: true,
			RootID: ^BridgeID(0), RootPathCost: ^uint32(0), BridgeID: 1, PortID: 0xffff,
			MessageAge: timeUnit, MaxAge: 0xffff * timeUnit, HelloTime: 10 * time.Second, ForwardDelay: 30 * time.Second,
		},
		{Type: TypeRST, Version: 2, TopologyChangeAck: true, RootID: NewBridgeID(1, mac2), PortID: 0x8001},
	}
	for _, m := range msgs {
		b, err := m.AppendBinary([]byte("prefix"))
		if err != nil {
			t.Fatal(err)
		}
		if string(b[:6]) != "prefix" || len(b)-6 != m.Len() {
			t.Fatalf("AppendBinary wrote %d bytes after the prefix, want %d", len(b)-6, m.Len())
		}
		got, err := Decode(b[6:])
		if err != nil || got != m {
			t.Errorf("round trip of %+v: %+v, %v", m, got, err)
		}
	}
}

func TestBridgeIDAndPortID(t *testing.T) {
	mac := [6]byte{0x00, 0x1c, 0x0e, 0x87, 0x78, 0x00}
	id := NewBridgeID(0x8064, mac)
	if id.Priority() != 0x8064 || id.MAC() != mac || id.String() != "8064.001c0e877800" {
		t.Errorf("bridge id %v: priority %#x mac %x", id, id.Priority(), id.MAC())
	}
	if NewBridgeID(0x1000, [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) >= NewBridgeID(0x2000, [6]byte{}) {
		t.Error("priority does not dominate the address")
	}
	for _, tt := range []struct {
		prio uint8
		no   PortNo
		want PortID
	}{
		{128, 1, 0x8001},
		{0, 1, 0x0001},
		{240, 0xfff, 0xffff},
		{16, 0x123, 0x1123},
		{0x9f, 2, 0x9002}, // low priority bits dropped
		{128, 0x1001, 0x8001},
	} {
		id := NewPortID(tt.prio, tt.no)
		if id != tt.want || id.Priority() != tt.prio&0xf0 || id.No() != tt.no&MaxPortNo {
			t.Errorf("NewPortID(%d, %d) = %v (priority %d, no %d), want %v", tt.prio, tt.no, id, id.Priority(), id.No(), tt.want)
		}
	}
	if s := PortID(0x8001).String(); s != "8001" {
		t.Errorf("PortID string %q", s)
	}
}

func mustAdd(t testing.TB, b *Bridge, no PortNo, cfg PortConfig, now time.Time) []Action {
	t.Helper()
	acts, err := b.AddPort(no, cfg, now)
	if err != nil {
		t.Fatalf("AddPort(%d): %v", no, err)
	}
	return acts
}

// TestCodecAllocs: decoding allocates nothing, even for malformed input, and
// encoding into a buffer with room allocates nothing.
func TestCodecAllocs(t *testing.T) {
	frame := unhex(t, kernelHello)
	bad := frame[:20]
	buf := make([]byte, 0, 128)
	var sink BPDU
	allocs := testing.AllocsPerRun(100, func() {
		m, _ := DecodeFrame(frame)
		_, _ = DecodeFrame(bad)
		b, _ := AppendFrame(buf[:0], mac1, m)
		sink, _ = Decode(b[EthernetHeaderLen:])
	})
	if allocs != 0 {
		t.Errorf("%v allocations per decode and encode", allocs)
	}
	_ = sink
}
