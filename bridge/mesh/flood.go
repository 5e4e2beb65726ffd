package mesh

import (
	"cmp"
	"slices"
	"time"
)

// originate makes a new own record from the live adjacencies, stores it and
// floods it to every neighbour.
func (m *Machine) originate(now time.Time) {
	m.seq++
	m.ownDirty = false
	m.lastOrig = now
	m.nextRefresh = now.Add(m.cfg.Lifetime / 3)
	links := make([]Link, 0, len(m.adj))
	for _, a := range m.adj {
		links = append(links, Link{a.id, a.cost})
	}
	// One link per neighbour (the cheapest, if two ports reach it).
	slices.SortFunc(links, func(a, b Link) int {
		return cmp.Or(cmp.Compare(a.Neighbour, b.Neighbour), cmp.Compare(a.Cost, b.Cost))
	})
	links = slices.CompactFunc(links, func(a, b Link) bool { return a.Neighbour == b.Neighbour })
	if len(links) > m.cfg.MaxLinks {
		slices.SortFunc(links, func(a, b Link) int {
			return cmp.Or(cmp.Compare(a.Cost, b.Cost), cmp.Compare(a.Neighbour, b.Neighbour))
		})
		links = links[:m.cfg.MaxLinks]
		slices.SortFunc(links, func(a, b Link) int { return cmp.Compare(a.Neighbour, b.Neighbour) })
		m.linkCap(m.self)
	}
	r := &Record{Origin: m.cfg.Key, Seq: m.seq, Lifetime: remaining(now.Add(m.cfg.Lifetime), now), Links: links}
	m.db[m.self] = &entry{rec: r, expires: now.Add(m.cfg.Lifetime)}
	m.markDirty(now)
	m.flood(r, 0, now)
}

// flood sends r to every neighbour but the one on port except.
func (m *Machine) flood(r *Record, except Port, now time.Time) {
	var msg []byte
	for _, p := range m.ports() {
		if p == except {
			continue
		}
		if msg == nil {
			msg = m.encodeRecord(r, now)
		}
		m.send(p, msg)
		m.stats.RecordsOut++
	}
}

// encodeRecord encodes r with its remaining lifetime at now.
func (m *Machine) encodeRecord(r *Record, now time.Time) []byte {
	c := *r
	if e := m.db[r.ID()]; e != nil && e.rec == r {
		c.Lifetime = remaining(e.expires, now)
	}
	b, err := AppendRecord(nil, &c)
	if err != nil {
		panic("mesh: stored record does not encode: " + err.Error())
	}
	return b
}

func (m *Machine) send(p Port, msg []byte) {
	m.out = append(m.out, Action{Kind: Send, Port: p, Msg: msg})
}

func (m *Machine) sendRecord(p Port, id NodeID, now time.Time) {
	if e := m.db[id]; e != nil {
		m.send(p, m.encodeRecord(e.rec, now))
		m.stats.RecordsOut++
	}
}

// receiveRecord is the flooding decision for one record.
func (m *Machine) receiveRecord(p Port, r *Record, now time.Time) {
	id := r.ID()
	switch {
	case r.Lifetime == 0:
		return // aged out on the way
	case r.Seq>>32 > uint64(now.Add(MaxClockSkew).Unix()):
		m.stats.AbsurdSeq++
		return
	}
	if id == m.self {
		// An own record from an earlier life (or a clock that went
		// back): jump past it, as IS-IS does, and flood the new one.
		if r.Origin == m.cfg.Key && r.Seq > m.seq {
			m.seq = r.Seq
			m.stats.OwnSeqCorrected++
			m.originate(now)
		} else if r.Seq < m.seq {
			m.sendRecord(p, m.self, now)
		}
		return
	}
	if len(r.Links) > m.cfg.MaxLinks {
		m.stats.Oversized++
		m.linkCap(id)
		return
	}
	e := m.db[id]
	if e != nil && e.rec.Origin != r.Origin {
		// Two keys, one ID: the smaller key wins everywhere.
		m.stats.Collisions++
		m.out = append(m.out, Action{Kind: Notice, Notice: NoticeCollision, Node: id})
		if slices.Compare(r.Origin[:], e.rec.Origin[:]) > 0 {
			return
		}
		e = nil
	}
	switch {
	case e != nil && r.Seq == e.rec.Seq:
		return // an implicit acknowledgement
	case e != nil && r.Seq < e.rec.Seq:
		m.sendRecord(p, id, now) // the sender is behind
		return
	case e == nil && len(m.db) >= m.cfg.MaxNodes:
		m.stats.DatabaseFull++
		if !m.nodeCapHit {
			m.nodeCapHit = true
			m.out = append(m.out, Action{Kind: Notice, Notice: NoticeNodeCap, Node: id})
		}
		return
	}
	life := min(time.Duration(r.Lifetime)*time.Second, m.cfg.Lifetime)
	stored := *r
	m.db[id] = &entry{rec: &stored, expires: now.Add(life)}
	if now.Add(life).Before(m.nextExpiry) {
		m.nextExpiry = now.Add(life)
	}

	m.stats.RecordsIn++
	m.markDirty(now)
	m.flood(&stored, p, now)
}

