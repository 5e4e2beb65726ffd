package lab

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/netns"
)

// relayPair makes namespaces a and b joined by a TAP at each end (10.99.0.1
// and .2) and runs a relay between them in this process with im.
func relayPair(t *testing.T, im Impairment, seed int64) (*netns.Lab, *relay) {
	t.Helper()
	l, err := netns.New("l2wglabr", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	for i, ns := range []string{"a", "b"} {
		if err := l.AddNS(ns); err != nil {
			t.Fatal(err)
		}
		if _, err := l.IP(ns, "tuntap", "add", "dev", "t0", "mode", "tap"); err != nil {
			t.Fatal(err)
		}
		if err := l.Up(ns, "t0"); err != nil {
			t.Fatal(err)
		}
		if err := l.Addr(ns, "t0", []string{"10.99.0.1/24", "10.99.0.2/24"}[i]); err != nil {
			t.Fatal(err)
		}
	}
	r, err := newRelay(relayConfig{Seed: seed, Links: []relayLink{{
		Name: "a-b", Impair: im,
		A: relayEnd{NetNS: l.Path("a"), Ifname: "t0"},
		B: relayEnd{NetNS: l.Path("b"), Ifname: "t0"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.close)
	return l, r
}

// pingStats pings 10.99.0.2 from a: count pings every interval.
func pingStats(t *testing.T, l *netns.Lab, count int, interval string) pingResult {
	t.Helper()
	out, _ := l.Exec("a", "ping", "-n", "-q", "-c", strconv.Itoa(count), "-i", interval, "-W", "1", "10.99.0.2")
	var r pingResult
	if m := rePingCount.FindSubmatch(out); m != nil {
		r.sent, _ = strconv.Atoi(string(m[1]))
		r.received, _ = strconv.Atoi(string(m[2]))
	}
	if m := rePingRTT.FindSubmatch(out); m != nil {
		r.avg, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	return r
}

// The relay tests run before the parallel lab runs start (they are not
// parallel themselves), so that the delays they measure are the relay's,
// not those of a machine busy with three labs.

func TestRelayDelayAndLoss(t *testing.T) {
	needRoot(t)
	im := Impairment{Delay: 10 * time.Millisecond, Jitter: time.Millisecond, Loss: 0.1}
	l, r := relayPair(t, im, 5)
	// Warm up ARP through the lossy link.
	l.Exec("a", "ping", "-c", "5", "-i", "0.05", "-W", "1", "10.99.0.2")
	res := pingStats(t, l, 300, "0.01")
	loss := 1 - float64(res.received)/float64(res.sent)
	t.Logf("10 ms +- 1 ms, 10%% loss each way: %d/%d answered (%.1f%% lost, expected 19%%), rtt %.1f ms (expected 20)", res.received, res.sent, 100*loss, res.avg)
	if res.sent != 300 || loss < 0.10 || loss > 0.30 {
		t.Errorf("lost %.1f%% of %d pings; want about 19%% (two directions at 10%%)", 100*loss, res.sent)
	}
	if res.avg < 19 || res.avg > 26 {
		t.Errorf("rtt %.1f ms, want about 20 ms", res.avg)
	}
	// A packet may still be in the relay's delay line when ping ends: wait
	// (bounded) until every packet taken in has left or been lost.
	st := r.stats()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); st = r.stats() {
		ab, ba := st.Directions["a-b a>b"], st.Directions["a-b b>a"]
		if ab.In == ab.Out+ab.Lost && ba.In == ba.Out+ba.Lost {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, d := range []string{"a-b a>b", "a-b b>a"} {
		s := st.Directions[d]
		if s.Lost == 0 || s.Out == 0 || s.In != s.Out+s.Lost {
			t.Errorf("%s: %+v; want losses, deliveries, and in = out + lost", d, s)
		}
	}
}

func TestRelayDuplicatesAndReorders(t *testing.T) {
	needRoot(t)
	im := Impairment{Delay: 2 * time.Millisecond, Duplicate: 0.2, Reorder: 0.2, ReorderDelay: 5 * time.Millisecond}
	l, r := relayPair(t, im, 6)
	out, _ := l.Exec("a", "ping", "-n", "-c", "100", "-i", "0.002", "-W", "1", "10.99.0.2")
	dups := strings.Count(string(out), "(DUP!)")
	t.Logf("20%% duplication each way: %d duplicate replies to 100 pings", dups)
	if dups < 15 {
		t.Errorf("%d duplicate replies to 100 pings; want about 40", dups)
	}
	st := r.stats().Directions["a-b a>b"]
	if st.Duplicated == 0 || st.Reordered == 0 || st.Out != st.In+st.Duplicated {
		t.Errorf("a>b: %+v; want duplicates, reorders, and out = in + duplicated", st)
	}
}

// TestRelayThroughput measures TCP through the relay: unimpaired, and with
// a rate limit, which it must hold.
func TestRelayThroughput(t *testing.T) {
	needRoot(t, "iperf3")
	for _, tt := range []struct {
		name   string
		im     Impairment
		lo, hi float64 // Mbit/s
	}{
		{"unimpaired", Impairment{}, 50, 1e6},
		{"20mbit", Impairment{Rate: 20e6, Queue: 50 * time.Millisecond}, 12, 21},
		{"delay 5ms", Impairment{Delay: 5 * time.Millisecond}, 20, 1e6},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l, r := relayPair(t, tt.im, 1)
			srv, err := l.Start("b", "iperf3", "-s", "-1", "-B", "10.99.0.2")
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Stop()
			var out []byte
			for range 50 { // until the server listens
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				out, err = l.ExecContext(ctx, "a", "iperf3", "-c", "10.99.0.2", "-t", "2", "-J")
				cancel()
				if err == nil {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err != nil {
				t.Fatalf("iperf3: %v", err)
			}
			var res struct {
				End struct {
					SumReceived struct {
						BitsPerSecond float64 `json:"bits_per_second"`
					} `json:"sum_received"`
				} `json:"end"`
			}
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatalf("iperf3 output: %v", err)
			}
			mbit := res.End.SumReceived.BitsPerSecond / 1e6
			t.Logf("%s: %.0f Mbit/s TCP through the relay", tt.name, mbit)
			if mbit < tt.lo || mbit > tt.hi {
				t.Errorf("%.1f Mbit/s, want between %.0f and %.0f; relay: %+v; iperf3 said: %s", mbit, tt.lo, tt.hi,
					r.stats().Directions, tail(string(out), 40))
			}
		})
	}
}
