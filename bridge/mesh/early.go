package mesh

import "time"

// Messages that arrive before their adjacency.
//
// The two ends of a peering see their WireGuard session come up at
// different moments (each polls its own tunnel). The end that sees it first
// sends its record and summary at once; the other end, with no adjacency yet,
// used to drop them, and then waited for the next periodic summary (a
// SummaryInterval) — or, at start, for the sync timeout — before it could
// compute: the first frame across a new peering took over a second. The
// tunnel has authenticated the sender, so such messages are kept, a few per
// port for a short time, and handled the moment the adjacency comes up.

const (
	// earlyPerPort bounds the messages kept for one port: a record, a
	// summary and a request are what a neighbour sends on adjacency up.
	earlyPerPort = 4
	// earlyPorts bounds the ports messages are kept for.
	earlyPorts = 2 * MaxRecordLinks
)

type earlyMsg struct {
	at  time.Time
	msg []byte
}

// keepEarly holds a copy of msg, received on port p that has no adjacency.
func (m *Machine) keepEarly(p Port, msg []byte, now time.Time) {
	if m.early == nil {
		m.early = map[Port][]earlyMsg{}
	}
	q, known := m.early[p]
	if !known && len(m.early) >= earlyPorts {
		return
	}
	if len(q) >= earlyPerPort {
		q = append(q[:0], q[1:]...)
	}
	m.early[p] = append(q, earlyMsg{at: now, msg: append([]byte(nil), msg...)})
}

// replayEarly handles the messages kept for port p, whose adjacency a has just
// come up; those older than a SummaryInterval are stale (the neighbour's
// periodic summary repairs anything they carried) and dropped.
func (m *Machine) replayEarly(p Port, a *adjacency, now time.Time) {
	q := m.early[p]
	delete(m.early, p)
	for _, e := range q {
		if now.Sub(e.at) <= m.cfg.SummaryInterval {
			m.handle(p, a, e.msg, now)
		}
	}
}
