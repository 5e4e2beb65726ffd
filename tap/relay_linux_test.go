package tap

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The relay lab: two "VMs" (namespaces vmA, vmB, one veth each) behind two
// Linux bridges in a "host" namespace, each bridge with a TAP, and a relay in
// the test process that copies frames between the TAPs with their headers:
//
//	vmA eth0 ── vA brA tapA ══ relay ══ tapB brB vB ── eth0 vmB
//	10.88.0.1                                           10.88.0.2
//
// A TCP transfer between the VMs proves that what ReadFrames returns and
// WriteFrame accepts is right, superframes and partial checksums included:
// the receiving kernel checks every checksum that is not left partial.
type relayLab struct {
	host, vmA, vmB *netns
	tapA, tapB     *Device
	ab, ba         relayStats // A to B, B to A
	wg             sync.WaitGroup
}

type relayStats struct {
	frames, superframes, bytes, maxLen atomic.Int64
}

func (s *relayStats) String() string {
	return fmt.Sprintf("%d frames, %d superframes, %d bytes, largest %d", s.frames.Load(), s.superframes.Load(), s.bytes.Load(), s.maxLen.Load())
}

func newRelayLab(tb testing.TB, offloadA, offloadB bool) *relayLab {
	tb.Helper()
	lab := &relayLab{host: newNetns(tb), vmA: newNetns(tb), vmB: newNetns(tb)}
	for _, side := range []struct {
		x    string
		vm   *netns
		addr string
	}{{"A", lab.vmA, "10.88.0.1/24"}, {"B", lab.vmB, "10.88.0.2/24"}} {
		lab.host.ip(tb, "link", "add", "br"+side.x, "type", "bridge")
		lab.host.ip(tb, "link", "set", "br"+side.x, "up")
		lab.host.ip(tb, "link", "add", "v"+side.x, "type", "veth", "peer", "name", "eth0", "netns", side.vm.name)
		lab.host.ip(tb, "link", "set", "v"+side.x, "master", "br"+side.x, "up")
		side.vm.ip(tb, "addr", "add", side.addr, "dev", "eth0")
		side.vm.ip(tb, "link", "set", "eth0", "up")
	}
	var errA, errB error
	lab.host.do(tb, func() {
		lab.tapA, errA = Open(Config{Name: "tapA", Bridge: "brA", Offload: offloadA})
		lab.tapB, errB = Open(Config{Name: "tapB", Bridge: "brB", Offload: offloadB})
	})
	if err := errors.Join(errA, errB); err != nil {
		if lab.tapA != nil {
			lab.tapA.Close()
		}
		tb.Fatal(err)
	}
	lab.wg.Add(2)
	go lab.relay(tb, lab.tapA, lab.tapB, &lab.ab)
	go lab.relay(tb, lab.tapB, lab.tapA, &lab.ba)
	tb.Cleanup(func() {
		lab.tapA.Close()
		lab.tapB.Close()
		lab.wg.Wait()
	})
	return lab
}

// relay copies frames with their headers from one TAP to the other until
// either is closed.
func (lab *relayLab) relay(tb testing.TB, from, to *Device, st *relayStats) {
	defer lab.wg.Done()
	bufs, hdrs, sizes := newBatch(from, 32)
	for {
		n, err := from.ReadFrames(bufs, hdrs, sizes)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				tb.Errorf("relay: %v", err)
			}
			return
		}
		for i := range n {
			size := int64(sizes[i])
			st.frames.Add(1)
			st.bytes.Add(size)
			if hdrs[i].IsGSO() {
				st.superframes.Add(1)
			}
			if size > st.maxLen.Load() {
				st.maxLen.Store(size)
			}
			if err := to.WriteFrame(&hdrs[i], bufs[i][:sizes[i]]); err != nil {
				if !errors.Is(err, os.ErrClosed) {
					tb.Errorf("relay: %v", err)
				}
				return
			}
		}
	}
}

