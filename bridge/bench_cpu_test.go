//go:build linux

package bridge

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The CPU benchmarks are BenchmarkForwardUnicast, BenchmarkFlood and
// BenchmarkForwardUnicastTagged measured in the CPU time of the benchmark's
// thread (cpu-ns/frame) besides the wall time: on a machine shared with other
// work, wall time counts the time the thread waited for a core, and two
// builds compared side by side (old and new code, benchstat) differ by that
// noise more than by their code.

// threadCPU returns the CPU time the calling thread has used.
func threadCPU(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuBench runs input in a b.Loop on one locked thread and reports the CPU
// time per frame of a 64-frame batch.
func cpuBench(b *testing.B, input func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	input() // warm up: learn, fill the pool
	start := threadCPU(b)
	for b.Loop() {
		input()
	}
	cpu := threadCPU(b) - start
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*benchBatch), "cpu-ns/frame")
	reportPerFrame(b)
}

func BenchmarkCPUForwardUnicast(b *testing.B) {
	br, ids, _ := benchBridge(b, 4)
	frames := batchOf(benchBatch, fullFrame(b, host(3), host(1)))
	cpuBench(b, func() { br.Input(ids[0], frames) })
}

func BenchmarkCPUForwardUnicastTagged(b *testing.B) {
	br, ids, _ := benchBridge(b, 4)
	br.Input(ids[1], []Frame{{Data: fullTaggedFrame(b, host(1), host(9), 100)}})
	frames := batchOf(benchBatch, fullTaggedFrame(b, host(3), host(1), 100))
	cpuBench(b, func() { br.Input(ids[0], frames) })
}

func BenchmarkCPUFlood(b *testing.B) {
	br, ids, _ := benchBridge(b, 4)
	frames := batchOf(benchBatch, arpRequest(b, host(3), 0))
	cpuBench(b, func() { br.Input(ids[0], frames) })
}

// The VLAN-filtered twins (no counterpart in the code before VLANs): every
// port filters VLANs 100-199 and 300, or one flood port carries another VLAN.

func BenchmarkCPUForwardUnicastVLANFiltered(b *testing.B) {
	br, ids, _ := benchBridge(b, 4)
	vids, err := ParseVIDSet("100-199,300")
	if err != nil {
		b.Fatal(err)
	}
	for _, id := range ids {
		br.SetVLANFilter(id, VLANFilter{VIDs: vids})
	}
	br.Input(ids[1], []Frame{{Data: fullTaggedFrame(b, host(1), host(9), 100)}})
	frames := batchOf(benchBatch, fullTaggedFrame(b, host(3), host(1), 100))
	cpuBench(b, func() { br.Input(ids[0], frames) })
}

func BenchmarkCPUFloodVLANFiltered(b *testing.B) {
	br, ids, _ := benchBridge(b, 4)
	var other VIDSet
	other.Add(200)
	br.SetVLANFilter(ids[3], VLANFilter{VIDs: other})
	frames := batchOf(benchBatch, arpRequest(b, host(3), 100))
	cpuBench(b, func() { br.Input(ids[0], frames) })
}