func (m *Machine) linkCap(id NodeID) {
	if !m.linkCapHit {
		m.linkCapHit = true
		m.out = append(m.out, Action{Kind: Notice, Notice: NoticeLinkCap, Node: id})
	}
}

// expire drops the records whose lifetime ran out.
func (m *Machine) expire(now time.Time) {
	m.nextExpiry = now.Add(m.cfg.Lifetime)
	for id, e := range m.db {
		switch {
		case id == m.self:
		case !now.Before(e.expires):
			delete(m.db, id)
			m.stats.Expired++
			m.markDirty(now)
		case e.expires.Before(m.nextExpiry):
			m.nextExpiry = e.expires
		}
	}
	if m.nodeCapHit && len(m.db) < m.cfg.MaxNodes {
		m.nodeCapHit = false
	}
}

func (m *Machine) sortedIDs() []NodeID {
	if m.sorted == nil {
		m.sorted = make([]NodeID, 0, len(m.db))
		for id := range m.db {
			m.sorted = append(m.sorted, id)
		}
		slices.Sort(m.sorted)
	}
	return m.sorted
}

// sendSummary sends the whole database's (node, seq) to port p, in messages
// of adjacent ID ranges, the last one final.
func (m *Machine) sendSummary(p Port, now time.Time) {
	ids := m.sortedIDs()
	first := NodeID(0)
	for len(ids) > 0 || first == 0 {
		n := min(len(ids), MaxSummaryEntries)
		s := Summary{First: first, Last: ^NodeID(0), Final: n == len(ids)}
		for _, id := range ids[:n] {
			s.Entries = append(s.Entries, SummaryEntry{id, m.db[id].rec.Seq})
		}
		if !s.Final {
			s.Last = ids[n-1]
		}
		b, err := AppendSummary(nil, &s)
		if err != nil {
			panic("mesh: summary does not encode: " + err.Error())
		}
		m.send(p, b)
		m.stats.SummariesOut++
		ids = ids[n:]
		if s.Final {
			break
		}
		first = s.Last + 1
	}
}

// receiveSummary compares a neighbour's summary with the database: records
// the neighbour lacks or holds older go to it, records it holds newer or
// this node lacks are requested.
func (m *Machine) receiveSummary(p Port, a *adjacency, s *Summary, now time.Time) {
	m.stats.SummariesIn++
	var want []NodeID
	listed := 0
	ids := m.sortedIDs()
	lo, _ := slices.BinarySearch(ids, s.First)
	mine := ids[lo:]
	for _, e := range s.Entries {
		// Own records newer than the summary's, or that it lacks.
		for len(mine) > 0 && mine[0] < e.Node {
			m.sendRecord(p, mine[0], now)
			mine = mine[1:]
		}
		if len(mine) > 0 && mine[0] == e.Node {
			mine = mine[1:]
		}
		listed++
		have := m.db[e.Node]
		switch {
		case e.Node == m.self:
			if e.Seq < m.seq {
				m.sendRecord(p, m.self, now)
			} else if e.Seq > m.seq {
				want = append(want, e.Node) // learn it, then jump past it
			}
		case have == nil || have.rec.Seq < e.Seq:
			if e.Seq>>32 <= uint64(now.Add(MaxClockSkew).Unix()) {
				want = append(want, e.Node)
			}
		case have.rec.Seq > e.Seq:
			m.sendRecord(p, e.Node, now)
		}
	}
	for _, id := range mine {
		if id > s.Last {
			break
		}
		m.sendRecord(p, id, now)
	}
	for len(want) > 0 {
		n := min(len(want), MaxRequestEntries)
		b, err := AppendRequest(nil, want[:n])
		if err != nil {
			panic("mesh: request does not encode: " + err.Error())
		}
		m.send(p, b)
		m.stats.RequestsOut++
		want = want[n:]
	}
	if m.syncing {
		if a.pending == nil {
			a.pending = map[NodeID]uint64{}
		}
		for _, e := range s.Entries {
			if have := m.db[e.Node]; e.Node != m.self && (have == nil || have.rec.Seq < e.Seq) {
				a.pending[e.Node] = e.Seq
			}
		}
	} else {
		a.pending = nil
	}
	if s.Final {
		a.synced = true
	}
}

func (m *Machine) receiveRequest(p Port, ids []NodeID, now time.Time) {
	m.stats.RequestsIn++
	for _, id := range ids {
		m.sendRecord(p, id, now)
	}
}
