package stp

import (
	"testing"
)

// FuzzDecodeBPDU feeds arbitrary bytes to Decode and DecodeFrame: they never
// panic, and whatever they accept encodes and decodes back to itself, RST
// flags included. The seeds are in testdata/fuzz/FuzzDecodeBPDU (config, RST
// with each role and handshake flag, MSTP, TCN).
func FuzzDecodeBPDU(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		if m, err := Decode(data); err == nil {
			b, err := m.AppendBinary(nil)
			if err != nil {
				t.Fatalf("decoded %+v does not encode: %v", m, err)
			}
			if len(b) != m.Len() {
				t.Fatalf("encoded %d bytes, Len says %d", len(b), m.Len())
			}
			m2, err := Decode(b)
			if err != nil || m2 != m {
				t.Fatalf("round trip of %x: %+v, then %+v, %v", data, m, m2, err)
			}
		}
		if m, err := DecodeFrame(data); err == nil {
			frame, err := AppendFrame(nil, mac1, m)
			if err != nil {
				t.Fatalf("decoded %+v does not encode: %v", m, err)
			}
			m2, err := DecodeFrame(frame)
			if err != nil || m2 != m {
				t.Fatalf("frame round trip of %x: %+v, then %+v, %v", data, m, m2, err)
			}
		}
		// A bridge of either protocol takes anything decoded without a fuss.
		if m, err := Decode(data); err == nil {
			for _, proto := range []Protocol{ProtocolSTP, ProtocolRSTP} {
				cfg := DefaultConfig(mac2)
				cfg.Protocol = proto
				b, _ := New(cfg, labEpoch)
				b.AddPort(1, DefaultPortConfig(), labEpoch)
				b.AddPort(2, PortConfig{Priority: DefaultPortPriority, Edge: true}, labEpoch)
				b.Enable(1, labEpoch)
				b.Enable(2, labEpoch)
				b.Receive(1, m, labEpoch)
				b.Receive(2, m, labEpoch)
				b.Tick(labEpoch.Add(DefaultMaxAge))
			}
		}
	})
}
