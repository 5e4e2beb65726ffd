package frag

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// order is how a round trip delivers the chunks of a frame.
type order uint8

const (
	inOrder order = iota
	reversed
	shuffled
	withDuplicates // shuffled, with chunks already sent repeated in between
	numOrders
)

func (o order) String() string {
	return [...]string{"in order", "reversed", "shuffled", "with duplicates"}[o]
}

// roundTripper splits frames and reassembles them, reusing its buffers.
type roundTripper struct {
	t        testing.TB
	s        *Splitter
	r        *Reassembler
	rng      *rand.Rand
	maxChunk int
	chunks   [][]byte // slab of maxChunk-byte buffers
	seq      []int    // delivery order, indexes into chunks
	dups     uint64   // duplicates delivered
}

func newRoundTripper(t testing.TB, maxChunk int, seed uint64) *roundTripper {
	n := (MaxStreamLen + maxChunk - FragHeaderLen - 1) / (maxChunk - FragHeaderLen)
	rt := &roundTripper{
		t:        t,
		s:        NewSplitter(),
		r:        NewReassembler(Config{}),
		rng:      newRand(seed),
		maxChunk: maxChunk,
	}
	slab := make([]byte, n*maxChunk)
	for i := range n {
		rt.chunks = append(rt.chunks, slab[i*maxChunk:(i+1)*maxChunk:(i+1)*maxChunk])
	}
	return rt
}

// run sends one frame through in the given order and checks what comes out.
// It reports false after the first error.
func (rt *roundTripper) run(offload *[OffloadLen]byte, frame []byte, o order) bool {
	t := rt.t
	t.Helper()
	c := rt.s.Split(offload, frame, rt.maxChunk)
	if len(frame) < MinFrameLen || len(frame) > MaxFrameLen {
		if c.Count() != 0 {
			t.Errorf("%d-byte frame: %d chunks, want none", len(frame), c.Count())
			return false
		}
		return true
	}
	stream := len(frame)
	if offload != nil && *offload != ([OffloadLen]byte{}) {
		stream += OffloadLen
	}
	if whole := stream <= rt.maxChunk-WholeHeaderLen; whole != (c.Count() == 1) || c.Count() == 0 {
		t.Errorf("%d-byte stream at %d: %d chunks", stream, rt.maxChunk, c.Count())
		return false
	}
	n := c.Count()
	if per := rt.maxChunk - FragHeaderLen; n > 1 && n != (stream+per-1)/per {
		t.Errorf("%d-byte stream at %d: %d fragments, want the fewest, %d", stream, rt.maxChunk, n, (stream+per-1)/per)
		return false
	}
	lens := make([]int, 0, 128)
	for i := range n {
		k := c.Next(rt.chunks[i])
		// One byte apart at most, the longer first; near MinChunk, full
		// fragments of MinFragmentPayload and a shorter last one.
		if k == 0 || k > rt.maxChunk || (i > 0 && (k > lens[i-1] || k < lens[0]-1 && (i < n-1 || lens[i-1] != lens[0]))) {
			t.Errorf("%d-byte frame at %d: chunk %d of %d has %d bytes", len(frame), rt.maxChunk, i, n, k)
			return false
		}
		lens = append(lens, k)
	}
	rt.order(n, o)

	var got Frame
	done := false
	for i, j := range rt.seq {
		f, ok := rt.r.Add(7, rt.chunks[j][:lens[j]], t0)
		if ok != (i == len(rt.seq)-1) {
			t.Errorf("%d-byte frame at %d, %v: chunk %d of %d completed: %v", len(frame), rt.maxChunk, o, i, len(rt.seq), ok)
			return false
		}
		if ok {
			got, done = f, true
		}
	}
	if !done {
		return false
	}
	defer rt.r.Release(got)
	var wantOffload [OffloadLen]byte
	if offload != nil {
		wantOffload = *offload
	}
	if !bytes.Equal(got.Data, frame) || got.Offload != wantOffload {
		t.Errorf("%d-byte frame at %d, %v: got %d bytes, offload %x; content differs", len(frame), rt.maxChunk, o, len(got.Data), got.Offload)
		return false
	}
	return true
}

// order fills rt.seq with the delivery order of n chunks.
func (rt *roundTripper) order(n int, o order) {
	rt.seq = rt.seq[:0]
	for i := range n {
		rt.seq = append(rt.seq, i)
	}
	switch o {
	case reversed:
		for i, j := 0, n-1; i < j; i, j = i+1, j-1 {
			rt.seq[i], rt.seq[j] = rt.seq[j], rt.seq[i]
		}
	case shuffled, withDuplicates:
		rt.rng.Shuffle(n, func(i, j int) { rt.seq[i], rt.seq[j] = rt.seq[j], rt.seq[i] })
	}
	if o != withDuplicates || n < 2 {
		return
	}
	// Repeat chunks already sent, but never after the last one: a chunk
	// after completion starts a new frame.
	perm := append([]int(nil), rt.seq...)
	rt.seq = rt.seq[:0]
	for i, j := range perm {
		rt.seq = append(rt.seq, j)
		if i < n-1 && rt.rng.IntN(2) == 0 {
			rt.seq = append(rt.seq, perm[rt.rng.IntN(i+1)])
			rt.dups++
		}
	}
}

