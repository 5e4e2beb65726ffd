package frag

import (
	"bytes"
	"slices"
	"testing"
)

func TestHeaderRoundTrip(t *testing.T) {
	tests := []fragHeader{
		{flags: FlagFrag, id: 0, offset: 0, total: MinFrameLen},
		{flags: FlagFrag | FlagOffload, id: 0xdeadbeef, offset: 0x123456, total: 0xfedcba},
		{flags: FlagFrag, id: 0xffffffff, offset: MaxStreamLen - 1, total: MaxStreamLen},
	}
	for _, h := range tests {
		b := make([]byte, FragHeaderLen)
		putFragHeader(b, h.flags, h.id, h.offset, h.total)
		if b[0] != Version<<4|h.flags || b[1] != TypeEthernet {
			t.Errorf("%+v: common header % x", h, b[:2])
		}
		if got := parseFragHeader(b); got != h {
			t.Errorf("parse(put(%+v)) = %+v", h, got)
		}
	}
}

func TestHeaderBytes(t *testing.T) {
	b := make([]byte, FragHeaderLen)
	putFragHeader(b, FlagFrag|FlagOffload, 0x01020304, 0x050607, 0x08090a)
	want := []byte{0x13, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if !bytes.Equal(b, want) {
		t.Errorf("header % x, want % x", b, want)
	}
}

func TestSplit(t *testing.T) {
	off := &[OffloadLen]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	tests := []struct {
		name       string
		offload    *[OffloadLen]byte
		frameLen   int
		maxChunk   int
		wantCount  int
		wantFrag   bool
		wantLens   []int
		wantFlags0 byte
	}{
		{"too short", nil, MinFrameLen - 1, 1420, 0, false, nil, 0},
		{"too long", nil, MaxFrameLen + 1, 1420, 0, false, nil, 0},
		{"shortest", nil, MinFrameLen, 1420, 1, false, []int{2 + 14}, 0x10},
		{"fits exactly", nil, 1418, 1420, 1, false, []int{1420}, 0x10},
		{"one byte over", nil, 1419, 1420, 2, true, []int{12 + 710, 12 + 709}, 0x11},
		{"zero offload is none", &[OffloadLen]byte{}, 1418, 1420, 1, false, []int{1420}, 0x10},
		{"offload fits exactly", off, 1408, 1420, 1, false, []int{1420}, 0x12},
		{"offload one over", off, 1409, 1420, 2, true, []int{12 + 710, 12 + 709}, 0x13},
		{"1514 at 1392", nil, 1514, 1392, 2, true, []int{12 + 757, 12 + 757}, 0x11},
		{"superframe at 1392", nil, MaxFrameLen, 1392, 48, true, nil, 0x11},
		{"whole below MinChunk", nil, 60, 62, 1, false, []int{62}, 0x10},
		{"fragments below MinChunk", nil, 100, MinChunk - 1, 0, false, nil, 0},
		{"fragments at MinChunk", nil, 100, MinChunk, 2, true, []int{MinChunk, 12 + 36}, 0x11},
		{"no fragment but the last under MinFragmentPayload", nil, 75, MinChunk, 2, true, []int{MinChunk, 12 + 11}, 0x11},
	}
	s := NewSplitter()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame := randomBytes(uint64(tt.frameLen), tt.frameLen)
			c := s.Split(tt.offload, frame, tt.maxChunk)
			if c.Count() != tt.wantCount || c.Remaining() != tt.wantCount || c.Fragmented() != tt.wantFrag {
				t.Fatalf("Count %d Remaining %d Fragmented %v, want %d, %v", c.Count(), c.Remaining(), c.Fragmented(), tt.wantCount, tt.wantFrag)
			}
			buf := make([]byte, max(tt.maxChunk, 0))
			var lens []int
			for n := c.Next(buf); n > 0; n = c.Next(buf) {
				if len(lens) == 0 && buf[0] != tt.wantFlags0 {
					t.Errorf("byte 0 %#x, want %#x", buf[0], tt.wantFlags0)
				}
				if n > tt.maxChunk {
					t.Errorf("chunk %d: %d bytes, over %d", len(lens), n, tt.maxChunk)
				}
				lens = append(lens, n)
				if c.Remaining() != tt.wantCount-len(lens) {
					t.Errorf("Remaining %d after %d chunks", c.Remaining(), len(lens))
				}
			}
			if len(lens) != tt.wantCount {
				t.Errorf("%d chunks, want %d", len(lens), tt.wantCount)
			}
			if tt.wantLens != nil && !slices.Equal(lens, tt.wantLens) {
				t.Errorf("chunk lengths %v, want %v", lens, tt.wantLens)
			}
			if c.Next(buf) != 0 {
				t.Error("Next after the end wrote a chunk")
			}
		})
	}
}

