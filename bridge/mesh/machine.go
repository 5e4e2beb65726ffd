package mesh

import (
	"errors"
	"slices"
	"time"
)

// Defaults for Config fields left zero.
const (
	DefaultSummaryInterval = 1 * time.Second
	DefaultLifetime        = 20 * time.Minute
	DefaultSPFHold         = 10 * time.Millisecond
	DefaultSyncTimeout     = 3 * time.Second
	DefaultOriginateHold   = 10 * time.Millisecond
	DefaultMaxNodes        = 4096
	DefaultMaxLinks        = 64
	// MaxClockSkew bounds how far in the future a record's boot time may
	// be: a record with a later one has an absurd sequence number and is
	// dropped, so that it cannot pin its origin's sequence.
	MaxClockSkew = 24 * time.Hour
)

// Config configures a Machine.
type Config struct {
	Key Key // this node's public key
	// Boot is when this node started (the caller's process start, Unix
	// time): the high bits of its sequence numbers. Zero: the time passed
	// to New.
	Boot time.Time
	// SummaryInterval: how often every neighbour gets a summary of the
	// whole database (the repair for lost floods).
	SummaryInterval time.Duration
	// Lifetime of this node's records; they are refreshed at a third of it.
	// At most 65535 s.
	Lifetime time.Duration
	// SPFHold batches database changes: the tables are recomputed this
	// long after the first change of a burst.
	SPFHold time.Duration
	// SyncTimeout: the longest a starting node waits for its neighbours'
	// summaries before it computes anyway.
	SyncTimeout time.Duration
	// OriginateHold batches changes of this node's own adjacencies: the
	// first change after a quiet spell is flooded at once, later ones
	// at most once per hold.
	OriginateHold time.Duration
	MaxNodes      int // database cap
	MaxLinks      int // links per record cap, at most MaxRecordLinks
	// Stopwatch, if set, times each table computation (Stats.SPFTime,
	// Stats.LastSPFTime): the one clock the machine reads, for operators'
	// statistics, never for a decision. Nil: not timed.
	Stopwatch func() time.Time
}

func (c *Config) setDefaults(now time.Time) error {
	if c.Boot.IsZero() {
		c.Boot = now
	}
	if c.SummaryInterval <= 0 {
		c.SummaryInterval = DefaultSummaryInterval
	}
	if c.Lifetime <= 0 {
		c.Lifetime = DefaultLifetime
	}
	if c.SPFHold < 0 {
		c.SPFHold = 0
	} else if c.SPFHold == 0 {
		c.SPFHold = DefaultSPFHold
	}
	if c.OriginateHold < 0 {
		c.OriginateHold = 0
	} else if c.OriginateHold == 0 {
		c.OriginateHold = DefaultOriginateHold
	}
	if c.SyncTimeout <= 0 {
		c.SyncTimeout = DefaultSyncTimeout
	}
	if c.MaxNodes <= 0 {
		c.MaxNodes = DefaultMaxNodes
	}
	if c.MaxLinks <= 0 {
		c.MaxLinks = DefaultMaxLinks
	}
	switch {
	case c.Lifetime < 3*time.Second || c.Lifetime > 65535*time.Second:
		return errors.New("mesh: lifetime must be between 3s and 65535s")
	case c.MaxLinks > MaxRecordLinks:
		return errors.New("mesh: max links above MaxRecordLinks")
	case c.Boot.Unix() < 0 || c.Boot.Unix() > 1<<32-1:
		return errors.New("mesh: boot time out of range")
	}
	return nil
}

// adjacency is a neighbour with a live tunnel.
type adjacency struct {
	id     NodeID
	cost   uint32
	synced bool // it sent a complete summary since it came up
	// while this node syncs: records it listed newer than ours, not yet
	// received
	pending map[NodeID]uint64
}

// Stats counts what a Machine did.
type Stats struct {
	Nodes, Edges    int // in the last computed graph (edges counted once)
	SPFRuns         uint64
	Computes        uint64 // table computations (each 1 + neighbours SPF runs)
	RecordsIn       uint64 // accepted as new or newer
	RecordsOut      uint64
	SummariesIn     uint64
	SummariesOut    uint64
	RequestsIn      uint64
	RequestsOut     uint64
	Malformed       uint64 // messages that failed to parse
	NotAdjacent     uint64 // messages from a port with no adjacency
	AbsurdSeq       uint64 // records with a boot time in the future
	Oversized       uint64 // records over MaxLinks
	DatabaseFull    uint64 // records of new nodes dropped at MaxNodes
	Collisions      uint64
	Expired         uint64 // records aged out
	OwnSeqCorrected uint64 // own records from an earlier life that were newer
	// SPFTime is the wall time of the table computations (graph, SPF
	// runs, table), summed; LastSPFTime that of the latest. Zero unless
	// Config.Stopwatch is set.
	SPFTime, LastSPFTime time.Duration
}

