package frag

import (
	"bytes"
	"encoding/binary"
	"testing"
)

type packIn struct {
	offload [OffloadLen]byte
	frame   []byte
}

// pack packs frames into one chunk of at most maxChunk bytes and returns it
// with the number of frames that fitted.
func pack(t testing.TB, frames []packIn, maxChunk int) ([]byte, int) {
	buf := make([]byte, maxChunk)
	p := NewPacker(buf)
	for i := range frames {
		if !p.Add(&frames[i].offload, frames[i].frame) {
			break
		}
	}
	return buf[:p.Len()], p.Frames()
}

func TestPackRoundTrip(t *testing.T) {
	var in []packIn
	for i := range 40 {
		f := packIn{frame: randomBytes(uint64(i), 14+i*3)}
		if i%3 == 0 {
			f.offload = [OffloadLen]byte{1, 0, 0, 0, 0, 0, 34, 0, 6, byte(i)}
		}
		in = append(in, f)
	}
	chunk, n := pack(t, in, 1400)
	want := 0
	size := PackedHeaderLen
	for _, f := range in {
		if size+PackedLen(&f.offload, f.frame) > 1400 {
			break
		}
		size += PackedLen(&f.offload, f.frame)
		want++
	}
	if n != want || len(chunk) != size {
		t.Fatalf("packed %d frames in %d bytes, want %d in %d", n, len(chunk), want, size)
	}
	if !IsPacked(chunk) {
		t.Fatal("IsPacked false")
	}
	r := NewReassembler(Config{})
	p, ok := r.Unpack(1, chunk)
	if !ok {
		t.Fatal("Unpack refused a packed chunk")
	}
	for i := range n {
		f, ok := p.Next()
		if !ok {
			t.Fatalf("frame %d of %d missing", i, n)
		}
		if !bytes.Equal(f.Data, in[i].frame) || f.Offload != in[i].offload {
			t.Fatalf("frame %d: %d bytes, offload %x; want %d bytes, offload %x", i, len(f.Data), f.Offload, len(in[i].frame), in[i].offload)
		}
	}
	if _, ok := p.Next(); ok {
		t.Error("a frame after the last")
	}
	if st := r.Stats(); st.Packed != 1 || st.PackedFrames != uint64(n) || st.Malformed != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestPackerLimits(t *testing.T) {
	buf := make([]byte, 65535)
	p := NewPacker(buf)
	small := make([]byte, MinFrameLen)
	for range MaxPackedFrames {
		if !p.Add(nil, small) {
			t.Fatal("refused a frame below MaxPackedFrames")
		}
	}
	if p.Add(nil, small) {
		t.Errorf("took frame %d, over MaxPackedFrames", MaxPackedFrames+1)
	}
	p = NewPacker(make([]byte, 40))
	if p.Add(nil, make([]byte, MinFrameLen-1)) {
		t.Error("took a frame shorter than MinFrameLen")
	}
	if !p.Add(nil, small) || p.Add(nil, make([]byte, 40-PackedHeaderLen-PackEntryLen-MinFrameLen-PackEntryLen+1)) {
		t.Error("wrong fit at the end of the buffer")
	}
	if p.Len() != PackedHeaderLen+PackEntryLen+MinFrameLen {
		t.Errorf("Len %d after a refused frame", p.Len())
	}
}

// packedBytes builds a packed chunk from raw entry words and stream lengths.
func packedBytes(entries ...[2]int) []byte {
	b := []byte{Version << 4, TypePacked}
	for _, e := range entries {
		b = binary.BigEndian.AppendUint16(b, uint16(e[0]))
		b = append(b, make([]byte, e[1])...)
	}
	return b
}

func TestUnpackMalformed(t *testing.T) {
	many := make([][2]int, MaxPackedFrames+1)
	for i := range many {
		many[i] = [2]int{MinFrameLen, MinFrameLen}
	}
	for _, c := range []struct {
		name  string
		chunk []byte
	}{
		{"no frame", packedBytes()},
		{"length past the end", packedBytes([2]int{100, 99})},
		{"second past the end", packedBytes([2]int{20, 20}, [2]int{20, 19})},
		{"zero length", packedBytes([2]int{0, 0})},
		{"shorter than a frame", packedBytes([2]int{MinFrameLen - 1, MinFrameLen - 1})},
		{"offload but no frame", packedBytes([2]int{packOffloadBit | (OffloadLen + MinFrameLen - 1), OffloadLen + MinFrameLen - 1})},
		{"one byte left", append(packedBytes([2]int{20, 20}), 0)},
		{"too many frames", packedBytes(many...)},
		{"flags set", append([]byte{Version<<4 | FlagOffload, TypePacked}, packedBytes([2]int{20, 20})[2:]...)},
		{"header only", []byte{Version << 4, TypePacked}},
	} {
		r := NewReassembler(Config{})
		if _, ok := r.Unpack(1, c.chunk); ok {
			t.Errorf("%s: accepted", c.name)
		}
		if st := r.Stats(); st.Malformed != 1 || st.Packed != 0 || st.PackedFrames != 0 {
			t.Errorf("%s: stats %+v, want one malformed", c.name, st)
		}
	}
	// At the limits: MaxPackedFrames frames; the longest stream.
	r := NewReassembler(Config{})
	if _, ok := r.Unpack(1, packedBytes(many[:MaxPackedFrames]...)); !ok {
		t.Error("refused MaxPackedFrames frames")
	}
	if _, ok := r.Unpack(1, packedBytes([2]int{maxPackedLen, maxPackedLen})); !ok {
		t.Error("refused the longest stream")
	}
	// An older node's Add counts a packed chunk as of unknown type.
	chunk, _ := pack(t, []packIn{{frame: make([]byte, 60)}}, 1400)
	if _, ok := r.Add(1, chunk, t0); ok || r.Stats().UnknownType != 1 {
		t.Errorf("Add of a packed chunk: %+v", r.Stats())
	}
}

// FuzzUnpack: any input is accepted whole or dropped whole and counted;
// the frames it yields are in bounds and as many as it counted.
func FuzzUnpack(f *testing.F) {
	chunk, _ := pack(f, []packIn{{frame: make([]byte, 60)}, {offload: [OffloadLen]byte{1}, frame: make([]byte, 20)}}, 1400)
	f.Add(chunk)
	f.Add(packedBytes([2]int{100, 99}))
	f.Add(packedBytes([2]int{0, 0}))
	f.Fuzz(func(t *testing.T, chunk []byte) {
		r := NewReassembler(Config{})
		p, ok := r.Unpack(1, chunk)
		st := r.Stats()
		if !ok {
			if st.Malformed != 1 {
				t.Fatalf("dropped but not counted: %+v", st)
			}
			return
		}
		n := 0
		for {
			fr, ok := p.Next()
			if !ok {
				break
			}
			n++
			if len(fr.Data) < MinFrameLen {
				t.Fatalf("a %d-byte frame", len(fr.Data))
			}
		}
		if n == 0 || n > MaxPackedFrames || uint64(n) != st.PackedFrames {
			t.Fatalf("%d frames, counted %+v", n, st)
		}
		// What was accepted packs again to the same bytes.
		p, _ = r.Unpack(1, chunk)
		buf := make([]byte, len(chunk))
		pk := NewPacker(buf)
		for {
			fr, ok := p.Next()
			if !ok {
				break
			}
			if !pk.Add(&fr.Offload, fr.Data) {
				t.Fatal("repacking refused a frame")
			}
		}
		if !bytes.Equal(buf[:pk.Len()], chunk) {
			// A zero offload header marked present repacks without it.
			if !bytes.Contains(chunk, make([]byte, OffloadLen)) {
				t.Fatalf("repacked %x, want %x", buf[:pk.Len()], chunk)
			}
		}
	})
}

func TestPackZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	frames := make([]packIn, 20)
	for i := range frames {
		frames[i].frame = randomBytes(uint64(i), 60)
	}
	buf := make([]byte, 1400)
	r := NewReassembler(Config{})
	allocs := testing.AllocsPerRun(200, func() {
		p := NewPacker(buf)
		for i := range frames {
			p.Add(&frames[i].offload, frames[i].frame)
		}
		u, ok := r.Unpack(1, buf[:p.Len()])
		if !ok {
			t.Fatal("unpack")
		}
		for _, ok := u.Next(); ok; _, ok = u.Next() {
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per packed chunk", allocs)
	}
}

func BenchmarkPack(b *testing.B) {
	frames := make([]packIn, 13) // 64-byte datagrams: 106-byte frames, 13 to a 1400-byte chunk
	for i := range frames {
		frames[i].frame = randomBytes(uint64(i), 106)
		frames[i].offload = [OffloadLen]byte{1, 0, 0, 0, 0, 0, 34, 0, 6, 0}
	}
	buf := make([]byte, 1400)
	r := NewReassembler(Config{})
	b.ReportAllocs()
	for b.Loop() {
		p := NewPacker(buf)
		for i := range frames {
			p.Add(&frames[i].offload, frames[i].frame)
		}
		u, _ := r.Unpack(1, buf[:p.Len()])
		for _, ok := u.Next(); ok; _, ok = u.Next() {
		}
	}
	b.ReportMetric(float64(b.N*len(frames))/b.Elapsed().Seconds(), "frames/s")
}
