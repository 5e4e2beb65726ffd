package frag

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"
)

// fuzzConfig keeps the caps small, so that a few chunks reach them.
var fuzzConfig = Config{
	Timeout:         time.Second,
	MaxBytesPerPeer: 2 * AccountedBytes(MaxStreamLen),
	MaxBytesTotal:   3 * AccountedBytes(MaxStreamLen),
}

// FuzzReassemble feeds arbitrary chunk sequences. The input is a series of
// records: an op byte, a 2-byte big-endian length and that many chunk bytes.
// The op's low 2 bits pick the peer; 0x80 steps the clock by (op>>2&0x1f)
// times 100 ms before the chunk; op 0x7f calls Expire and 0x7e drops peer 0
// instead of adding a chunk.
func FuzzReassemble(f *testing.F) {
	for _, seed := range reassembleSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReassembler(fuzzConfig)
		now := t0
		for len(data) >= 3 {
			op := data[0]
			n := min(int(binary.BigEndian.Uint16(data[1:3])), len(data)-3)
			chunk := data[3 : 3+n]
			data = data[3+n:]
			if op&0x80 != 0 {
				now = now.Add(time.Duration(op>>2&0x1f) * 100 * time.Millisecond)
			}
			switch op {
			case 0x7f:
				r.Expire(now)
				continue
			case 0x7e:
				r.DropPeer(0)
				continue
			}
			fr, ok := r.Add(uint32(op&3), chunk, now)
			if ok {
				if len(fr.Data) < MinFrameLen || len(fr.Data) > MaxFrameLen {
					t.Fatalf("delivered a %d-byte frame", len(fr.Data))
				}
				r.Release(fr)
			}
			if st := r.Stats(); st.BytesHeld > r.maxTotal || st.BytesHeld < 0 || st.InProgress < 0 {
				t.Fatalf("gauges out of bounds: %+v", st)
			}
		}
		checkInvariants(t, r)
		r.Expire(now.Add(time.Hour))
		if st := r.Stats(); st.BytesHeld != 0 || st.InProgress != 0 {
			t.Fatalf("left over after expiry: %+v", st)
		}
	})
}

// reassembleSeeds are FuzzReassemble inputs built from real chunks.
func reassembleSeeds() [][]byte {
	rec := func(op byte, chunk []byte) []byte {
		return append([]byte{op, byte(len(chunk) >> 8), byte(len(chunk))}, chunk...)
	}
	s := NewSplitter()
	offload := &[OffloadLen]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	var seeds [][]byte
	for _, size := range []int{60, 1514, 3000} {
		var in []byte
		for i, c := range splitAll(s, offload, randomBytes(uint64(size), size), 576) {
			in = append(in, rec(byte(i%2), c)...) // two peers
		}
		seeds = append(seeds, in)
	}
	chunks := splitAll(s, nil, randomBytes(7, 2000), 700)
	seeds = append(seeds,
		// reversed, a duplicate, a clock step past the timeout, Expire
		append(append(append(rec(0, chunks[2]), rec(0, chunks[2])...), rec(0x80|10<<2, chunks[1])...), rec(0x7f, nil)...),
		// an overlap, then DropPeer
		append(append(rec(0, fragChunk(0, 1, 0, 1000, 100)), rec(0, fragChunk(0, 1, 50, 1000, 100))...), rec(0x7e, nil)...),
		// floods of superframe first fragments from two peers
		func() []byte {
			var in []byte
			for i := range 8 {
				in = append(in, rec(byte(i%2), fragChunk(FlagOffload, uint32(i), 0, MaxStreamLen, 100))...)
			}
			return in
		}(),
		rec(0, wholeChunk(FlagOffload, 30)),
		rec(0, []byte{0x1f, 0xff}),
	)
	return seeds
}

// FuzzRoundTrip splits any frame at any chunk size and reassembles it in a
// shuffled order: what comes out is what went in, or the splitter refused
// it for a documented reason.
func FuzzRoundTrip(f *testing.F) {
	f.Add(randomBytes(1, 1514), uint16(1392), []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, uint64(1))
	f.Add(randomBytes(2, 100), uint16(80), []byte{}, uint64(2))
	f.Add(randomBytes(3, 13), uint16(1420), []byte{}, uint64(3))
	f.Add(randomBytes(4, 9000), uint16(MinChunk), []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, uint64(4))
	f.Fuzz(func(t *testing.T, frame []byte, maxChunk uint16, offloadBytes []byte, seed uint64) {
		var offload *[OffloadLen]byte
		if len(offloadBytes) >= OffloadLen {
			offload = (*[OffloadLen]byte)(offloadBytes[:OffloadLen])
		}
		s := NewSplitter()
		c := s.Split(offload, frame, int(maxChunk))
		stream := len(frame)
		if offload != nil && *offload != ([OffloadLen]byte{}) {
			stream += OffloadLen
		}
		if c.Count() == 0 {
			if len(frame) >= MinFrameLen && len(frame) <= MaxFrameLen &&
				(stream <= int(maxChunk)-WholeHeaderLen || int(maxChunk) >= MinChunk) {
				t.Fatalf("%d-byte frame at %d refused", len(frame), maxChunk)
			}
			return
		}
		chunks := make([][]byte, 0, c.Count())
		for {
			buf := make([]byte, maxChunk)
			n := c.Next(buf)
			if n == 0 {
				break
			}
			chunks = append(chunks, buf[:n])
		}
		if len(chunks) != c.Count() {
			t.Fatalf("%d chunks, Count %d", len(chunks), c.Count())
		}
		rng := newRand(seed)
		if len(chunks) < 2*maxRanges { // more chunks could make too many holes
			rng.Shuffle(len(chunks), func(i, j int) { chunks[i], chunks[j] = chunks[j], chunks[i] })
		}
		r := NewReassembler(Config{})
		for i, chunk := range chunks {
			got, ok := r.Add(1, chunk, t0)
			if ok != (i == len(chunks)-1) {
				t.Fatalf("chunk %d of %d completed: %v (%+v)", i, len(chunks), ok, r.Stats())
			}
			if !ok {
				continue
			}
			var want [OffloadLen]byte
			if offload != nil {
				want = *offload
			}
			if !bytes.Equal(got.Data, frame) || got.Offload != want {
				t.Fatalf("round trip changed the frame")
			}
			r.Release(got)
		}
	})
}
