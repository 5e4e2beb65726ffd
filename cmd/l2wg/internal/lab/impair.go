package lab

import (
	"math/rand/v2"
	"time"
)

// A shaper decides the fate of every frame of one direction of an impaired
// link: dropped, delayed until when, duplicated, held back so later frames
// pass it. It is pure: time comes in as an argument and randomness from its
// own seeded source, so a test replays any story exactly.
//
// Every frame draws the same four random numbers whatever happens to it, so
// the n-th frame of a direction meets the same fate in every run with the
// same seed (the arrival times decide only the rate limiter's queue).
type shaper struct {
	im  Impairment
	rng *rand.Rand

	busyUntil time.Duration // rate: when the link has sent what it accepted
	lastDue   time.Duration // in-order frames never leave before this
}

// newShaper returns the shaper of direction dir (0: a to b, 1: b to a) of
// link index of a lab whose seed is seed.
func newShaper(im Impairment, seed int64, index, dir int) *shaper {
	return &shaper{im: im, rng: rand.New(rand.NewPCG(uint64(seed), uint64(index)<<1|uint64(dir)))}
}

// dropReason says why a frame was dropped.
type dropReason uint8

const (
	keep      dropReason = iota
	dropLoss             // the random loss
	dropQueue            // the rate limiter's backlog was full
)

// A fate is what happens to one frame.
type fate struct {
	Drop      dropReason
	Due       time.Duration // when it leaves
	Duplicate bool          // a second copy leaves at Due too
	Reordered bool          // held back by ReorderDelay, out of order
}

// decide returns the fate of a frame of size bytes that arrives at now (time
// since any fixed epoch, the same for every call).
func (s *shaper) decide(now time.Duration, size int) fate {
	uLoss, uDup, uReorder, uJitter := s.rng.Float64(), s.rng.Float64(), s.rng.Float64(), s.rng.Float64()
	im := &s.im
	if uLoss < im.Loss {
		return fate{Drop: dropLoss}
	}
	sent := now
	if im.Rate > 0 {
		start := max(now, s.busyUntil)
		if start-now > im.Queue {
			return fate{Drop: dropQueue}
		}
		s.busyUntil = start + time.Duration(int64(size)*8*int64(time.Second)/im.Rate)
		sent = s.busyUntil
	}
	f := fate{Due: sent + im.Delay}
	if im.Jitter > 0 {
		f.Due += time.Duration((2*uJitter - 1) * float64(im.Jitter))
	}
	if uReorder < im.Reorder {
		f.Reordered = true
		f.Due += im.ReorderDelay
	} else {
		// Jitter alone does not reorder: a single path delays frames by
		// different amounts but keeps their order.
		f.Due = max(f.Due, s.lastDue)
		s.lastDue = f.Due
	}
	f.Due = max(f.Due, now)
	f.Duplicate = uDup < im.Duplicate
	return f
}

// A queued frame waits in a direction's queue until its due time.
type queued struct {
	due time.Duration
	seq uint64 // arrival order breaks ties
	buf *[]byte
	n   int
}

// frameHeap is a min-heap of queued frames by (due, seq). Hand-written, not
// container/heap: no interface conversions per frame.
type frameHeap []queued

func (h frameHeap) less(i, j int) bool {
	return h[i].due < h[j].due || (h[i].due == h[j].due && h[i].seq < h[j].seq)
}

func (h *frameHeap) push(q queued) {
	*h = append(*h, q)
	a := *h
	for i := len(a) - 1; i > 0; {
		parent := (i - 1) / 2
		if !a.less(i, parent) {
			break
		}
		a[i], a[parent] = a[parent], a[i]
		i = parent
	}
}

func (h *frameHeap) pop() queued {
	a := *h
	top := a[0]
	last := len(a) - 1
	a[0] = a[last]
	a[last] = queued{}
	a = a[:last]
	for i := 0; ; {
		l, r, small := 2*i+1, 2*i+2, i
		if l < len(a) && a.less(l, small) {
			small = l
		}
		if r < len(a) && a.less(r, small) {
			small = r
		}
		if small == i {
			break
		}
		a[i], a[small] = a[small], a[i]
		i = small
	}
	*h = a
	return top
}
