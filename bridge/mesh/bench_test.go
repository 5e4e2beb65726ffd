package mesh

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

// BenchmarkSPF: one shortest-path run on random graphs of degree 3 to 8,
// and one full table computation (graph, SPF from self and from each
// neighbour, the table) as a node does after a change.
func BenchmarkSPF(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		rng := rand.New(rand.NewPCG(uint64(n), 2))
		recs := randomRecords(rng, n, 3+rng.IntN(6), []uint32{1, 10, 20, 40, 100})
		g := buildGraph(recs)
		b.Run(fmt.Sprintf("run/%d", n), func(b *testing.B) {
			var sp spf
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				sp.run(g, int32(i%n))
			}
		})
		b.Run(fmt.Sprintf("table/%d", n), func(b *testing.B) {
			var sp spf
			self := g.ids[0]
			ports := map[NodeID]Port{}
			nbr, _ := g.edges(0)
			for k, w := range nbr {
				ports[g.ids[w]] = Port(k + 1)
			}
			b.ReportAllocs()
			for b.Loop() {
				buildTable(buildGraph(recs), self, ports, &sp)
			}
		})
	}
}

// BenchmarkReconverge: a random mesh of n nodes converges, then one link
// fails; reported: lab steps (10 ms each, one link delay 1 to 3 steps) until
// the last node changed its table, control messages, and the wall time of
// the reconvergence (the simulation of every node, per op). mem-B/node is the
// heap a converged node holds (database, tables, scratch).
func BenchmarkReconverge(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			if n == 1000 && testing.Short() {
				b.Skip("-short")
			}
			var steps, msgs, wall float64
			var mem float64
			runs := 0
			for b.Loop() {
				b.StopTimer()
				var before runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				l := randomLab(b, n, uint64(runs))
				l.settle(60 * time.Second)
				var after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&after)
				mem += float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
				sent := l.sent
				b.StartTimer()
				start := time.Now()
				l.cut(runs % len(l.links))
				steps += float64(l.settle(60 * time.Second))
				wall += float64(time.Since(start).Microseconds())
				msgs += float64(l.sent - sent)
				runs++
				runtime.KeepAlive(l)
			}
			r := float64(runs)
			b.ReportMetric(steps/r, "steps")
			b.ReportMetric(msgs/r, "msgs")
			b.ReportMetric(wall/r/1000, "wall-ms")
			b.ReportMetric(mem/r, "mem-B/node")
		})
	}
}

// BenchmarkLookup: the data path's table reads.
func BenchmarkLookup(b *testing.B) {
	rng := rand.New(rand.NewPCG(1000, 2))
	recs := randomRecords(rng, 1000, 5, []uint32{1, 10, 20})
	g := buildGraph(recs)
	ports := map[NodeID]Port{}
	nbr, _ := g.edges(0)
	for k, w := range nbr {
		ports[g.ids[w]] = Port(k + 1)
	}
	var sp spf
	t, _ := buildTable(g, g.ids[0], ports, &sp)
	ids := t.Nodes()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id := ids[i%len(ids)]
		t.NextHop(id)
		t.AcceptMulti(id, 1)
		t.MultiTargets(id)
	}
}

// BenchmarkHeader: encode and decode of the data-plane header.
func BenchmarkHeader(b *testing.B) {
	buf := make([]byte, HeaderLen)
	h := Header{HopLimit: 9, Ingress: 3, Egress: 4}
	b.ReportAllocs()
	for b.Loop() {
		h.Put(buf)
		DecodeHeader(buf)
	}
}
