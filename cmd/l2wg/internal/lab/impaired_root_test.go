package lab

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestImpairedUnderlay (issue 6): two hypervisors with a VM each, joined by
// one underlay link through the relay with 5 % loss, 25 % reordering (5 ms),
// 1 % duplication and 20 ms +- 5 ms one way (testdata/impaired.toml). A TCP
// transfer of seeded pseudo-random bytes from vm1 to vm2 completes with the
// same SHA-256 at both ends, and every UDP datagram that reaches vm2 is
// byte-identical to one vm1 sent: none corrupted, none glued from the chunks
// of two frames (half the datagrams are 1472 bytes, 1514-byte frames that
// l2wg splits into two chunks, which the relay reorders).
//
// The relay's seed is logged; L2WG_IMPAIRED_SEED replays it and
// L2WG_IMPAIRED_MB sets the TCP transfer's size (default impairedTCPMB).
func TestImpairedUnderlay(t *testing.T) {
	needRoot(t)
	top, err := LoadFile(filepath.Join("testdata", "impaired.toml"))
	if err != nil {
		t.Fatal(err)
	}
	tl := newTestLab(t, "impaired")
	opt := Options{L2WG: tl.bin, StateRoot: tl.root, Name: tl.name}
	if s := os.Getenv("L2WG_IMPAIRED_SEED"); s != "" {
		seed, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("L2WG_IMPAIRED_SEED: %v", err)
		}
		opt.Seed = &seed
	}
	ctx := context.Background()
	l, err := Build(ctx, top, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Error(err)
		}
	})
	t.Logf("relay seed %d (replay: L2WG_IMPAIRED_SEED=%d); link %s", l.Seed, l.Seed, top.impair[0])
	if c := l.Converge(ctx, 60*time.Second); !c.OK {
		t.Fatalf("not converged after %s: %s", c.Took, c.Waiting)
	}
	vm2 := l.Plan.VM("vm2").Addr.Addr()
	if r := l.ping(ctx, "vm1", vm2, time.Now().Add(20*time.Second)); r.received == 0 {
		t.Fatalf("vm1 cannot ping vm2: %s", r.err)
	}
	if !t.Run("tcp", func(t *testing.T) { impairedTCP(t, l, vm2) }) {
		t.Log("relay:", relayCounters(l))
	}
	t.Run("udp", func(t *testing.T) { impairedUDP(t, l, vm2) })
	t.Log("relay:", relayCounters(l))
}

// impairedTCPMB is the default size of the TCP transfer, in MB (10^6 bytes).
// Not the 100 MB of the issue: through this link (about 10 % of 1514-byte
// frames lost, as each is two chunks, and a 40 ms round trip) TCP moves
// 6 to 12 Mbit/s on a 2-core machine, so 100 MB would take two minutes;
// 40 MB takes 30 to 50 s. L2WG_IMPAIRED_MB=100 runs the full size.
const impairedTCPMB = 40

