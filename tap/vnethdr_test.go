package tap

import "testing"

func TestVNetHdr(t *testing.T) {
	var h VNetHdr
	if h.NeedsCsum() || h.IsGSO() {
		t.Error("zero header asks for work")
	}
	h.SetFlags(FlagNeedsCsum)
	h.SetGSOType(GSOTCPv6 | GSOECN)
	h.SetHdrLen(0x0102)
	h.SetGSOSize(1448)
	h.SetCsumStart(54)
	h.SetCsumOffset(16)
	// struct virtio_net_hdr, little endian.
	want := VNetHdr{1, 0x84, 0x02, 0x01, 0xa8, 0x05, 54, 0, 16, 0}
	if h != want {
		t.Errorf("header bytes % x, want % x", h[:], want[:])
	}
	if h.Flags() != FlagNeedsCsum || h.GSOType() != GSOTCPv6|GSOECN || h.HdrLen() != 0x0102 ||
		h.GSOSize() != 1448 || h.CsumStart() != 54 || h.CsumOffset() != 16 || !h.NeedsCsum() || !h.IsGSO() {
		t.Errorf("accessors disagree with the setters: %x", h[:])
	}
	h.SetGSOType(GSOECN) // ECN alone is no GSO type
	if h.IsGSO() {
		t.Error("IsGSO with only the ECN bit")
	}
	if a := testing.AllocsPerRun(100, func() { _ = h.GSOSize() + h.CsumStart() }); a != 0 {
		t.Errorf("accessors allocate %v", a)
	}
}
