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
// stream: same ID, offsets that tile it, the same payload size for all but
// the last (the stream spread evenly over the fewest fragments).
func TestSplitFragments(t *testing.T) {
	off := [OffloadLen]byte{0xa, 0xb, 0xc, 0xd, 0xe, 0xf, 1, 2, 3, 4}
	frame := randomBytes(1, MaxFrameLen)
	stream := append(off[:], frame...)
	s := NewSplitter()
	c := s.Split(&off, frame, 576)
	// The fewest fragments of 576 bytes at most, the stream spread evenly.
	per := (len(stream) + c.Count() - 1) / c.Count()
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
		case c.Remaining() > 0 && n != FragHeaderLen+per:
			t.Fatalf("chunk %d of %d: %d bytes, want %d", i, c.Count(), n, FragHeaderLen+per)
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
