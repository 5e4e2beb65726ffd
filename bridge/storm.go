package bridge

import (
	"sync"
	"sync/atomic"
	"time"
)

// Storm control: an optional limit, per ingress port, on the frames the
// switch floods (broadcast, multicast and unknown unicast), as switches'
// "storm-control" does. A token bucket refilled at the limit per second with
// a burst of one second's worth; frames over it are dropped and counted
// (DropStorm). Known unicast is never limited.

type stormBucket struct {
	limit atomic.Int64 // frames per second; 0: no limit

	mu     sync.Mutex // protects tokens and last
	tokens int64
	last   int64 // bridge time of the last refill
}

// take refills the bucket at now and takes up to want tokens, returning how
// many it got.
func (s *stormBucket) take(now, want int64) int64 {
	limit := s.limit.Load()
	if limit <= 0 {
		return want
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if elapsed := now - s.last; elapsed > 0 {
		s.tokens = min(limit, s.tokens+elapsed*limit/int64(time.Second))
		s.last = now
	}
	got := min(want, s.tokens)
	s.tokens -= got
	return got
}

// SetStormLimit limits the broadcast, multicast and unknown-unicast frames
// accepted on port id to pps frames per second (0: no limit).
func (b *Bridge) SetStormLimit(id PortID, pps int) {
	p := b.ports.Load().get(id)
	if p == nil {
		return
	}
	p.storm.mu.Lock()
	p.storm.tokens = int64(pps)
	p.storm.last = b.now()
	p.storm.mu.Unlock()
	p.storm.limit.Store(int64(pps))
}

// giveBack returns tokens an Input call took and did not use.
func (s *stormBucket) giveBack(n int64) {
	s.mu.Lock()
	s.tokens = min(s.limit.Load(), s.tokens+n)
	s.mu.Unlock()
}