// boundarySizes returns the frame sizes around every place where the chunk
// count changes at maxChunk, for a stream of frame+extra bytes.
func boundarySizes(maxChunk, extra int) []int {
	sizes := []int{1, MinFrameLen - 1, MinFrameLen, MinFrameLen + 1, MaxFrameLen - 1, MaxFrameLen, MaxFrameLen + 1}
	whole := maxChunk - WholeHeaderLen - extra
	sizes = append(sizes, whole-1, whole, whole+1)
	per := maxChunk - FragHeaderLen
	for k := per; k <= MaxStreamLen+per; k += per {
		sizes = append(sizes, k-extra-1, k-extra, k-extra+1)
	}
	return sizes
}

// TestRoundTripEverySize sends every frame size from 1 to MaxFrameLen+1 at
// each chunk size, with and without offload header. Every size goes through
// once, in one of the orders in turn; sizes up to 2048 and those around the
// fragment boundaries go through in every order, with and without offload.
func TestRoundTripEverySize(t *testing.T) {
	step := 1
	if testing.Short() || raceEnabled {
		step = 17
	}
	for mi, maxChunk := range []int{576, 1280, 1420, 1392, MinChunk} {
		t.Run(fmt.Sprint(maxChunk), func(t *testing.T) {
			t.Parallel()
			rt := newRoundTripper(t, maxChunk, uint64(maxChunk))
			data := randomBytes(uint64(maxChunk), MaxFrameLen+64)
			offload := [OffloadLen]byte{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a}
			send := func(size, mode int) bool {
				var off *[OffloadLen]byte
				if mode%2 == 1 {
					offload[0] = byte(size) | 1
					off = &offload
				}
				start := size % 61
				return rt.run(off, data[start:start+size], order(mode/2))
			}
			full := map[int]bool{}
			for _, extra := range []int{0, OffloadLen} {
				for _, size := range boundarySizes(maxChunk, extra) {
					// At MinChunk there is a boundary every 64 bytes:
					// take the first ones and the extremes.
					if maxChunk != MinChunk || size <= 8192 || size >= MaxFrameLen-1 {
						full[size] = true
					}
				}
			}
			// MinChunk makes ~1000 fragments of a superframe: more holes
			// than a frame may have when shuffled. Send those in order.
			modes := 2 * int(numOrders)
			if maxChunk == MinChunk {
				modes = 4
			}
			step := step
			if maxChunk == MinChunk {
				step *= 7 // ~900 chunks a superframe: sample
			}
			for size := 1; size <= MaxFrameLen+1; size++ {
				if size > 2048 && size%step != 0 && !full[size] {
					continue
				}
				if size <= 2048 || full[size] {
					for mode := range modes {
						if !send(size, mode) {
							return
						}
					}
					continue
				}
				if !send(size, (size+mi)%modes) {
					return
				}
			}
			st := rt.r.Stats()
			if st.InProgress != 0 || st.BytesHeld != 0 {
				t.Errorf("left over: %d frames, %d bytes", st.InProgress, st.BytesHeld)
			}
			if st.Duplicate != rt.dups {
				t.Errorf("Duplicate %d, sent %d", st.Duplicate, rt.dups)
			}
			if st.Malformed+st.Overlap+st.TooBig+st.Timeouts+st.Evicted+st.TooManyHoles != 0 {
				t.Errorf("drops: %+v", st)
			}
			checkInvariants(t, rt.r)
		})
	}
}

// TestRoundTripTinyFrames: frames shorter than MinFrameLen are refused by
// the splitter, and dropped as malformed when a peer sends them anyway.
func TestRoundTripTinyFrames(t *testing.T) {
	r := NewReassembler(Config{})
	for size := range MinFrameLen {
		if c := NewSplitter().Split(nil, make([]byte, size), 1420); c.Count() != 0 {
			t.Errorf("%d-byte frame: %d chunks", size, c.Count())
		}
		if _, ok := r.Add(1, wholeChunk(0, size), t0); ok {
			t.Errorf("%d-byte whole chunk delivered", size)
		}
		if _, ok := r.Add(1, wholeChunk(FlagOffload, OffloadLen+size), t0); ok {
			t.Errorf("%d-byte whole chunk with offload delivered", size)
		}
	}
	if st := r.Stats(); st.Malformed != 2*MinFrameLen || st.Whole != 0 {
		t.Errorf("stats %+v", st)
	}
}
