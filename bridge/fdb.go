package bridge

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// fdb is the forwarding database: which port each source address was last
// seen on in each VLAN, and when.
type fdb struct {
	mu      sync.RWMutex // protects entries and every entry's port
	entries map[fdbKey]*fdbEntry

	limit  int          // most entries; set once by init
	ageing atomic.Int64 // entry lifetime, time.Duration
	moves  atomic.Uint64

	lastMoveLog atomic.Int64 // see rateLimit: station moves
	lastFullLog atomic.Int64 // see rateLimit: "fdb full" warnings
}

// fdbKey is a (VID, MAC) pair packed into an integer, the VID in bits 48-59
// and the MAC below: a map keyed by it hashes and compares faster than one
// keyed by a struct or a [6]byte.
type fdbKey uint64

func keyOf(vid uint16, m MAC) fdbKey {
	return fdbKey(vid)<<48 | fdbKey(m[0])<<40 | fdbKey(m[1])<<32 | fdbKey(m[2])<<24 |
		fdbKey(m[3])<<16 | fdbKey(m[4])<<8 | fdbKey(m[5])
}

func (k fdbKey) mac() MAC {
	return MAC{byte(k >> 40), byte(k >> 32), byte(k >> 24), byte(k >> 16), byte(k >> 8), byte(k)}
}

func (k fdbKey) vid() uint16 { return uint16(k >> 48) }

// srcKey and dstKey return the key of the frame's source or destination in
// VLAN vid, each with one 8-byte load; the frame holds at least an Ethernet
// header. They equal keyOf(vid, e.Src()) and keyOf(vid, e.Dst()).
func (e Ethernet) srcKey(vid uint16) fdbKey {
	return fdbKey(vid)<<48 | fdbKey(binary.BigEndian.Uint64(e[4:12])&(1<<48-1))
}

func (e Ethernet) dstKey(vid uint16) fdbKey {
	return fdbKey(vid)<<48 | fdbKey(binary.BigEndian.Uint64(e[0:8])>>16)
}

type fdbEntry struct {
	port    PortID       // guarded by fdb.mu; changed only under the write lock
	updated atomic.Int64 // bridge time last seen; refreshed under the read lock
}

// FDBEntry is a snapshot of one FDB entry.
type FDBEntry struct {
	VID      uint16 // 0: untagged
	MAC      MAC
	Port     PortID
	PortName string
	Age      time.Duration // since the address was last seen
}

func (f *fdb) init(limit int, ageing time.Duration) {
	f.entries = make(map[fdbKey]*fdbEntry)
	f.limit = limit
	f.ageing.Store(int64(ageing))
}

// expired reports whether an entry last seen at updated is stale at now: such
// an entry counts as unknown even before Sweep removes it.
func expired(updated, now, ageing int64) bool { return now-updated >= ageing }

// lookupLocked returns the port the address of key dst was learned on, if it
// is known and fresh. Called with f.mu held for reading.
func (f *fdb) lookupLocked(dst fdbKey, now, ageing int64) (PortID, bool) {
	e := f.entries[dst]
	if e == nil || expired(e.updated.Load(), now, ageing) {
		return 0, false
	}
	return e.port, true
}

// learnResult says what learnLocked did with a source address.
type learnResult uint8

const (
	learned   learnResult = iota // known on this port, refreshed
	learnLate                    // new or moved: learn it under the write lock
	learnFull                    // new, and the FDB is full: not learned
)

// learnLocked refreshes the address of key src seen on port in at now if it
// is already known there, which needs no write lock. Called with f.mu held for
// reading.
func (f *fdb) learnLocked(src fdbKey, in PortID, now int64) learnResult {
	e := f.entries[src]
	switch {
	case e == nil && len(f.entries) >= f.limit:
		return learnFull
	case e == nil || e.port != in:
		return learnLate
	}
	// Store only when the time changed: the clock is read once per Input
	// call, and a store per frame would bounce the cache line between the
	// readers of every port.
	if e.updated.Load() != now {
		e.updated.Store(now)
	}
	return learned
}

// learnAll learns addresses seen on port p at now that learnLocked could not,
// under the write lock, and returns the number of frames whose address did
// not fit in the FDB. A known host is never evicted to make room. Addresses
// seen on a port that has been removed meanwhile are not learned.
func (f *fdb) learnAll(p *port, pending []pendingLearn, now int64, log *slog.Logger) (full uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p.removed.Load() {
		return 0
	}
	for _, pl := range pending {
		src := pl.src
		e := f.entries[src]
		switch {
		case e == nil:
			if len(f.entries) >= f.limit {
				full += pl.frames
				continue
			}
			e = new(fdbEntry)
			e.port = p.id
			f.entries[src] = e
		case e.port != p.id:
			old := e.port
			e.port = p.id
			f.moves.Add(1)
			f.logMove(log, src, old, p, now)
		}
		e.updated.Store(now)
	}
	return full
}

