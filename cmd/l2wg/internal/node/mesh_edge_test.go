package node

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/l2wg/l2wg/bridge"
)

// TestRARPAnnounce: the frame a new forwarder sends for a remote address
// is QEMU's self-announce: broadcast from the address, RARP reverse
// request naming it, tagged when the address was learned in a VLAN.
func TestRARPAnnounce(t *testing.T) {
	mac := bridge.MAC{0x52, 0x54, 0, 1, 2, 3}
	for _, vid := range []uint16{0, 42} {
		f := rarpAnnounce(vid, mac)
		if len(f) < 60 {
			t.Fatalf("vid %d: %d bytes, under the Ethernet minimum", vid, len(f))
		}
		eth := bridge.Ethernet(f)
		if eth.Dst() != (bridge.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) || eth.Src() != mac {
			t.Fatalf("vid %d: addresses % x", vid, f[:12])
		}
		got, ok := eth.VLAN()
		if !ok || got != vid {
			t.Fatalf("vid %d: frame's VLAN %d, %v", vid, got, ok)
		}
		p := f[14:]
		if vid != 0 {
			p = f[18:]
		}
		if et := binary.BigEndian.Uint16(f[len(f)-len(p)-2:]); et != 0x8035 {
			t.Fatalf("vid %d: EtherType %#x, want RARP", vid, et)
		}
		if op := binary.BigEndian.Uint16(p[6:]); op != 3 || !bytes.Equal(p[8:14], mac[:]) || !bytes.Equal(p[18:24], mac[:]) {
			t.Fatalf("vid %d: RARP body % x", vid, p[:28])
		}
	}
}