// Machine is one node's link-state protocol: database, flooding, SPF and
// the forwarding table. It is not safe for concurrent use: the caller
// serializes calls (one goroutine, or a mutex) and carries out the returned
// actions in order. Every method takes the time.
type Machine struct {
	cfg  Config
	self NodeID
	seq  uint64

	adj map[Port]*adjacency
	db  map[NodeID]*entry

	sorted      []NodeID // db's IDs ascending; nil when stale
	dirty       bool
	dirtyAt     time.Time
	syncing     bool
	start       time.Time
	nextSummary time.Time
	nextRefresh time.Time
	nextExpiry  time.Time // no record expires before
	ownDirty    bool      // adjacencies changed since the last origination
	lastOrig    time.Time
	table       *Table
	sp          spf
	nodeCapHit  bool
	linkCapHit  bool
	stats       Stats
	out         []Action
	early       map[Port][]earlyMsg // messages from ports with no adjacency yet (early.go)
}

// entry is one record in the database.
type entry struct {
	rec     *Record
	expires time.Time
}

// New returns a machine with no adjacencies whose database holds its own
// record.
func New(cfg Config, now time.Time) (*Machine, error) {
	if err := cfg.setDefaults(now); err != nil {
		return nil, err
	}
	m := &Machine{
		cfg:         cfg,
		self:        IDFromKey(cfg.Key),
		seq:         uint64(cfg.Boot.Unix()) << 32,
		adj:         map[Port]*adjacency{},
		db:          map[NodeID]*entry{},
		syncing:     true,
		start:       now,
		nextSummary: now.Add(cfg.SummaryInterval),
	}
	m.table = emptyTable(m.self)
	// The hold counts from the start, so that a node whose tunnels come up
	// together at start floods one record listing them all.
	m.originate(now)
	return m, nil
}

// ID returns this node's ID.
func (m *Machine) ID() NodeID { return m.self }

// Table returns the current forwarding table.
func (m *Machine) Table() *Table { return m.table }

// Stats returns the counters.
func (m *Machine) Stats() Stats { return m.stats }

// Synced reports whether the node has finished learning the database at
// start and computes its tables.
func (m *Machine) Synced() bool { return !m.syncing }

// Records returns a copy of every record in the database, ascending by
// origin ID, with Lifetime set to the remaining lifetime at now.
func (m *Machine) Records(now time.Time) []Record {
	var rs []Record
	for _, id := range m.sortedIDs() {
		e := m.db[id]
		r := *e.rec
		r.Links = slices.Clone(r.Links)
		r.Lifetime = remaining(e.expires, now)
		rs = append(rs, r)
	}
	return rs
}

// AdjacencyUp tells the machine that the neighbour with key nbr is live on
// port p at the given cost (1 to MaxCost; clamped), or that the cost of a
// live one changed. The neighbour gets this node's record and a summary at
// once.
func (m *Machine) AdjacencyUp(p Port, nbr Key, cost uint32, now time.Time) []Action {
	m.out = m.out[:0]
	cost = min(max(cost, 1), MaxCost)
	id := IDFromKey(nbr)
	a := m.adj[p]
	switch {
	case a != nil && a.id == id && a.cost == cost:
		return m.finish(now)
	case a != nil && a.id == id:
		a.cost = cost
		m.ownDirty = true
		return m.finish(now)
	}
	if id == m.self || p == 0 {
		return m.finish(now)
	}
	a = &adjacency{id: id, cost: cost}
	m.adj[p] = a
	m.ownDirty = true
	m.sendSummary(p, now)
	m.replayEarly(p, a, now)
	return m.finish(now)
}

// AdjacencyDown tells the machine that the neighbour on port p is gone. Its
// own record drops the link at once and floods, which takes the link out of
// every node's graph (the two-way check) whatever the neighbour's record says.
func (m *Machine) AdjacencyDown(p Port, now time.Time) []Action {
	m.out = m.out[:0]
	if _, ok := m.adj[p]; ok {
		delete(m.adj, p)
		m.ownDirty = true
	}
	delete(m.early, p)
	return m.finish(now)
}

// Receive handles one control message from the neighbour on port p.
// Malformed messages, and messages from a port with no adjacency, are
// dropped and counted.
func (m *Machine) Receive(p Port, msg []byte, now time.Time) []Action {
	m.out = m.out[:0]
	a := m.adj[p]
	if a == nil {
		// Counted, and kept for when the adjacency comes up (early.go).
		m.stats.NotAdjacent++
		if p != 0 {
			m.keepEarly(p, msg, now)
		}
		return m.finish(now)
	}
	m.handle(p, a, msg, now)
	return m.finish(now)
}