// transfer sends size pseudo-random bytes over TCP from one VM to the
// other's addr and fails the test unless the SHA-256 of what arrived matches
// (or, without verify, unless as many bytes arrived: for benchmarks, where
// hashing would take CPU from the relay).
func (lab *relayLab) transfer(tb testing.TB, from, to *netns, addr string, size int64, verify bool) time.Duration {
	tb.Helper()
	var ln net.Listener
	var err error
	to.do(tb, func() { ln, err = net.Listen("tcp4", addr) })
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		sum [32]byte
		n   int64
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		h := sha256.New()
		var w io.Writer = h
		if !verify {
			w = io.Discard
		}
		n, err := io.CopyBuffer(w, c, make([]byte, 256<<10))
		got <- result{[32]byte(h.Sum(nil)), n, err}
	}()

	var c net.Conn
	from.do(tb, func() { c, err = net.DialTimeout("tcp4", addr, 5*time.Second) })
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	start := time.Now()
	h := sha256.New()
	src := io.LimitReader(rand.NewChaCha8([32]byte{1}), size)
	if verify {
		src = io.TeeReader(src, h)
	}
	if _, err := io.CopyBuffer(c, src, make([]byte, 256<<10)); err != nil {
		tb.Fatalf("send: %v", err)
	}
	c.(*net.TCPConn).CloseWrite()
	r := <-got
	elapsed := time.Since(start)
	if r.err != nil {
		tb.Fatalf("receive: %v after %d bytes", r.err, r.n)
	}
	if r.n != size || r.sum != [32]byte(h.Sum(nil)) {
		tb.Fatalf("received %d bytes with SHA-256 %x, sent %d with %x", r.n, r.sum, size, h.Sum(nil))
	}
	return elapsed
}

func TestRelay(t *testing.T) {
	const size = 8 << 20
	for _, tc := range []struct {
		name               string
		offloadA, offloadB bool
	}{
		{"offload to offload", true, true},
		{"offload to plain", true, false}, // A to B: superframes segmented in software
		{"plain to plain", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lab := newRelayLab(t, tc.offloadA, tc.offloadB)
			d := lab.transfer(t, lab.vmA, lab.vmB, "10.88.0.2:5001", size, true)
			t.Logf("A to B: %d MiB in %v (%.2f Gbit/s); relayed A to B: %v; B to A: %v",
				size>>20, d.Round(time.Millisecond), float64(size*8)/d.Seconds()/1e9, &lab.ab, &lab.ba)
			d = lab.transfer(t, lab.vmB, lab.vmA, "10.88.0.1:5002", size, true)
			t.Logf("B to A: %d MiB in %v (%.2f Gbit/s)", size>>20, d.Round(time.Millisecond), float64(size*8)/d.Seconds()/1e9)
			if tc.offloadA {
				if lab.ab.superframes.Load() == 0 || lab.ab.maxLen.Load() <= 1514 {
					t.Errorf("offload TAP handed over no superframes: %v", &lab.ab)
				}
			} else if lab.ab.superframes.Load() != 0 || lab.ab.maxLen.Load() > 1514 {
				t.Errorf("plain TAP handed over superframes: %v", &lab.ab)
			}
			if n := lab.tapA.Dropped() + lab.tapB.Dropped(); n != 0 {
				t.Errorf("%d frames dropped by WriteFrame", n)
			}
		})
	}
}

// BenchmarkRelay measures a TCP stream from vmA to vmB through the relay.
func BenchmarkRelay(b *testing.B) {
	for _, tc := range []struct {
		name               string
		offloadA, offloadB bool
	}{
		{"offload", true, true},
		{"offload-to-plain", true, false},
		{"plain", false, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			lab := newRelayLab(b, tc.offloadA, tc.offloadB)
			const chunk = 1 << 20
			b.SetBytes(chunk)
			b.ResetTimer()
			lab.transfer(b, lab.vmA, lab.vmB, "10.88.0.2:5001", int64(b.N)*chunk, false)
			b.StopTimer()
			if f := lab.ab.frames.Load(); f > 0 {
				b.ReportMetric(float64(lab.ab.superframes.Load())/float64(f), "gso-frac")
				b.ReportMetric(float64(lab.ab.bytes.Load())/float64(f), "B/read-frame")
			}
		})
	}
}
