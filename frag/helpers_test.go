package frag

import (
	"math/rand/v2"
	"testing"
	"time"
)

// t0 is the fake clock's start; tests step it by hand.
var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x5eed)) }

// randomBytes returns n bytes from a seeded source.
func randomBytes(seed uint64, n int) []byte {
	rng := newRand(seed)
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// splitAll returns the chunks of one frame, each in its own slice.
func splitAll(s *Splitter, offload *[OffloadLen]byte, frame []byte, maxChunk int) [][]byte {
	c := s.Split(offload, frame, maxChunk)
	out := make([][]byte, 0, c.Count())
	buf := make([]byte, maxChunk)
	for n := c.Next(buf); n > 0; n = c.Next(buf) {
		out = append(out, append([]byte(nil), buf[:n]...))
	}
	return out
}

// fragChunk builds a fragment by hand: header and a payload of n bytes.
func fragChunk(flags byte, id uint32, offset, total, n int) []byte {
	b := make([]byte, FragHeaderLen+n)
	putFragHeader(b, flags|FlagFrag, id, offset, total)
	for i := range n {
		b[FragHeaderLen+i] = byte(offset + i)
	}
	return b
}

// wholeChunk builds a whole-frame chunk by hand with a stream of n bytes.
func wholeChunk(flags byte, n int) []byte {
	b := make([]byte, WholeHeaderLen+n)
	putWholeHeader(b, flags)
	return b
}

// counters returns st without its gauges, to compare counters alone.
func countersOf(st Stats) Stats {
	st.InProgress, st.BytesHeld = 0, 0
	return st
}

// checkInvariants verifies the tables and the accounting of a quiescent r.
func checkInvariants(t testing.TB, r *Reassembler) {
	t.Helper()
	held := 0
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		if int(s.inProgress.Load()) != len(s.frames) {
			t.Errorf("shard %d: inProgress %d, %d frames", i, s.inProgress.Load(), len(s.frames))
		}
		aged := 0
		for p := s.ageHead; p != nil; p = p.ageNext {
			aged++
			if s.frames[p.key] != p {
				t.Errorf("shard %d: frame %#x on the age list is not in the table", i, p.key)
			}
		}
		if aged != len(s.frames) {
			t.Errorf("shard %d: %d frames on the age list, %d in the table", i, aged, len(s.frames))
		}
		peered := 0
		for id, ps := range s.peers {
			bytes := 0
			for p := ps.lruHead; p != nil; p = p.lruNext {
				peered++
				bytes += p.acct
				if p.peer != ps || uint32(p.key>>32) != id {
					t.Errorf("shard %d: frame %#x on the list of peer %d", i, p.key, id)
				}
			}
			if ps.lruHead == nil {
				t.Errorf("shard %d: peer %d holds no frame but is kept", i, id)
			}
			if bytes != ps.bytes {
				t.Errorf("shard %d: peer %d accounts %d bytes, its frames %d", i, id, ps.bytes, bytes)
			}
			if ps.bytes > r.maxPeer {
				t.Errorf("shard %d: peer %d holds %d bytes, over its cap %d", i, id, ps.bytes, r.maxPeer)
			}
			held += ps.bytes
		}
		if peered != len(s.frames) {
			t.Errorf("shard %d: %d frames on peer lists, %d in the table", i, peered, len(s.frames))
		}
		s.mu.Unlock()
	}
	if got := int(r.held.Load()); got != held {
		t.Errorf("held %d bytes, peers account %d", got, held)
	}
	if held > r.maxTotal {
		t.Errorf("held %d bytes, over the total cap %d", held, r.maxTotal)
	}
}