// TestSplitFragments checks every fragment's header and payload against the
// stream: same ID, offsets that tile it, payload sizes one byte apart at
// most, the longer first (the stream spread evenly over the fewest
// fragments).
func TestSplitFragments(t *testing.T) {
	off := [OffloadLen]byte{0xa, 0xb, 0xc, 0xd, 0xe, 0xf, 1, 2, 3, 4}
	frame := randomBytes(1, MaxFrameLen)
	stream := append(off[:], frame...)
	s := NewSplitter()
	c := s.Split(&off, frame, 576)
	// The fewest fragments of 576 bytes at most, the stream spread evenly.
	per, long := len(stream)/c.Count(), len(stream)%c.Count()
	if largest := 576 - FragHeaderLen; c.Count() != (len(stream)+largest-1)/largest {
		t.Fatalf("%d fragments, want %d", c.Count(), (len(stream)+largest-1)/largest)
	}
	buf := make([]byte, 576)
	next := 0
	for i := 0; ; i++ {
		n := c.Next(buf)
		if n == 0 {
			break
		}
		h := parseFragHeader(buf)
		payload := buf[FragHeaderLen:n]
		switch {
		case buf[0] != Version<<4|FlagFrag|FlagOffload || buf[1] != TypeEthernet:
			t.Fatalf("chunk %d: header % x", i, buf[:2])
		case h.id != c.ID():
			t.Fatalf("chunk %d: ID %#x, want %#x", i, h.id, c.ID())
		case h.offset != next || h.total != len(stream):
			t.Fatalf("chunk %d: offset %d total %d, want %d %d", i, h.offset, h.total, next, len(stream))
		case i < long && n != FragHeaderLen+per+1, i >= long && n != FragHeaderLen+per:
			t.Fatalf("chunk %d of %d (%d long): %d bytes, want %d or %d", i, c.Count(), long, n, FragHeaderLen+per+1, FragHeaderLen+per)
		case !bytes.Equal(payload, stream[h.offset:h.offset+len(payload)]):
			t.Fatalf("chunk %d: payload differs from the stream", i)
		}
		next += len(payload)
	}
	if next != len(stream) {
		t.Errorf("fragments cover %d bytes, want %d", next, len(stream))
	}
}

func TestSplitterIDs(t *testing.T) {
	s := NewSplitter()
	frame := make([]byte, 2000)
	a := s.Split(nil, frame, 1420)
	w := s.Split(nil, frame[:100], 1420)
	b := s.Split(nil, frame, 1420)
	if b.ID() != a.ID()+1 {
		t.Errorf("IDs %#x then %#x: a whole frame in between took one", a.ID(), b.ID())
	}
	if w.ID() != 0 || w.Fragmented() {
		t.Errorf("whole frame: ID %#x, fragmented %v", w.ID(), w.Fragmented())
	}
}

func TestChunksCopy(t *testing.T) {
	frame := randomBytes(2, 5000)
	c := NewSplitter().Split(nil, frame, 1420)
	d := c // a copy iterates on its own
	b1, b2 := make([]byte, 1420), make([]byte, 1420)
	for {
		n1, n2 := c.Next(b1), d.Next(b2)
		if n1 != n2 || !bytes.Equal(b1[:n1], b2[:n2]) {
			t.Fatalf("copies differ: %d and %d bytes", n1, n2)
		}
		if n1 == 0 {
			break
		}
	}
}

// wireLen is the UDP payload a chunk of n bytes becomes in l2wg's default
// tunnel: behind the 20-byte label header, padded by WireGuard to a multiple
// of 16 but not beyond the tunnel MTU of 1420, plus WireGuard's 32 bytes.
func wireLen(n int) int {
	const label, mtu, overhead = 20, 1420, 32
	return min((label+n+15)&^15, mtu) + overhead
}

// TestSplitEqualOnTheWire: the fragments of a TCP superframe (45 segments
// of 1448 bytes, 65,226 bytes of frame, with its offload header) are all of
// one size on the wire, with the shortest-path mesh's 10-byte header in
// front too, so that UDP GSO sends and GRO coalesces them in runs that go
// on into the next superframe. With a short last fragment the mesh's
// superframe went as 47 datagrams of 1424 bytes and one of 1392.
func TestSplitEqualOnTheWire(t *testing.T) {
	off := &[OffloadLen]byte{1}
	const chunk = 1400 // the default tunnel MTU 1420 minus the label header
	for _, tt := range []struct {
		name       string
		frameLen   int
		wantCount  int
		wantOnWire int
	}{
		{"spanning tree", 65226, 47, 1452},
		{"mesh header", 65226 + 10, 48, 1424},
		{"largest frame", MaxFrameLen, 48, 1440},
		{"1514 bytes", 1514, 2, 832},
	} {
		c := NewSplitter().Split(off, make([]byte, tt.frameLen), chunk)
		buf := make([]byte, chunk)
		var sizes []int
		for n := c.Next(buf); n > 0; n = c.Next(buf) {
			sizes = append(sizes, wireLen(n))
		}
		if len(sizes) != tt.wantCount {
			t.Errorf("%s: %d datagrams, want %d", tt.name, len(sizes), tt.wantCount)
		}
		for i, n := range sizes {
			if n != tt.wantOnWire {
				t.Errorf("%s: datagram %d of %d: %d bytes on the wire, want %d", tt.name, i, len(sizes), n, tt.wantOnWire)
			}
		}
	}
}

// TestSplitOneStepOnTheWire: whatever the length, a frame's datagrams have
// at most two sizes on the wire, the longer first, so a frame ends a GSO
// run at most once (the kernel takes a run of one size whose last may be
// shorter).
func TestSplitOneStepOnTheWire(t *testing.T) {
	s := NewSplitter()
	buf := make([]byte, 1400)
	frame := make([]byte, MaxFrameLen)
	for n := 1399; n <= MaxFrameLen; n += 7 {
		c := s.Split(nil, frame[:n], len(buf))
		first, steps, prev := 0, 0, 0
		for m := c.Next(buf); m > 0; m = c.Next(buf) {
			w := wireLen(m)
			switch {
			case first == 0:
				first = w
			case w > prev:
				t.Fatalf("frame of %d bytes: a datagram of %d after one of %d", n, w, prev)
			case w < prev:
				steps++
			}
			prev = w
		}
		if steps > 1 {
			t.Fatalf("frame of %d bytes: %d size steps on the wire", n, steps)
		}
	}
}