// impairedTCP sends seeded pseudo-random bytes from vm1 to vm2 over TCP and
// compares the SHA-256 of what was sent and what arrived.
func impairedTCP(t *testing.T, l *Lab, vm2 netip.Addr) {
	size := int64(impairedTCPMB) * 1e6
	if s := os.Getenv("L2WG_IMPAIRED_MB"); s != "" {
		mb, err := strconv.ParseFloat(s, 64)
		if err != nil || mb <= 0 {
			t.Fatalf("L2WG_IMPAIRED_MB %q: want a positive number", s)
		}
		size = int64(mb * 1e6)
	}
	timeout := max(90*time.Second, time.Duration(size/400_000)*time.Second) // at least 3.2 Mbit/s
	addr := netip.AddrPortFrom(vm2, 5001).String()
	ln, err := l.NS.Listen("vm2", "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		n   int64
		sum [32]byte
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
		c.SetDeadline(time.Now().Add(timeout + 10*time.Second))
		h := sha256.New()
		n, err := io.Copy(h, c)
		var r result
		r.n, r.err = n, err
		copy(r.sum[:], h.Sum(nil))
		got <- r
	}()

	c, err := l.NS.DialTimeout("vm1", "tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.SetDeadline(start.Add(timeout))
	src := rand.NewChaCha8([32]byte{'l', '2', 'w', 'g', 6})
	h := sha256.New()
	buf := make([]byte, 64<<10)
	var sent int64
	lastLog := start
	for sent < size {
		b := buf[:min(int64(len(buf)), size-sent)]
		src.Read(b)
		h.Write(b)
		n, err := c.Write(b)
		sent += int64(n)
		if err != nil {
			t.Fatalf("after %d of %d bytes (%s): %v", sent, size, time.Since(start).Round(time.Millisecond), err)
		}
		if time.Since(lastLog) >= 10*time.Second {
			lastLog = time.Now()
			t.Logf("%5.1fs: %d MB written, %.1f Mbit/s", time.Since(start).Seconds(), sent/1e6, float64(sent)*8/time.Since(start).Seconds()/1e6)
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-got:
	case <-time.After(timeout + 15*time.Second):
		t.Fatal("receiver did not finish")
	}
	took := time.Since(start)
	want := h.Sum(nil)
	t.Logf("TCP vm1 -> vm2: %d bytes in %s, %.1f Mbit/s; sha256 sent %x, received %x", r.n, took.Round(time.Millisecond),
		float64(r.n)*8/took.Seconds()/1e6, want[:8], r.sum[:8])
	if r.err != nil {
		t.Fatalf("receiver: %v", r.err)
	}
	if r.n != size {
		t.Errorf("received %d bytes, sent %d", r.n, size)
	}
	if !bytes.Equal(r.sum[:], want) {
		t.Errorf("sha256 of what arrived %x, of what was sent %x", r.sum, want)
	}
}

// A test datagram: "L2WG", sequence number, SHA-256 of the rest, the rest.
const udpHeader = 4 + 4 + 32

// impairedUDP sends datagrams of random sizes (half of them 1472 bytes, the
// largest that fits a 1500-byte MTU) from vm1 to vm2 and checks that every
// one that arrives is one that was sent, byte for byte.
func impairedUDP(t *testing.T, l *Lab, vm2 netip.Addr) {
	const count = 2000
	rng := rand.New(rand.NewPCG(6, 1472))
	sent := make([][]byte, count)
	for i := range sent {
		size := 1472
		if rng.IntN(2) == 0 {
			size = udpHeader + rng.IntN(1472-udpHeader+1)
		}
		d := make([]byte, size)
		copy(d, "L2WG")
		binary.BigEndian.PutUint32(d[4:], uint32(i))
		for j := udpHeader; j < size; j++ {
			d[j] = byte(rng.Uint32())
		}
		sum := sha256.Sum256(d[udpHeader:])
		copy(d[8:], sum[:])
		sent[i] = d
	}

	addr := netip.AddrPortFrom(vm2, 5002)
	var rc *net.UDPConn
	if err := l.NS.Do("vm2", func() error {
		var err error
		rc, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		if err == nil {
			err = rc.SetReadBuffer(8 << 20)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var sc *net.UDPConn
	if err := l.NS.Do("vm1", func() error {
		var err error
		sc, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer sc.Close()

	type stats struct {
		received, distinct, dups, corrupt int
		bad                               []string
	}
	done := make(chan stats, 1)
	sendDone := make(chan struct{})
	go func() {
		var s stats
		seen := make([]int, count)
		buf := make([]byte, 2048)
		finished := false
		for {
			if finished {
				rc.SetReadDeadline(time.Now().Add(2 * time.Second)) // stragglers: 20 ms + reorder
			} else {
				select {
				case <-sendDone:
					finished = true
					continue
				default:
				}
				rc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			}
			n, err := rc.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					if finished {
						break
					}
					continue
				}
				s.bad = append(s.bad, err.Error())
				break
			}
			s.received++
			d := buf[:n]
			why := ""
			switch {
			case n < udpHeader || string(d[:4]) != "L2WG":
				why = "no header"
			case binary.BigEndian.Uint32(d[4:]) >= count:
				why = "sequence number out of range"
			default:
				seq := binary.BigEndian.Uint32(d[4:])
				sum := sha256.Sum256(d[udpHeader:])
				switch {
				case !bytes.Equal(sum[:], d[8:udpHeader]):
					why = fmt.Sprintf("#%d: payload does not match its SHA-256", seq)
				case !bytes.Equal(d, sent[seq]):
					why = fmt.Sprintf("#%d: %d bytes, sent %d", seq, n, len(sent[seq]))
				default:
					if seen[seq] == 0 {
						s.distinct++
					} else {
						s.dups++
					}
					seen[seq]++
				}
			}
			if why != "" {
				s.corrupt++
				if len(s.bad) < 10 {
					s.bad = append(s.bad, fmt.Sprintf("%s (%d bytes, starts %x)", why, n, d[:min(n, 16)]))
				}
			}
		}
		done <- s
	}()

	start := time.Now()
	var large int
	for i, d := range sent {
		if len(d) == 1472 {
			large++
		}
		if _, err := sc.Write(d); err != nil {
			t.Errorf("send #%d: %v", i, err)
		}
		time.Sleep(2 * time.Millisecond) // pacing: ~500 datagrams/s, ~3 Mbit/s, so loss comes from the link, not CPU contention
	}
	close(sendDone)
	s := <-done
	t.Logf("UDP vm1 -> vm2: sent %d datagrams (%d of 1472 bytes, two chunks each) in %s; received %d: %d distinct (%.1f%% lost), %d duplicates, %d not as sent",
		count, large, time.Since(start).Round(time.Millisecond), s.received, s.distinct, 100*(1-float64(s.distinct)/count), s.dups, s.corrupt)
	for _, b := range s.bad {
		t.Error(b)
	}
	if s.corrupt > 0 {
		t.Errorf("%d datagrams arrived that were not sent", s.corrupt)
	}
	// With 5 % loss per chunk a large datagram arrives with 90 % chance. The
	// property under test is above (nothing corrupted or glued); this floor
	// only shows the test measured something, and must not hinge on a busy CI
	// machine: fewer than half would mean the tunnel drops what it should carry.
	if s.distinct < count/2 {
		t.Errorf("only %d of %d datagrams arrived", s.distinct, count)
	}
}

// relayCounters reads the relay's counters (written every second).
func relayCounters(l *Lab) string {
	data, err := os.ReadFile(filepath.Join(l.Dir, "relay.stats.json"))
	if err != nil {
		return err.Error()
	}
	var st relayStats
	if err := json.Unmarshal(data, &st); err != nil {
		return err.Error()
	}
	var b bytes.Buffer
	for name, d := range st.Directions {
		fmt.Fprintf(&b, "\n  %s: in %d out %d lost %d duplicated %d reordered %d overflow %d", name, d.In, d.Out, d.Lost, d.Duplicated, d.Reordered, d.Overflow)
	}
	return b.String()
}
