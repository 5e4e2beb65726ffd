package frag

import (
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Config. The total is part of a node's memory budget (64 MiB
// at peak with the tunnel's default buffers, see tunnel.MemoryLimit): a
// frame completes within a round trip or two, so 8 MiB holds ~128
// superframes in progress, and a peer that floods first fragments is held
// to its own cap and evicts its own flood.
const (
	DefaultTimeout         = 2 * time.Second
	DefaultMaxBytesPerPeer = 4 << 20
	DefaultMaxBytesTotal   = 8 << 20
)

// Config bounds the time and memory of reassembly. Zero or negative fields
// take their defaults. A cap below one maximum-size frame in progress
// (AccountedBytes(MaxStreamLen)) is raised to it, and MaxBytesPerPeer is
// lowered to MaxBytesTotal when it is larger.
type Config struct {
	Timeout         time.Duration // incomplete frames older than this are dropped; default 2s
	MaxBytesPerPeer int           // bytes of reassembly buffers one peer may hold; default 4 MiB
	MaxBytesTotal   int           // over all peers; default 8 MiB
}

// Frame is a frame delivered by Reassembler.Add.
type Frame struct {
	Offload [OffloadLen]byte // zero when the chunk carried none
	Data    []byte           // the Ethernet frame

	buf *[]byte // the pooled buffer behind Data, nil when Data aliases the chunk
}

// Reassembler puts fragmented frames back together, per peer, with bounded
// memory and time. It is safe for concurrent use; peers are spread over
// shards with a lock each, so different peers rarely wait for each other.
type Reassembler struct {
	timeout  time.Duration
	maxPeer  int
	maxTotal int

	_       [64]byte
	held    atomic.Int64 // accounted bytes of all frames in progress, and reservations for new ones
	_       [56]byte     // held is written by every shard: keep it off the lines they read
	evictMu sync.Mutex   // serialises eviction for the total cap; never taken under a shard lock

	bufs       bufPools
	partials   sync.Pool // *partial
	peerStates sync.Pool // *peerState

	shards [numShards]shard
}

// NewReassembler returns a Reassembler bounded by cfg.
func NewReassembler(cfg Config) *Reassembler {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxBytesPerPeer <= 0 {
		cfg.MaxBytesPerPeer = DefaultMaxBytesPerPeer
	}
	if cfg.MaxBytesTotal <= 0 {
		cfg.MaxBytesTotal = DefaultMaxBytesTotal
	}
	least := AccountedBytes(MaxStreamLen)
	cfg.MaxBytesTotal = max(cfg.MaxBytesTotal, least)
	cfg.MaxBytesPerPeer = min(max(cfg.MaxBytesPerPeer, least), cfg.MaxBytesTotal)
	r := &Reassembler{
		timeout:  cfg.Timeout,
		maxPeer:  cfg.MaxBytesPerPeer,
		maxTotal: cfg.MaxBytesTotal,
	}
	for i := range r.shards {
		r.shards[i].frames = make(map[uint64]*partial)
		r.shards[i].peers = make(map[uint32]*peerState)
	}
	return r
}

// Config returns the configuration in effect, defaults and limits applied.
func (r *Reassembler) Config() Config {
	return Config{Timeout: r.timeout, MaxBytesPerPeer: r.maxPeer, MaxBytesTotal: r.maxTotal}
}

// Add takes one received chunk from peer, an opaque key of the caller's
// choosing, at time now. When the chunk completes a frame, Add returns it and
// true. A whole-frame chunk returns Data aliasing chunk (no copy); a
// reassembled frame lives in a pooled buffer, and Add has copied what it needs
// of chunk before it returns. The caller must call Release(f) once when done
// with any returned frame (a no-op for aliases).
//
// Malformed, duplicate, overlapping and oversized input is dropped and
// counted in Stats; Add never panics and returns no error. Add also drops a
// few frames that have timed out in peer's shard.
func (r *Reassembler) Add(peer uint32, chunk []byte, now time.Time) (Frame, bool) {
	s := r.shardOf(peer)
	if len(chunk) < WholeHeaderLen {
		s.c.malformed.Add(1)
		return Frame{}, false
	}
	flags := chunk[0] & 0x0f
	if chunk[0]>>4 != Version || flags&flagsReserved != 0 {
		s.c.malformed.Add(1)
		return Frame{}, false
	}
	if chunk[1] != TypeEthernet {
		s.c.unknownType.Add(1)
		return Frame{}, false
	}
	if flags&FlagFrag == 0 {
		return addWhole(s, flags, chunk[WholeHeaderLen:])
	}
	if len(chunk) < FragHeaderLen {
		s.c.malformed.Add(1)
		return Frame{}, false
	}
	s.c.fragments.Add(1)
	h := parseFragHeader(chunk)
	payload := chunk[FragHeaderLen:]
	switch h.check(len(payload)) {
	case dropTooBig:
		s.c.tooBig.Add(1)
		return Frame{}, false
	case dropMalformed:
		s.c.malformed.Add(1)
		return Frame{}, false
	}
	return r.addFragment(s, peer, h, payload, now)
}

// addWhole delivers a whole-frame chunk's stream in place.
func addWhole(s *shard, flags byte, stream []byte) (Frame, bool) {
	var f Frame
	if flags&FlagOffload != 0 {
		if len(stream) < OffloadLen {
			s.c.malformed.Add(1)
			return Frame{}, false
		}
		copy(f.Offload[:], stream)
		stream = stream[OffloadLen:]
	}
	switch {
	case len(stream) < MinFrameLen:
		s.c.malformed.Add(1)
		return Frame{}, false
	case len(stream) > MaxFrameLen:
		s.c.tooBig.Add(1)
		return Frame{}, false
	}
	f.Data = stream
	s.c.whole.Add(1)
	return f, true
}

// addFragment files a fragment whose header has been checked.
func (r *Reassembler) addFragment(s *shard, peer uint32, h fragHeader, payload []byte, now time.Time) (Frame, bool) {
	key := frameKey(peer, h.id)
	s.mu.Lock()
	r.expireLocked(s, now, lazyExpiries)
	p := r.lookupOrStartLocked(s, peer, key, h, now)
	if p == nil {
		s.mu.Unlock()
		return Frame{}, false
	}
	if p.total != h.total || p.flags != h.flags {
		r.dropLocked(s, p)
		s.mu.Unlock()
		s.c.malformed.Add(1)
		return Frame{}, false
	}
	switch p.ranges.insert(uint32(h.offset), uint32(h.offset+len(payload))) {
	case duplicate:
		s.mu.Unlock()
		s.c.duplicate.Add(1)
		return Frame{}, false
	case overlapping:
		r.dropLocked(s, p)
		s.mu.Unlock()
		s.c.overlap.Add(1)
		return Frame{}, false
	case full:
		r.dropLocked(s, p)
		s.mu.Unlock()
		s.c.tooManyHoles.Add(1)
		return Frame{}, false
	}
	copy((*p.buf)[h.offset:], payload)
	p.got += len(payload)
	if p.got < p.total {
		touchLocked(p)
		s.mu.Unlock()
		return Frame{}, false
	}
	total, flags := p.total, p.flags
	buf := r.unlinkLocked(s, p)
	s.mu.Unlock()
	s.c.reassembled.Add(1)

	f := Frame{buf: buf}
	stream := (*buf)[:total]
	if flags&FlagOffload != 0 {
		copy(f.Offload[:], stream)
		stream = stream[OffloadLen:]
	}
	f.Data = stream
	return f, true
}

// lookupOrStartLocked returns the frame in progress under key, or starts it
// when there is room, evicting to make some. It returns nil, with the chunk
// counted, when no room could be made. It may unlock s for a while.
func (r *Reassembler) lookupOrStartLocked(s *shard, peer uint32, key uint64, h fragHeader, now time.Time) *partial {
	acct := AccountedBytes(h.total)
	reserved := false
	for {
		if p := s.frames[key]; p != nil {
			if r.isExpired(p, now) {
				r.dropLocked(s, p)
				s.c.timeouts.Add(1)
				continue
			}
			if reserved {
				r.held.Add(-int64(acct))
			}
			return p
		}
		r.makePeerRoomLocked(s, peer, acct)
		if reserved || r.tryReserve(acct) {
			return r.newPartialLocked(s, peer, key, h, acct, now)
		}
		// The total cap is reached: evict from the biggest peer, which
		// takes other shards' locks, so let go of this one meanwhile.
		s.mu.Unlock()
		reserved = r.makeRoom(acct)
		s.mu.Lock()
		if !reserved {
			s.c.evicted.Add(1)
			return nil
		}
	}
}

// Release returns a frame's buffer to the pool. Call it once per frame that
// Add returned, when done with f.Data; it is a no-op for a frame that
// aliases its chunk.
func (r *Reassembler) Release(f Frame) {
	if f.buf != nil {
		r.bufs.put(f.buf)
	}
}
