package frag

import "time"

// lazyExpiries bounds the timed-out frames one Add drops, so that an Add
// after a quiet spell does not hold its shard for long; Expire drops the rest.
const lazyExpiries = 8

// evictRounds bounds the attempts of makeRoom, which other goroutines may
// beat to the room it makes.
const evictRounds = 8

func (r *Reassembler) isExpired(p *partial, now time.Time) bool {
	return now.Sub(p.created) > r.timeout
}

// expireLocked drops up to limit frames of s that have timed out (limit < 0:
// all). Frames are kept in order of arrival, so it stops at the first that
// has not; a frame added with an earlier time than its predecessor (callers
// on several goroutines) may live a little longer.
func (r *Reassembler) expireLocked(s *shard, now time.Time, limit int) {
	for p := s.ageHead; p != nil && limit != 0 && r.isExpired(p, now); p = s.ageHead {
		r.dropLocked(s, p)
		s.c.timeouts.Add(1)
		limit--
	}
}

// Expire drops the incomplete frames older than the timeout. Call it
// periodically, for example every Timeout/4; Add also drops a few lazily.
func (r *Reassembler) Expire(now time.Time) {
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		r.expireLocked(s, now, -1)
		s.mu.Unlock()
	}
}

// DropPeer forgets every frame in progress from peer, for example when the
// peer is removed. The frames are not counted as evicted.
func (r *Reassembler) DropPeer(peer uint32) {
	s := r.shardOf(peer)
	s.mu.Lock()
	for ps := s.peers[peer]; ps != nil; ps = s.peers[peer] {
		r.dropLocked(s, ps.lruHead)
	}
	s.mu.Unlock()
}

// makePeerRoomLocked evicts peer's least recently advanced frames until acct
// more bytes fit its cap.
func (r *Reassembler) makePeerRoomLocked(s *shard, peer uint32, acct int) {
	for ps := s.peers[peer]; ps != nil && ps.bytes+acct > r.maxPeer; ps = s.peers[peer] {
		r.dropLocked(s, ps.lruHead)
		s.c.evicted.Add(1)
	}
}

// tryReserve adds acct to the bytes held if that stays within the total cap.
func (r *Reassembler) tryReserve(acct int) bool {
	for {
		held := r.held.Load()
		if held+int64(acct) > int64(r.maxTotal) {
			return false
		}
		if r.held.CompareAndSwap(held, held+int64(acct)) {
			return true
		}
	}
}

// makeRoom evicts frames of the peer holding the most bytes until acct more
// bytes fit the total cap, and reserves them. It reports whether it did.
// The caller holds no shard lock.
func (r *Reassembler) makeRoom(acct int) bool {
	r.evictMu.Lock()
	defer r.evictMu.Unlock()
	for range evictRounds {
		if r.tryReserve(acct) {
			return true
		}
		s, peer, ok := r.biggestPeer()
		if !ok {
			return false
		}
		s.mu.Lock()
		for ps := s.peers[peer]; ps != nil && r.held.Load()+int64(acct) > int64(r.maxTotal); ps = s.peers[peer] {
			r.dropLocked(s, ps.lruHead)
			s.c.evicted.Add(1)
		}
		s.mu.Unlock()
	}
	return r.tryReserve(acct)
}

// biggestPeer finds the peer holding the most bytes, locking one shard at a
// time.
func (r *Reassembler) biggestPeer() (*shard, uint32, bool) {
	var (
		best      *shard
		bestPeer  uint32
		bestBytes int
	)
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		for id, ps := range s.peers {
			if ps.bytes > bestBytes {
				best, bestPeer, bestBytes = s, id, ps.bytes
			}
		}
		s.mu.Unlock()
	}
	return best, bestPeer, best != nil
}
