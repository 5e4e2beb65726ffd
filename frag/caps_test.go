package frag

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// flooder makes first fragments of superframes that never complete: each
// pins a maximum-size buffer for one chunk of 1392 bytes.
type flooder struct {
	chunk []byte
	id    uint32
}

func newFlooder() *flooder {
	f := &flooder{chunk: fragChunk(FlagOffload, 0, 0, MaxStreamLen, 1392-FragHeaderLen)}
	return f
}

func (f *flooder) next() []byte {
	f.id++
	f.chunk[2], f.chunk[3], f.chunk[4], f.chunk[5] = byte(f.id>>24), byte(f.id>>16), byte(f.id>>8), byte(f.id)
	return f.chunk
}

// genuine is a peer's real traffic: superframes and ordinary frames, each
// split and sent in order.
type genuine struct {
	t       testing.TB
	s       *Splitter
	frames  [][]byte
	chunks  [][]byte
	next    int // next chunk of the current frame
	cur     int // index of the current frame
	done    int // frames delivered intact
	offload [OffloadLen]byte
}

func newGenuine(t testing.TB, n int) *genuine {
	g := &genuine{t: t, s: NewSplitter(), offload: [OffloadLen]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0}}
	sizes := []int{MaxFrameLen, 1514, 9000, 65000, 1518, 30000}
	for i := range n {
		g.frames = append(g.frames, randomBytes(uint64(i), sizes[i%len(sizes)]))
	}
	g.chunks = splitAll(g.s, &g.offload, g.frames[0], 1392)
	return g
}

func (g *genuine) finished() bool { return g.cur == len(g.frames) }

// step sends the next chunk to r as peer and checks any frame delivered.
func (g *genuine) step(r *Reassembler, peer uint32, now time.Time) {
	f, ok := r.Add(peer, g.chunks[g.next], now)
	g.next++
	last := g.next == len(g.chunks)
	if ok != last {
		g.t.Fatalf("genuine frame %d: chunk %d of %d completed: %v (%+v)", g.cur, g.next, len(g.chunks), ok, r.Stats())
	}
	if !ok {
		return
	}
	if !bytes.Equal(f.Data, g.frames[g.cur]) || f.Offload != g.offload {
		g.t.Fatalf("genuine frame %d: content differs", g.cur)
	}
	r.Release(f)
	g.done++
	g.cur++
	g.next = 0
	if !g.finished() {
		g.chunks = splitAll(g.s, &g.offload, g.frames[g.cur], 1392)
	}
}

// TestPeerCapFlood: a peer floods first fragments that never complete while
// its genuine frames interleave, several flood chunks between two genuine
// ones. The flood evicts itself; every genuine frame arrives.
func TestPeerCapFlood(t *testing.T) {
	const perPeer = 4 << 20
	floods := 100_000
	if raceEnabled {
		floods = 20_000
	}
	r := NewReassembler(Config{MaxBytesPerPeer: perPeer, MaxBytesTotal: 32 << 20})
	slots := perPeer / AccountedBytes(MaxStreamLen) // 63
	burst := slots / 2                              // flood chunks between two genuine chunks
	fl := newFlooder()
	g := newGenuine(t, floods/burst/40+1)
	now := t0
	for i := 0; i < floods; i++ {
		r.Add(5, fl.next(), now)
		if st := r.Stats(); st.BytesHeld > perPeer {
			t.Fatalf("flood chunk %d: %d bytes held, over the cap %d", i, st.BytesHeld, perPeer)
		}
		if i%burst == 0 && !g.finished() {
			g.step(r, 5, now)
		}
		if i%1000 == 0 {
			now = now.Add(time.Millisecond)
		}
	}
	for !g.finished() {
		g.step(r, 5, now)
	}
	st := r.Stats()
	if g.done != len(g.frames) || st.Reassembled != uint64(len(g.frames)) {
		t.Errorf("%d genuine frames of %d arrived: %+v", g.done, len(g.frames), st)
	}
	if st.Evicted < uint64(floods-slots) || st.Timeouts != 0 {
		t.Errorf("evicted %d frames of a %d-frame flood: %+v", st.Evicted, floods, st)
	}
	t.Logf("%d flood frames, %d genuine frames: %+v", floods, g.done, st)
	checkInvariants(t, r)
	r.Expire(now.Add(time.Hour))
	if st := r.Stats(); st.InProgress != 0 || st.BytesHeld != 0 {
		t.Errorf("left over after expiry: %+v", st)
	}
}

// TestTotalCapFlood: several peers flood at once, each within its own cap,
// together over the total cap; a genuine peer interleaves. Eviction takes
// from the biggest holders, so the genuine frames arrive.
func TestTotalCapFlood(t *testing.T) {
	const (
		perPeer  = 4 << 20
		total    = 8 << 20
		flooders = 6
	)
	floods := 100_000
	if raceEnabled {
		floods = 20_000
	}
	r := NewReassembler(Config{MaxBytesPerPeer: perPeer, MaxBytesTotal: total})
	fls := make([]*flooder, flooders)
	for i := range fls {
		fls[i] = newFlooder()
	}
	g := newGenuine(t, floods/20/40+1)
	for i := 0; i < floods; i++ {
		r.Add(uint32(100+i%flooders), fls[i%flooders].next(), t0)
		if st := r.Stats(); st.BytesHeld > total {
			t.Fatalf("flood chunk %d: %d bytes held, over the cap %d", i, st.BytesHeld, total)
		}
		if i%20 == 0 && !g.finished() {
			g.step(r, 7, t0)
		}
	}
	for !g.finished() {
		g.step(r, 7, t0)
	}
	st := r.Stats()
	if g.done != len(g.frames) {
		t.Errorf("%d genuine frames of %d arrived: %+v", g.done, len(g.frames), st)
	}
	t.Logf("%d flood frames from %d peers, %d genuine frames: %+v", floods, flooders, g.done, st)
	checkInvariants(t, r)
}

// TestTotalCapConcurrent floods from several goroutines at once, each a peer
// over its share of the total cap, so that eviction for the total cap runs
// concurrently with filing; the cap holds throughout and nothing deadlocks.
func TestTotalCapConcurrent(t *testing.T) {
	const (
		perPeer = 2 << 20
		total   = 4 << 20
		workers = 8
	)
	per := 5_000
	if raceEnabled {
		per = 1_000
	}
	r := NewReassembler(Config{MaxBytesPerPeer: perPeer, MaxBytesTotal: total})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fl := newFlooder()
			var g *genuine
			if w%2 == 0 {
				g = newGenuine(t, 10)
			}
			for i := range per {
				r.Add(uint32(w), fl.next(), t0)
				if held := r.Stats().BytesHeld; held > total {
					t.Errorf("worker %d: %d bytes held, over the cap %d", w, held, total)
					return
				}
				if g != nil && i%4 == 0 && !g.finished() {
					g.step(r, uint32(1000+w), t0)
				}
			}
		}()
	}
	wg.Wait()
	checkInvariants(t, r)
	t.Logf("%+v", r.Stats())
}
