package bridge

import (
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

func TestParseMAC(t *testing.T) {
	tests := []struct {
		in      string
		want    MAC
		wantErr bool
	}{
		{in: "aa:bb:cc:dd:ee:ff", want: MAC{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}},
		{in: "AA-BB-CC-DD-EE-0F", want: MAC{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0f}},
		{in: "01:80:c2:00:00:00", want: MAC{0x01, 0x80, 0xc2}},
		{in: "", wantErr: true},
		{in: "aa:bb:cc:dd:ee", wantErr: true},
		{in: "aa:bb:cc:dd:ee:ff:00", wantErr: true},
		{in: "aa:bb-cc:dd:ee:ff", wantErr: true},
		{in: "aa.bb.cc.dd.ee.ff", wantErr: true},
		{in: "aa:bb:cc:dd:ee:fg", wantErr: true},
		{in: "aabb:ccdd:eeff:00", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseMAC(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseMAC(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
			if err == nil {
				if s := got.String(); s != net.HardwareAddr(got[:]).String() {
					t.Errorf("String() = %q, want %q", s, net.HardwareAddr(got[:]).String())
				}
			}
		})
	}
}

func TestMACPredicates(t *testing.T) {
	tests := []struct {
		mac                                  MAC
		multicast, broadcast, zero, reserved bool
	}{
		{mac: host(1)},
		{mac: MAC{}, zero: true},
		{mac: Broadcast, multicast: true, broadcast: true},
		{mac: MAC{0x01, 0x00, 0x5e, 0, 0, 0xfb}, multicast: true},
		{mac: MAC{0x33, 0x33, 0, 0, 0, 1}, multicast: true},
		{mac: MAC{0x01, 0x80, 0xc2, 0, 0, 0}, multicast: true, reserved: true},
		{mac: MAC{0x01, 0x80, 0xc2, 0, 0, 0x0f}, multicast: true, reserved: true},
		{mac: MAC{0x01, 0x80, 0xc2, 0, 0, 0x10}, multicast: true},
		{mac: MAC{0x01, 0x80, 0xc2, 0, 1, 0}, multicast: true},
	}
	for _, tt := range tests {
		t.Run(tt.mac.String(), func(t *testing.T) {
			if got := tt.mac.IsMulticast(); got != tt.multicast {
				t.Errorf("IsMulticast() = %v", got)
			}
			if got := tt.mac.IsBroadcast(); got != tt.broadcast {
				t.Errorf("IsBroadcast() = %v", got)
			}
			if got := tt.mac.IsZero(); got != tt.zero {
				t.Errorf("IsZero() = %v", got)
			}
			if got := tt.mac.isReservedGroup(); got != tt.reserved {
				t.Errorf("isReservedGroup() = %v", got)
			}
		})
	}
}

// TestEthernet checks the header accessors against gopacket's decoder.
func TestEthernet(t *testing.T) {
	frames := map[string][]byte{
		"udp":    udpFrame(t, host(1), host(2), "x"),
		"arp":    arpRequest(t, host(3), 0),
		"tagged": taggedUDPFrame(t, host(4), host(5), 42, 0),
		"llc":    llcFrame(t, host(6), MAC{0x01, 0x80, 0xc2}),
	}
	for name, f := range frames {
		t.Run(name, func(t *testing.T) {
			eth := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default).Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			if got := Dst(f); got != MAC(eth.DstMAC) {
				t.Errorf("Dst = %v, want %v", got, eth.DstMAC)
			}
			if got := Src(f); got != MAC(eth.SrcMAC) {
				t.Errorf("Src = %v, want %v", got, eth.SrcMAC)
			}
			want := uint16(eth.EthernetType)
			if eth.EthernetType == layers.EthernetTypeLLC {
				want = eth.Length
			}
			if got := EtherType(f); got != want {
				t.Errorf("EtherType = %#04x, want %#04x", got, want)
			}
		})
	}
	if n := testing.AllocsPerRun(100, func() {
		f := frames["udp"]
		_, _, _ = Dst(f), Src(f), EtherType(f)
	}); n != 0 {
		t.Errorf("header accessors allocate %v times", n)
	}
}

func TestDropReasonString(t *testing.T) {
	for r := range DropReason(numDropReasons) {
		if r.String() == "unknown" || r.String() == "" {
			t.Errorf("DropReason(%d) has no name", r)
		}
	}
	if got := DropReason(numDropReasons).String(); got != "unknown" {
		t.Errorf("out of range DropReason = %q", got)
	}
}
