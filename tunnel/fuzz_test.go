package tunnel

import (
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/device"

	"github.com/l2wg/l2wg/frag"
)

// FuzzReceive feeds arbitrary decrypted packets to the receive path: the
// label header, probes and chunks. Nothing panics; whatever reaches the
// switch is a frame within the limits.
func FuzzReceive(f *testing.F) {
	tn, p, sw := receiver(f)
	var pkt [labelHeaderLen + probeLen]byte
	putLabelHeader(pkt[:], p.label, tn.self, len(pkt))
	var probe [probeLen]byte
	putProbe(&probe, probeRequest, 1, time.Now().UnixNano())
	copy(pkt[labelHeaderLen:], probe[:])
	f.Add(pkt[:])
	whole := append(append([]byte(nil), pkt[:labelHeaderLen]...), 0x10, 0, 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 8, 0)
	putLabelHeader(whole, p.label, tn.self, len(whole))
	f.Add(whole)
	f.Add([]byte{0x45})
	f.Fuzz(func(t *testing.T, data []byte) {
		buf := make([]byte, device.MessageTransportOffsetContent+len(data))
		copy(buf[device.MessageTransportOffsetContent:], data)
		// Half the inputs get a valid header from the configured peer, so
		// the fuzzer reaches the chunk and probe decoders.
		if len(data) >= labelHeaderLen && data[0]&1 == 1 {
			putLabelHeader(buf[device.MessageTransportOffsetContent:], p.label, tn.self, len(data))
		}
		tn.receive([][]byte{buf}, device.MessageTransportOffsetContent)
		if sw.bad > 0 {
			t.Fatalf("%d frames outside %d..%d bytes reached the switch", sw.bad, frag.MinFrameLen, frag.MaxFrameLen)
		}
	})
}
