package mesh

import (
	"testing"
	"time"
)

// deliver hands every Send action of acts to m as received on port p, and
// returns what m answered.
func deliver(m *Machine, p Port, acts []Action, now time.Time) (answers []Action) {
	for _, a := range acts {
		if a.Kind == Send {
			answers = append(answers, m.Receive(p, a.Msg, now)...)
		}
	}
	return answers
}

// TestEarlyMessagesKept: B sees the session first and sends its record and
// summary while A has no adjacency yet; when A's adjacency comes up 150 ms
// later, A has learned B's database and computed at once, instead of
// waiting a summary interval (or, at start, the sync timeout) for B to
// repeat itself.
func TestEarlyMessagesKept(t *testing.T) {
	t0 := labEpoch
	a := mustNew(t, Config{Key: labKey(1), SPFHold: -1, OriginateHold: -1})
	b := mustNew(t, Config{Key: labKey(2), SPFHold: -1, OriginateHold: -1})
	fromB := b.AdjacencyUp(1, labKey(1), 10, t0)
	if got := deliver(a, 1, fromB, t0); len(got) != 0 || a.Stats().NotAdjacent == 0 {
		t.Fatalf("A with no adjacency answered %d actions, not-adjacent %d", len(got), a.Stats().NotAdjacent)
	}
	t1 := t0.Add(150 * time.Millisecond)
	fromA := a.AdjacencyUp(1, labKey(2), 10, t1)
	if a.Synced() != true {
		t.Fatal("A not synced right after its adjacency came up with B's summary kept")
	}
	// A's record and summary reach B; B's answers reach A: both list each
	// other, and each reaches the other over the mesh.
	back := deliver(b, 1, fromA, t1)
	deliver(a, 1, back, t1)
	settleMachine(a, t1)
	settleMachine(b, t1)
	if !a.Table().Reachable(b.ID()) || !b.Table().Reachable(a.ID()) {
		t.Fatalf("150 ms after the second adjacency: A reaches B %v, B reaches A %v",
			a.Table().Reachable(b.ID()), b.Table().Reachable(a.ID()))
	}
}

// TestEarlyMessagesBounded: messages from ports that never come up are kept
// a few per port, for a bounded number of ports, and stale ones are not
// replayed.
func TestEarlyMessagesBounded(t *testing.T) {
	a := mustNew(t, Config{Key: labKey(1)})
	msg := encRecord(t, Record{Origin: labKey(3), Seq: 1, Lifetime: 60})
	for p := Port(1); p < 3*earlyPorts; p++ {
		for range 10 {
			a.Receive(p, msg, labEpoch)
		}
	}
	if len(a.early) != earlyPorts {
		t.Errorf("messages kept for %d ports, want the cap %d", len(a.early), earlyPorts)
	}
	for p, q := range a.early {
		if len(q) > earlyPerPort {
			t.Fatalf("port %d: %d messages kept, want at most %d", p, len(q), earlyPerPort)
		}
	}
	// Stale: the adjacency comes up long after; the record is not taken.
	a.AdjacencyUp(1, labKey(3), 10, labEpoch.Add(time.Minute))
	if len(a.db) != 1 {
		t.Errorf("database %d records after a stale replay, want only its own", len(a.db))
	}
}
