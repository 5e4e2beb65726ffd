package mesh

import (
	"math/rand/v2"
	"testing"
	"time"
)

// randomLab wires n nodes into a connected random graph whose nodes have
// degree 3 to 8 (a random tree first, then links between nodes still below
// their drawn degree), costs 1 to 100 and delays of 1 to 3 steps.
func randomLab(t testing.TB, n int, seed uint64) *lab {
	l := newLab(t, n, seed)
	rng := l.rng
	want := make([]int, n)
	deg := make([]int, n)
	for i := range want {
		want[i] = 3 + rng.IntN(6)
	}
	type pair struct{ a, b int }
	seen := map[pair]bool{}
	link := func(a, b int) bool {
		if a == b {
			return false
		}
		if a > b {
			a, b = b, a
		}
		if seen[pair{a, b}] {
			return false
		}
		seen[pair{a, b}] = true
		deg[a]++
		deg[b]++
		l.connect(a, b, uint32(1+rng.IntN(100)), 1+rng.IntN(3))
		return true
	}
	for i := 1; i < n; i++ {
		link(i, rng.IntN(i))
	}
	var open []int
	for tries := 0; tries < 20*n; tries++ {
		open = open[:0]
		for i := range n {
			if deg[i] < want[i] {
				open = append(open, i)
			}
		}
		if len(open) < 2 {
			break
		}
		a := open[rng.IntN(len(open))]
		b := open[rng.IntN(len(open))]
		if deg[b] >= 8 || deg[a] >= 8 {
			continue
		}
		link(a, b)
	}
	for i := range l.links {
		l.up(i)
	}
	return l
}

// TestLabChurn: seeded random cuts, heals, kills and restarts for 60 s of
// lab time on a 30-node mesh with 10 % message loss; after every step a
// broadcast from every node reaches each node at most once. At the end
// everything heals and every pair takes a shortest path.
func TestLabChurn(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if testing.Short() {
		seed = 7
	}
	t.Logf("seed %d (replay: set it here)", seed)
	l := randomLab(t, 30, seed)
	l.loss = 0.1
	l.check = l.noDuplicates
	rng := rand.New(rand.NewPCG(seed, 99))
	l.run(5 * time.Second)
	for end := l.now.Add(60 * time.Second); l.now.Before(end); {
		l.run(time.Duration(rng.IntN(1000)) * time.Millisecond)
		switch i := rng.IntN(len(l.links)); rng.IntN(4) {
		case 0:
			l.cut(i)
		case 1:
			l.up(i)
		case 2:
			if n := rng.IntN(len(l.nodes)); !l.nodes[n].dead {
				l.kill(n)
			}
		case 3:
			for n, nd := range l.nodes {
				if nd.dead {
					l.restart(n)
					break
				}
			}
		}
	}
	for n, nd := range l.nodes {
		if nd.dead {
			l.restart(n)
		}
	}
	for i := range l.links {
		l.up(i)
	}
	l.run(10 * time.Second)
	l.expectShortest()
	l.expectBroadcastReach()
}

// TestLab1000: a 1,000-node random mesh converges from a cold start, and
// reconverges after a link failure on a shortest path for every pair.
func TestLab1000(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("1,000 machines: skipped with -short and under the race detector (BenchmarkReconverge runs it)")
	}
	l := randomLab(t, 1000, 11)
	start := time.Now()
	rounds := l.settle(60 * time.Second)
	t.Logf("1000 nodes, %d links: cold start converged in %d steps (%v lab time), %v wall, %d messages",
		len(l.links), rounds, time.Duration(rounds)*l.step, time.Since(start).Round(time.Millisecond), l.sent)
	l.expectShortest()
	sent := l.sent
	start = time.Now()
	l.cut(len(l.links) / 2)
	rounds = l.settle(60 * time.Second)
	t.Logf("link cut: reconverged in %d steps (%v lab time), %v wall, %d messages",
		rounds, time.Duration(rounds)*l.step, time.Since(start).Round(time.Millisecond), l.sent-sent)
	l.expectShortest()
	l.expectBroadcastReach()
}