// logMove logs a station move at debug, at most once a second: a loop moves
// addresses back and forth at line rate.
func (f *fdb) logMove(log *slog.Logger, k fdbKey, from PortID, to *port, now int64) {
	if log.Enabled(context.Background(), slog.LevelDebug) && rateLimit(&f.lastMoveLog, now, time.Second) {
		log.Debug("station moved", "mac", k.mac().String(), "vid", k.vid(), "from", from, "port", to.name, "id", to.id)
	}
}

// logFull warns that the FDB is full, at most once a minute: new addresses
// are not learned and their frames are flooded (a MAC flood, or a limit too
// low for the segment).
func (f *fdb) logFull(log *slog.Logger, p *port, now int64) {
	if rateLimit(&f.lastFullLog, now, time.Minute) {
		log.Warn("fdb full, new addresses are not learned", "limit", f.limit, "port", p.name, "id", p.id)
	}
}

// rateLimit reports whether an event at now may be logged, at most one per
// interval; last holds 1 + the time of the last one logged (0: none yet).
func rateLimit(last *atomic.Int64, now int64, interval time.Duration) bool {
	l := last.Load()
	if l != 0 && now+1-l < int64(interval) {
		return false
	}
	return last.CompareAndSwap(l, now+1)
}

// flush forgets the addresses learned on port id, in every VLAN.
func (f *fdb) flush(id PortID) {
	f.flushFunc(func(_ fdbKey, e *fdbEntry) bool { return e.port == id })
}

// flushFunc forgets the entries for which forget returns true.
func (f *fdb) flushFunc(forget func(k fdbKey, e *fdbEntry) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, e := range f.entries {
		if forget(k, e) {
			delete(f.entries, k)
		}
	}
}

func (f *fdb) len() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.entries)
}

// Flush forgets the addresses learned on a port in every VLAN, as the
// spanning tree (one for all VLANs) asks when the port leaves the forwarding
// state or the topology changes.
func (b *Bridge) Flush(id PortID) { b.fdb.flush(id) }

// FlushVLAN forgets the addresses learned on a port in VLAN vid (0: untagged).
func (b *Bridge) FlushVLAN(id PortID, vid uint16) {
	b.fdb.flushFunc(func(k fdbKey, e *fdbEntry) bool { return e.port == id && k.vid() == vid })
}

// FlushAll forgets every learned address.
func (b *Bridge) FlushAll() {
	b.fdb.mu.Lock()
	defer b.fdb.mu.Unlock()
	clear(b.fdb.entries)
}

// Sweep removes expired entries. The owner calls it periodically (the kernel
// does it every ageing time / 10 or so); lookups ignore expired entries in
// between anyway, so Sweep only frees room in the FDB.
func (b *Bridge) Sweep() {
	now := b.now()
	f := &b.fdb
	ageing := f.ageing.Load()
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, e := range f.entries {
		if expired(e.updated.Load(), now, ageing) {
			delete(f.entries, k)
		}
	}
}

// FDB returns a snapshot of the forwarding database sorted by VID and
// address, expired entries that Sweep has not removed yet included.
func (b *Bridge) FDB() []FDBEntry {
	now := b.now()
	tab := b.ports.Load()
	f := &b.fdb
	f.mu.RLock()
	entries := make([]FDBEntry, 0, len(f.entries))
	for k, e := range f.entries {
		entries = append(entries, FDBEntry{
			VID:      k.vid(),
			MAC:      k.mac(),
			Port:     e.port,
			PortName: tab.portName(e.port),
			Age:      time.Duration(max(now-e.updated.Load(), 0)),
		})
	}
	f.mu.RUnlock()
	slices.SortFunc(entries, func(a, b FDBEntry) int {
		return cmp.Or(cmp.Compare(a.VID, b.VID), bytes.Compare(a.MAC[:], b.MAC[:]))
	})
	return entries
}

// FDBEntriesByVLAN returns the number of FDB entries per VID (0: untagged),
// expired entries that Sweep has not removed yet included; VIDs without
// entries are left out.
func (b *Bridge) FDBEntriesByVLAN() map[uint16]int {
	f := &b.fdb
	counts := make(map[uint16]int)
	f.mu.RLock()
	defer f.mu.RUnlock()
	for k := range f.entries {
		counts[k.vid()]++
	}
	return counts
}