// handle parses and handles one message from adjacency a on port p.
func (m *Machine) handle(p Port, a *adjacency, msg []byte, now time.Time) {
	pm, err := ParseMessage(msg)
	if err != nil {
		m.stats.Malformed++
		return
	}
	switch pm.Type {
	case MsgRecord:
		m.receiveRecord(p, &pm.Record, now)
	case MsgSummary:
		m.receiveSummary(p, a, &pm.Summary, now)
	case MsgRequest:
		m.receiveRequest(p, pm.Request, now)
	}
}

// Tick handles time passing: summaries, refreshing this node's record,
// ageing others', and computing the tables after a change. Call it at least
// every SPFHold (or every 10 to 100 ms).
func (m *Machine) Tick(now time.Time) []Action {
	m.out = m.out[:0]
	if !now.Before(m.nextExpiry) {
		m.expire(now)
	}
	if !now.Before(m.nextRefresh) {
		m.ownDirty = true
	}
	if !now.Before(m.nextSummary) {
		m.nextSummary = now.Add(m.cfg.SummaryInterval)
		for _, p := range m.ports() {
			m.sendSummary(p, now)
		}
	}
	return m.finish(now)
}

// finish ends every entry point: leave syncing if due, compute if due, and
// return the actions.
func (m *Machine) finish(now time.Time) []Action {
	if m.ownDirty && !now.Before(m.lastOrig.Add(m.cfg.OriginateHold)) {
		m.originate(now)
	}
	if m.syncing && m.syncDone(now) {
		m.syncing = false
		m.dirty, m.dirtyAt = true, now
		m.out = append(m.out, Action{Kind: Notice, Notice: NoticeSynced, Node: m.self})
	}
	if m.dirty && !m.syncing && !now.Before(m.dirtyAt.Add(m.cfg.SPFHold)) {
		m.compute()
	}
	out := m.out
	m.out = nil
	return out
}

// syncDone reports whether a starting node has learned enough: every
// adjacency has sent a complete summary (and the records it listed that
// this node asked for have come, or the next summary asks again), or the
// sync timeout passed.
func (m *Machine) syncDone(now time.Time) bool {
	if !now.Before(m.start.Add(m.cfg.SyncTimeout)) {
		return true
	}
	if len(m.adj) == 0 {
		return false
	}
	for _, a := range m.adj {
		if !a.synced {
			return false
		}
		for id, seq := range a.pending {
			if e := m.db[id]; e == nil || e.rec.Seq < seq {
				return false
			}
		}
	}
	return true
}

// compute rebuilds the graph and the table.
func (m *Machine) compute() {
	m.dirty = false
	if m.cfg.Stopwatch != nil {
		start := m.cfg.Stopwatch()
		defer func() {
			m.stats.LastSPFTime = m.cfg.Stopwatch().Sub(start)
			m.stats.SPFTime += m.stats.LastSPFTime
		}()
	}
	recs := make(map[NodeID]*Record, len(m.db))
	for id, e := range m.db {
		recs[id] = e.rec
	}
	g := buildGraph(recs)
	// One port per neighbour: the cheapest (the cost the record lists),
	// then the lowest.
	ports := make(map[NodeID]Port, len(m.adj))
	for p, a := range m.adj {
		q, ok := ports[a.id]
		if !ok || a.cost < m.adj[q].cost || a.cost == m.adj[q].cost && p < q {
			ports[a.id] = p
		}
	}
	t, runs := buildTable(g, m.self, ports, &m.sp)
	m.stats.SPFRuns += uint64(runs)
	m.stats.Computes++
	m.stats.Nodes = len(t.ids)
	m.stats.Edges = len(g.nbr) / 2
	if !t.sameForwarding(m.table) {
		m.table = t
		m.out = append(m.out, Action{Kind: TablesChanged, Table: t})
	}
}

// markDirty schedules a computation.
func (m *Machine) markDirty(now time.Time) {
	if !m.dirty {
		m.dirty, m.dirtyAt = true, now
	}
	m.sorted = nil
}

// ports returns the adjacent ports, ascending.
func (m *Machine) ports() []Port {
	ps := make([]Port, 0, len(m.adj))
	for p := range m.adj {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

func remaining(expires, now time.Time) uint16 {
	d := expires.Sub(now)
	if d <= 0 {
		return 0
	}
	return uint16(min(d/time.Second, 65535))
}
