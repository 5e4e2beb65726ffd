package stp

import (
	"testing"
	"time"
)

// TestRSTFlags: the flags octet of an RST BPDU (802.1D-2004 9.3.3), bit by
// bit; a config BPDU keeps only TC and TCA.
func TestRSTFlags(t *testing.T) {
	tests := []struct {
		name  string
		flags byte
		want  BPDU
	}{
		{"tc", 0x01, BPDU{TopologyChange: true}},
		{"proposal", 0x02, BPDU{Proposal: true}},
		{"role alternate/backup", 0x04, BPDU{Role: BPDURoleAlternate}},
		{"role root", 0x08, BPDU{Role: BPDURoleRoot}},
		{"role designated", 0x0C, BPDU{Role: BPDURoleDesignated}},
		{"learning", 0x10, BPDU{Learning: true}},
		{"forwarding", 0x20, BPDU{Forwarding: true}},
		{"agreement", 0x40, BPDU{Agreement: true}},
		{"tca", 0x80, BPDU{TopologyChangeAck: true}},
		{"all", 0xFF, BPDU{TopologyChange: true, Proposal: true, Role: BPDURoleDesignated, Learning: true,
			Forwarding: true, Agreement: true, TopologyChangeAck: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rst := unhex(t, "424203 0000 02 02 00 8000020000000001 00000000 8000020000000001 8001 0000 1400 0200 0f00 00")
			rst[7] = tt.flags
			got, err := Decode(rst)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			want.Type, want.Version = TypeRST, 2
			want.RootID, want.BridgeID, want.PortID = NewBridgeID(0x8000, mac1), NewBridgeID(0x8000, mac1), 0x8001
			want.MaxAge, want.HelloTime, want.ForwardDelay = 20*time.Second, 2*time.Second, 15*time.Second
			if got != want {
				t.Errorf("decoded %+v\nwant    %+v", got, want)
			}
			b, err := got.MarshalBinary()
			if err != nil || string(b) != string(rst) {
				t.Errorf("encoded %x, want %x (%v)", b, rst, err)
			}
			cfg := append([]byte(nil), rst[:LLCHeaderLen+ConfigBPDULen]...)
			cfg[5], cfg[6] = 0, 0
			got, _ = Decode(cfg)
			if got.Proposal || got.Role != 0 || got.Learning || got.Forwarding || got.Agreement ||
				got.TopologyChange != tt.want.TopologyChange || got.TopologyChangeAck != tt.want.TopologyChangeAck {
				t.Errorf("config BPDU with flags %#x: %+v", tt.flags, got)
			}
		})
	}
}

// TestRSTPReceiveOddities: what an RSTP bridge discards.
func TestRSTPReceiveOddities(t *testing.T) {
	cfg := DefaultConfig(mac2)
	cfg.Protocol = ProtocolRSTP
	b, err := New(cfg, labEpoch)
	if err != nil {
		t.Fatal(err)
	}
	mustAdd(t, b, 1, DefaultPortConfig(), labEpoch)
	mustAdd(t, b, 2, DefaultPortConfig(), labEpoch) // stays disabled
	b.Enable(1, labEpoch)
	superior := BPDU{Type: TypeRST, Version: 2, Role: BPDURoleDesignated, RootID: NewBridgeID(0, mac1), BridgeID: NewBridgeID(0, mac1),
		PortID: 0x8001, MaxAge: DefaultMaxAge, HelloTime: DefaultHelloTime, ForwardDelay: DefaultForwardDelay}
	own := superior
	own.RootID, own.BridgeID, own.PortID = b.Status().BridgeID, b.Status().BridgeID, NewPortID(DefaultPortPriority, 1)
	aged := superior
	aged.Type, aged.Version, aged.MessageAge = TypeConfig, 0, DefaultMaxAge
	v1 := superior
	v1.Version = 1
	for _, tt := range []struct {
		name string
		port PortNo
		m    BPDU
	}{
		{"rst of version 1", 1, v1},
		{"aged config", 1, aged},
		{"own BPDU looped back", 1, own},
		{"on a disabled port", 2, superior},
	} {
		before, _ := statusPort(b, tt.port)
		b.Receive(tt.port, tt.m, labEpoch)
		after, _ := statusPort(b, tt.port)
		if after.Counters.Discarded != before.Counters.Discarded+1 {
			t.Errorf("%s: not discarded", tt.name)
		}
	}
	if !b.Status().IsRoot() {
		t.Error("discarded BPDUs changed the root")
	}
	b.Receive(1, superior, labEpoch)
	if st := b.Status(); st.RootID != superior.RootID || st.RootPort != 1 {
		t.Errorf("root %v port %d after a superior BPDU", st.RootID, st.RootPort)
	}
	if _, err := New(Config{MAC: mac1, Protocol: 7}, labEpoch); err == nil {
		t.Error("protocol 7 accepted")
	}
	for _, s := range []string{"stp", "rstp"} {
		if p, err := ParseProtocol(s); err != nil || p.String() != s {
			t.Errorf("ParseProtocol(%q) = %v, %v", s, p, err)
		}
	}
	if _, err := ParseProtocol("mstp"); err == nil {
		t.Error("mstp parsed")
	}
}
