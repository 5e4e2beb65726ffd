package mesh

import (
	"math/rand/v2"
	"testing"
	"time"
)

func mustNew(t *testing.T, cfg Config) *Machine {
	t.Helper()
	m, err := New(cfg, labEpoch)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func encRecord(t *testing.T, r Record) []byte {
	t.Helper()
	b, err := AppendRecord(nil, &r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func notices(acts []Action, k NoticeKind) int {
	n := 0
	for _, a := range acts {
		if a.Kind == Notice && a.Notice == k {
			n++
		}
	}
	return n
}

// TestTwoWayCheck: a link that only one end lists carries nothing.
func TestTwoWayCheck(t *testing.T) {
	a := mustNew(t, Config{Key: labKey(1)})
	kb, kc := labKey(2), labKey(3)
	a.AdjacencyUp(1, kb, 10, labEpoch)
	a.AdjacencyUp(2, kc, 10, labEpoch)
	now := labEpoch.Add(time.Millisecond)
	// B lists A; C lists only B (not A): A-C is one-sided, but C is
	// reachable through B once B lists C too.
	a.Receive(1, encRecord(t, Record{Origin: kb, Seq: 1, Lifetime: 60, Links: []Link{{IDFromKey(labKey(1)), 10}}}), now)
	a.Receive(2, encRecord(t, Record{Origin: kc, Seq: 1, Lifetime: 60, Links: []Link{{IDFromKey(kb), 10}}}), now)
	settleMachine(a, labEpoch.Add(DefaultSyncTimeout))
	tab := a.Table()
	if !tab.Reachable(IDFromKey(kb)) || tab.Reachable(IDFromKey(kc)) {
		t.Fatalf("B reachable %v (want true), C reachable %v (want false: B does not list C, A-C one-sided)",
			tab.Reachable(IDFromKey(kb)), tab.Reachable(IDFromKey(kc)))
	}
	// B now lists C as well: C is reachable through B, not over the
	// one-sided direct link.
	now = labEpoch.Add(DefaultSyncTimeout + time.Second)
	a.Receive(1, encRecord(t, Record{Origin: kb, Seq: 2, Lifetime: 60,
		Links: sortLinks([]Link{{IDFromKey(labKey(1)), 10}, {IDFromKey(kc), 10}})}), now)
	settleMachine(a, now.Add(time.Second))
	if p, _, ok := a.Table().NextHop(IDFromKey(kc)); !ok || p != 1 {
		t.Fatalf("next hop to C: port %d %v, want 1 (through B)", p, ok)
	}
}

// settleMachine ticks at now and once the SPF hold has passed.
func settleMachine(m *Machine, now time.Time) {
	m.Tick(now)
	m.Tick(now.Add(m.cfg.SPFHold))
}

func sortLinks(ls []Link) []Link {
	for i := range ls {
		for j := i + 1; j < len(ls); j++ {
			if ls[j].Neighbour < ls[i].Neighbour {
				ls[i], ls[j] = ls[j], ls[i]
			}
		}
	}
	return ls
}

// TestSequenceNumbers: a restarted node's records supersede its old ones at
// once (boot time in the high bits); a record from the future is dropped;
// an own record from an earlier life makes the node jump past it.
func TestSequenceNumbers(t *testing.T) {
	a := mustNew(t, Config{Key: labKey(1)})
	kb := labKey(2)
	a.AdjacencyUp(1, kb, 10, labEpoch)
	boot := uint64(labEpoch.Unix())
	links := []Link{{a.ID(), 10}}
	a.Receive(1, encRecord(t, Record{Origin: kb, Seq: boot<<32 | 900, Lifetime: 60, Links: links}), labEpoch)
	// B restarts a second later: counter 1, but a later boot.
	a.Receive(1, encRecord(t, Record{Origin: kb, Seq: (boot+1)<<32 | 1, Lifetime: 60, Links: links}), labEpoch)
	if got := a.db[IDFromKey(kb)].rec.Seq; got != (boot+1)<<32|1 {
		t.Fatalf("stored seq %x, want the restarted node's", got)
	}
	// A boot time two days ahead: absurd, dropped, counted.
	before := a.db[IDFromKey(kb)].rec.Seq
	a.Receive(1, encRecord(t, Record{Origin: kb, Seq: (boot+2*86400)<<32 | 1, Lifetime: 60}), labEpoch)
	if a.Stats().AbsurdSeq != 1 || a.db[IDFromKey(kb)].rec.Seq != before {
		t.Fatalf("absurd record: stats %+v, seq %x", a.Stats(), a.db[IDFromKey(kb)].rec.Seq)
	}
	// An own record with a higher seq (an earlier life whose clock was
	// ahead): A re-originates above it and floods.
	own := a.db[a.ID()].rec.Seq
	acts := a.Receive(1, encRecord(t, Record{Origin: labKey(1), Seq: own + 50, Lifetime: 60}), labEpoch)
	if got := a.db[a.ID()].rec.Seq; got != own+51 {
		t.Fatalf("own seq %x, want %x", got, own+51)
	}
	sent := 0
	for _, x := range acts {
		if x.Kind == Send && x.Port == 1 {
			m, _ := ParseMessage(x.Msg)
			if m.Type == MsgRecord && m.Record.Seq == own+51 {
				sent++
			}
		}
	}
	if sent != 1 || a.Stats().OwnSeqCorrected != 1 {
		t.Fatalf("new own record sent %d times, stats %+v", sent, a.Stats())
	}
}

// TestCaps: the database and records have hard caps; hitting one is one
// notice per episode, and the records over it are dropped and counted.
func TestCaps(t *testing.T) {
	a := mustNew(t, Config{Key: labKey(1), MaxNodes: 3, MaxLinks: 2})
	a.AdjacencyUp(1, labKey(2), 10, labEpoch)
	var acts []Action
	for i := 2; i < 8; i++ {
		acts = append(acts, a.Receive(1, encRecord(t, Record{Origin: labKey(i), Seq: 1, Lifetime: 60}), labEpoch)...)
	}
	if n := notices(acts, NoticeNodeCap); n != 1 {
		t.Fatalf("%d node-cap notices, want 1", n)
	}
	if st := a.Stats(); st.DatabaseFull != 4 || len(a.db) != 3 {
		t.Fatalf("database full %d (want 4), size %d (want 3)", st.DatabaseFull, len(a.db))
	}
	three := sortLinks([]Link{{100, 1}, {200, 1}, {300, 1}})
	acts = nil
	for range 3 {
		acts = append(acts, a.Receive(1, encRecord(t, Record{Origin: labKey(2), Seq: 9, Lifetime: 60, Links: three}), labEpoch)...)
	}
	if n := notices(acts, NoticeLinkCap); n != 1 || a.Stats().Oversized != 3 {
		t.Fatalf("%d link-cap notices (want 1), oversized %d (want 3)", n, a.Stats().Oversized)
	}
}

// TestAgeing: a record whose origin stopped refreshing it leaves the
// database when its lifetime runs out, and the table with it.
func TestAgeing(t *testing.T) {
	a := mustNew(t, Config{Key: labKey(1)})
	kb, kc := labKey(2), labKey(3)
	a.AdjacencyUp(1, kb, 10, labEpoch)
	a.Receive(1, encRecord(t, Record{Origin: kb, Seq: 1, Lifetime: 600,
		Links: sortLinks([]Link{{a.ID(), 10}, {IDFromKey(kc), 10}})}), labEpoch)
	a.Receive(1, encRecord(t, Record{Origin: kc, Seq: 1, Lifetime: 5, Links: []Link{{IDFromKey(kb), 10}}}), labEpoch)
	settleMachine(a, labEpoch.Add(4*time.Second))
	if !a.Table().Reachable(IDFromKey(kc)) {
		t.Fatal("C not reachable before its record ages out")
	}
	a.Tick(labEpoch.Add(5 * time.Second))
	a.Tick(labEpoch.Add(5*time.Second + DefaultSPFHold))
	if a.Table().Reachable(IDFromKey(kc)) || a.Stats().Expired != 1 || len(a.Records(labEpoch)) != 2 {
		t.Fatalf("after 5 s: C reachable %v, expired %d, records %d", a.Table().Reachable(IDFromKey(kc)),
			a.Stats().Expired, len(a.Records(labEpoch)))
	}
}

// TestBadInputCounted: malformed messages and messages from ports with no
// adjacency are dropped and counted, and change nothing.
func TestBadInputCounted(t *testing.T) {
	a := mustNew(t, Config{Key: labKey(1)})
	a.AdjacencyUp(1, labKey(2), 10, labEpoch)
	a.Receive(1, []byte{Version, byte(MsgRecord), 1, 2, 3}, labEpoch)
	a.Receive(2, encRecord(t, Record{Origin: labKey(3), Seq: 1, Lifetime: 60}), labEpoch)
	if st := a.Stats(); st.Malformed != 1 || st.NotAdjacent != 1 || len(a.db) != 1 {
		t.Fatalf("stats %+v, database %d", st, len(a.db))
	}
}

// TestRestartLearnsBeforeComputing: a node that restarts into a converged
// mesh computes nothing until its neighbours' summaries and the records it
// asked for are in, so its first table already holds every node.
func TestRestartLearnsBeforeComputing(t *testing.T) {
	const n = 12
	l := newLab(t, n, 3)
	for i := range n {
		l.connect(i, (i+1)%n, 10, 1)
	}
	l.connect(0, 6, 10, 1)
	for i := range l.links {
		l.up(i)
	}
	l.settle(10 * time.Second)
	l.kill(3)
	l.settle(10 * time.Second)
	l.run(time.Second)
	l.restart(3)
	var first *Table
	start := l.steps
	for first == nil && l.steps-start < 300 {
		l.stepOnce()
		first = l.nodes[3].table
		if first.selfIdx < 0 {
			first = nil
		}
	}
	if first == nil {
		t.Fatal("the restarted node never computed")
	}
	if got := len(first.Nodes()); got != n {
		t.Fatalf("first table after restart holds %d nodes, want %d", got, n)
	}
	t.Logf("restarted node computed after %d steps (%v), with all %d nodes", l.steps-start,
		time.Duration(l.steps-start)*l.step, n)
	l.settle(10 * time.Second)
	l.expectShortest()
	l.expectBroadcastReach()
}

// TestLossyLab: with a third of all control messages lost, the periodic
// summaries repair the floods and the mesh converges.
func TestLossyLab(t *testing.T) {
	const n = 20
	l := newLab(t, n, 4)
	l.loss = 0.3
	rng := rand.New(rand.NewPCG(4, 4))
	for i := 1; i < n; i++ {
		l.connect(i, rng.IntN(i), uint32(1+rng.IntN(50)), 1+rng.IntN(3))
	}
	for range n {
		if a, b := rng.IntN(n), rng.IntN(n); a != b {
			l.connect(a, b, uint32(1+rng.IntN(50)), 1+rng.IntN(3))
		}
	}
	for i := range l.links {
		l.up(i)
	}
	l.check = l.noDuplicates
	// Lost messages mean settle cannot rely on an empty queue alone:
	// run for several summary intervals, then check.
	l.run(15 * time.Second)
	l.expectShortest()
	l.expectBroadcastReach()
	l.cut(0)
	l.run(10 * time.Second)
	l.expectShortest()
	l.expectBroadcastReach()
}
