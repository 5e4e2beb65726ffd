package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/l2wg/l2wg/tunnel"
)

// idleRSSBound is the peak RSS of an idle l2wg with idlePeerCount
// configured peers (issue 14).
const (
	idleRSSBound  = 32 << 20
	idlePeerCount = 50
)

// Settling of the idle node's memory: it has settled once its RSS has not
// grown by more than idleGrowth in idleFlat; it must within idleDeadline of
// its TAP forwarding.
const (
	idleFlat     = 5 * time.Second
	idleGrowth   = 512 << 10
	idleDeadline = 45 * time.Second
)

// TestE2EIdleMemoryBound: an l2wg with 50 configured peers that never
// answer, as the bench's idle node (endpoints on loopback addresses of its
// namespace where no WireGuard of theirs listens, so it keeps trying
// handshakes), settles at a peak RSS (VmHWM) under the bound. Settled: the
// TAP forwards and the RSS has stopped growing. The garbage of the idle
// node's polls and handshake attempts piles up until a collection, and
// the collector waits for the heap to double what it found live: if
// wireguard-go's packet buffers (384 held by its readers, mostly never
// written) count as live, the node grew to 36-39 MB.
func TestE2EIdleMemoryBound(t *testing.T) {
	tp := newTopo(t)
	tp.addHV("hv1")
	tp.makeKeys()
	var peers []peerConf
	for i := range idlePeerCount {
		var priv [32]byte
		if _, err := rand.Read(priv[:]); err != nil {
			t.Fatal(err)
		}
		pub := tunnel.PublicKey(priv)
		peers = append(peers, peerConf{
			Name: fmt.Sprintf("p%d", i), PublicKey: base64.StdEncoding.EncodeToString(pub[:]),
			Endpoint: fmt.Sprintf("127.0.0.%d:%d", 2+i, l2wgPort),
		})
	}
	hv := tp.startL2WG("hv1", nil, peers...)

	// The TAP forwards 0.3 s after start with the mesh (the default), 8 s
	// with a spanning tree (short timers): from then on the node floods
	// its control frames towards every peer.
	var st showStatus
	var err error
	if !poll(30*time.Second, 500*time.Millisecond, func() bool {
		st, err = tp.status("hv1")
		return err == nil && portState(st, "l2wg0") == "forwarding"
	}) {
		t.Fatalf("the TAP never forwards: state %q, %v", portState(st, "l2wg0"), err)
	}

	// No show during the observation: it would add garbage of its own.
	var samples []string
	type sample struct {
		at  time.Time
		rss int64
	}
	var window []sample
	start := time.Now()
	settled := poll(idleDeadline, 500*time.Millisecond, func() bool {
		tp.checkAlive()
		now, rss := time.Now(), procStatusKB(t, hv.Proc.PID, "VmRSS:")
		window = append(window, sample{now, rss})
		if len(samples) < 200 {
			samples = append(samples, fmt.Sprintf("%.0fs %.1f", now.Sub(start).Seconds(), float64(rss)/(1<<20)))
		}
		for len(window) > 1 && now.Sub(window[1].at) >= idleFlat {
			window = window[1:]
		}
		if now.Sub(window[0].at) < idleFlat {
			return false
		}
		lo := window[0].rss
		for _, s := range window {
			lo = min(lo, s.rss)
		}
		return rss-lo <= idleGrowth
	})
	hwm := vmHWM(t, hv.Proc.PID)
	t.Logf("VmRSS (MiB) after the TAP forwards: %s", strings.Join(samples, ", "))
	t.Logf("VmHWM %.1f MiB (bound %d MiB), settled %v after %v", float64(hwm)/(1<<20), idleRSSBound>>20, settled, time.Since(start).Round(time.Second))

	st, err = tp.status("hv1")
	tp.must(err)
	if len(st.Peers) != idlePeerCount {
		t.Fatalf("l2wg shows %d peers; want %d", len(st.Peers), idlePeerCount)
	}
	for _, p := range st.Peers {
		if p.Live || p.TxBytes == 0 {
			t.Errorf("peer %s: live %v, %d bytes sent; want no session and handshake attempts sent", p.Name, p.Live, p.TxBytes)
		}
	}
	if !settled {
		t.Errorf("l2wg's RSS still grew by more than %d KiB in %v after %v idle", idleGrowth>>10, idleFlat, idleDeadline)
	}
	if hwm > idleRSSBound {
		t.Errorf("idle with %d peers, l2wg's VmHWM is %.1f MiB; want at most %d MiB", idlePeerCount, float64(hwm)/(1<<20), idleRSSBound>>20)
	}
}

// procStatusKB returns field (as "VmRSS:") of /proc/pid/status in bytes.
func procStatusKB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("%s of %d: %q: %v", field, pid, v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
