package frag

import "sync/atomic"

// Stats are the counters of a Reassembler. Counters only grow; InProgress
// and BytesHeld are gauges.
type Stats struct {
	Whole        uint64 // whole-frame chunks delivered
	Fragments    uint64 // fragment chunks received with a readable header, kept or not
	Reassembled  uint64 // frames completed from fragments
	Timeouts     uint64 // incomplete frames dropped for age
	Evicted      uint64 // incomplete frames dropped to respect a memory cap, or refused for want of room
	Malformed    uint64 // chunks dropped as malformed; a chunk disagreeing with its frame drops the frame too
	Duplicate    uint64 // fragments wholly inside bytes already received, dropped
	Overlap      uint64 // fragments partly overlapping bytes already received; the frame is dropped
	TooBig       uint64 // chunks announcing a stream longer than MaxStreamLen or a frame longer than MaxFrameLen
	UnknownType  uint64 // chunks of a type other than TypeEthernet
	TooManyHoles uint64 // frames dropped because their received bytes were split in more than 64 ranges
	Packed       uint64 // packed chunks received and checked (pack.go)
	PackedFrames uint64 // frames in them

	InProgress int // frames being reassembled
	BytesHeld  int // bytes held by frames being reassembled, buffers and bookkeeping
}

// counters are the per-shard counters behind Stats, read without the lock.
type counters struct {
	whole        atomic.Uint64
	fragments    atomic.Uint64
	reassembled  atomic.Uint64
	timeouts     atomic.Uint64
	evicted      atomic.Uint64
	malformed    atomic.Uint64
	duplicate    atomic.Uint64
	overlap      atomic.Uint64
	tooBig       atomic.Uint64
	unknownType  atomic.Uint64
	tooManyHoles atomic.Uint64
	packed       atomic.Uint64
	packedFrames atomic.Uint64
}

func (c *counters) addTo(st *Stats) {
	st.Whole += c.whole.Load()
	st.Fragments += c.fragments.Load()
	st.Reassembled += c.reassembled.Load()
	st.Timeouts += c.timeouts.Load()
	st.Evicted += c.evicted.Load()
	st.Malformed += c.malformed.Load()
	st.Duplicate += c.duplicate.Load()
	st.Overlap += c.overlap.Load()
	st.TooBig += c.tooBig.Load()
	st.UnknownType += c.unknownType.Load()
	st.TooManyHoles += c.tooManyHoles.Load()
	st.Packed += c.packed.Load()
	st.PackedFrames += c.packedFrames.Load()
}

// Stats returns the counters, summed over the shards with atomic reads; they
// are not a snapshot taken at one instant.
func (r *Reassembler) Stats() Stats {
	var st Stats
	for i := range r.shards {
		s := &r.shards[i]
		s.c.addTo(&st)
		st.InProgress += int(s.inProgress.Load())
	}
	st.BytesHeld = int(r.held.Load())
	return st
}
