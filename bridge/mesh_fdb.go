package bridge

import (
	"sync"
	"sync/atomic"

	"github.com/l2wg/l2wg/bridge/mesh"
)

// meshFDB is the mesh port's address table: which node each address (in
// each VLAN, keyed as the switch's FDB) behind the mesh was last seen behind (the ingress node of its frames), and when.
// The switch's own FDB says "on the mesh port"; this says where in the mesh.
// It ages with the switch's ageing time and holds at most the switch's
// limit of entries.
type meshFDB struct {
	mu      sync.RWMutex // protects entries and every entry's node
	entries map[fdbKey]*meshEntry
	limit   int
}

type meshEntry struct {
	node    mesh.NodeID  // changed under the write lock
	updated atomic.Int64 // bridge time last seen
}

func (f *meshFDB) init(limit int) {
	f.entries = map[fdbKey]*meshEntry{}
	f.limit = limit
}

func (f *meshFDB) lookup(k fdbKey, now, ageing int64) (mesh.NodeID, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	e := f.entries[k]
	if e == nil || expired(e.updated.Load(), now, ageing) {
		return 0, false
	}
	return e.node, true
}

// learn refreshes under the read lock and takes the write lock only for a
// new or moved address, as the switch's FDB does.
func (f *meshFDB) learn(k fdbKey, node mesh.NodeID, now int64) {
	f.mu.RLock()
	e := f.entries[k]
	if e != nil && e.node == node {
		e.updated.Store(now)
		f.mu.RUnlock()
		return
	}
	f.mu.RUnlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	if e = f.entries[k]; e == nil {
		if len(f.entries) >= f.limit {
			return
		}
		e = &meshEntry{}
		f.entries[k] = e
	}
	e.node = node
	e.updated.Store(now)
}

// flushUnreachable forgets every address behind a node t does not reach.
func (f *meshFDB) flushUnreachable(t *mesh.Table) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for k, e := range f.entries {
		if !t.Reachable(e.node) {
			delete(f.entries, k)
			n++
		}
	}
	return n
}

func (f *meshFDB) len() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.entries)
}
