package frag

import (
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// numShards splits the reassembly tables by peer so that peers on different
// goroutines rarely meet on a lock.
const (
	shardBits = 5
	numShards = 1 << shardBits
)

// shard holds the frames in progress of the peers that hash to it.
type shard struct {
	mu sync.Mutex
	// protects frames, peers, ageHead, ageTail and everything they point to
	frames           map[uint64]*partial   // by frameKey
	peers            map[uint32]*peerState // peers holding at least one frame
	ageHead, ageTail *partial              // all frames, oldest first chunk first

	inProgress atomic.Int64 // len(frames), for Stats
	c          counters
	_          [64]byte // keep shards apart in the cache
}

// peerState is one peer's share of a shard.
type peerState struct {
	id               uint32
	bytes            int      // accounted bytes of the peer's frames
	lruHead, lruTail *partial // the peer's frames, least recently advanced first
}

// partial is a frame being reassembled.
type partial struct {
	key     uint64
	peer    *peerState
	buf     *[]byte // from bufPools, len(*buf) >= total
	total   int     // stream length
	got     int     // bytes received
	acct    int     // accounted bytes: buffer capacity and bookkeeping
	flags   byte
	created time.Time // arrival of the first chunk

	agePrev, ageNext *partial
	lruPrev, lruNext *partial

	ranges rangeSet
}

// partialOverhead is the bookkeeping accounted to each frame in progress
// besides its buffer: the partial, the slice header of its buffer and a
// generous share of the map entry.
const partialOverhead = int(unsafe.Sizeof(partial{})) + 24 + 32

// AccountedBytes returns the bytes a frame in progress with a stream of
// total bytes counts against the memory caps: its buffer's capacity and the
// fixed bookkeeping of a frame. It returns 0 for a total out of range.
func AccountedBytes(total int) int {
	c := classOf(total)
	if total <= 0 || c < 0 {
		return 0
	}
	return classSizes[c] + partialOverhead
}

func frameKey(peer, id uint32) uint64 { return uint64(peer)<<32 | uint64(id) }

func (r *Reassembler) shardOf(peer uint32) *shard {
	return &r.shards[(peer*0x9e3779b9)>>(32-shardBits)] // Fibonacci hashing
}

// newPartialLocked starts a frame whose acct bytes the caller has reserved
// in r.held, and charges them to its peer.
func (r *Reassembler) newPartialLocked(s *shard, peer uint32, key uint64, h fragHeader, acct int, now time.Time) *partial {
	ps := s.peers[peer]
	if ps == nil {
		ps, _ = r.peerStates.Get().(*peerState)
		if ps == nil {
			ps = new(peerState)
		}
		ps.id = peer
		s.peers[peer] = ps
	}
	p, _ := r.partials.Get().(*partial)
	if p == nil {
		p = new(partial)
	}
	p.key = key
	p.peer = ps
	p.buf = r.bufs.get(h.total)
	p.total = h.total
	p.got = 0
	p.acct = acct
	p.flags = h.flags
	p.created = now
	p.ranges.reset()

	ps.bytes += acct
	p.lruPrev, p.lruNext = ps.lruTail, nil
	if ps.lruTail != nil {
		ps.lruTail.lruNext = p
	} else {
		ps.lruHead = p
	}
	ps.lruTail = p

	p.agePrev, p.ageNext = s.ageTail, nil
	if s.ageTail != nil {
		s.ageTail.ageNext = p
	} else {
		s.ageHead = p
	}
	s.ageTail = p

	s.frames[key] = p
	s.inProgress.Add(1)
	return p
}

// touchLocked moves p to the most recently advanced end of its peer's list.
func touchLocked(p *partial) {
	ps := p.peer
	if ps.lruTail == p {
		return
	}
	// p has a successor: unlink, then append.
	p.lruNext.lruPrev = p.lruPrev
	if p.lruPrev != nil {
		p.lruPrev.lruNext = p.lruNext
	} else {
		ps.lruHead = p.lruNext
	}
	p.lruPrev, p.lruNext = ps.lruTail, nil
	ps.lruTail.lruNext = p
	ps.lruTail = p
}

// unlinkLocked removes p from the tables and the accounting and returns its
// buffer, which the caller now owns. p goes back to its pool.
func (r *Reassembler) unlinkLocked(s *shard, p *partial) *[]byte {
	delete(s.frames, p.key)
	s.inProgress.Add(-1)

	if p.agePrev != nil {
		p.agePrev.ageNext = p.ageNext
	} else {
		s.ageHead = p.ageNext
	}
	if p.ageNext != nil {
		p.ageNext.agePrev = p.agePrev
	} else {
		s.ageTail = p.agePrev
	}

	ps := p.peer
	if p.lruPrev != nil {
		p.lruPrev.lruNext = p.lruNext
	} else {
		ps.lruHead = p.lruNext
	}
	if p.lruNext != nil {
		p.lruNext.lruPrev = p.lruPrev
	} else {
		ps.lruTail = p.lruPrev
	}
	ps.bytes -= p.acct
	r.held.Add(-int64(p.acct))
	if ps.lruHead == nil {
		delete(s.peers, ps.id)
		*ps = peerState{}
		r.peerStates.Put(ps)
	}

	buf := p.buf
	p.buf, p.peer = nil, nil
	p.agePrev, p.ageNext, p.lruPrev, p.lruNext = nil, nil, nil, nil
	r.partials.Put(p)
	return buf
}

// dropLocked forgets p and frees its buffer.
func (r *Reassembler) dropLocked(s *shard, p *partial) {
	r.bufs.put(r.unlinkLocked(s, p))
}
