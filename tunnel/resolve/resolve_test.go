package resolve

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeDNS answers from a table and counts the lookups by name.
type fakeDNS struct {
	mu      sync.Mutex
	answers map[string][]netip.Addr
	fail    map[string]error
	lookups map[string]int
}

func newFakeDNS() *fakeDNS {
	return &fakeDNS{answers: map[string][]netip.Addr{}, fail: map[string]error{}, lookups: map[string]int{}}
}

func (d *fakeDNS) set(host string, addrs ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.answers[host] = nil
	for _, a := range addrs {
		d.answers[host] = append(d.answers[host], netip.MustParseAddr(a))
	}
	delete(d.fail, host)
}

func (d *fakeDNS) count(host string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lookups[host]
}

func (d *fakeDNS) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if network != "ip" {
		return nil, errors.New("unexpected network " + network)
	}
	d.lookups[host]++
	if err := d.fail[host]; err != nil {
		return nil, err
	}
	if a, ok := d.answers[host]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}

// fakeDevice holds peers and applies SetEndpoint to them, as WireGuard would.
type fakeDevice struct {
	mu    sync.Mutex
	peers []Peer
	sets  []netip.AddrPort
	set   chan struct{}
}

func (d *fakeDevice) Peers() ([]Peer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Peer(nil), d.peers...), nil
}

func (d *fakeDevice) SetEndpoint(key [32]byte, ep netip.AddrPort) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range d.peers {
		if d.peers[i].Key == key {
			d.peers[i].Current = ep
			d.sets = append(d.sets, ep)
			if d.set != nil {
				select {
				case d.set <- struct{}{}:
				default:
				}
			}
			return nil
		}
	}
	return errors.New("no such peer")
}

func (d *fakeDevice) current(i int) netip.AddrPort {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.peers[i].Current
}

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func logTo(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func TestStalePeerFollowsChangedAnswer(t *testing.T) {
	dns := newFakeDNS()
	dns.set("ottawa.example", "198.51.100.7")
	dev := &fakeDevice{peers: []Peer{{Key: [32]byte{1}, Name: "ottawa", Endpoint: "ottawa.example:51820",
		Current: netip.MustParseAddrPort("198.51.100.7:51820"), LastHandshake: t0}}}
	var logs bytes.Buffer
	r := New(dev, Config{Resolver: dns, Logger: logTo(&logs)})

	// Fresh handshake: no lookup at all, even though the answer changed.
	dns.set("ottawa.example", "203.0.113.9")
	if n := r.Check(context.Background(), t0.Add(DefaultStale), false); n != 0 || dns.count("ottawa.example") != 0 {
		t.Fatalf("handshake %s old: %d changes, %d lookups; want none", DefaultStale, n, dns.count("ottawa.example"))
	}
	// Stale: looked up, moved.
	if n := r.Check(context.Background(), t0.Add(DefaultStale+time.Second), false); n != 1 {
		t.Fatalf("stale peer: %d changes, want 1", n)
	}
	if got, want := dev.current(0), netip.MustParseAddrPort("203.0.113.9:51820"); got != want {
		t.Fatalf("endpoint %s, want %s", got, want)
	}
	if !strings.Contains(logs.String(), "level=INFO msg=\"peer endpoint re-resolved\" peer=ottawa") ||
		!strings.Contains(logs.String(), "from=198.51.100.7:51820 to=203.0.113.9:51820") {
		t.Errorf("info log missing: %q", logs.String())
	}
	// Same answer again: looked up, nothing set.
	if n := r.Check(context.Background(), t0.Add(time.Hour), false); n != 0 || len(dev.sets) != 1 {
		t.Fatalf("unchanged answer: %d changes, %d sets; want 0, 1", n, len(dev.sets))
	}
	if dns.count("ottawa.example") != 2 {
		t.Errorf("%d lookups, want 2", dns.count("ottawa.example"))
	}
}

func TestNeverHandshakedIsStale(t *testing.T) {
	dns := newFakeDNS()
	dns.set("paris.example", "192.0.2.1")
	dev := &fakeDevice{peers: []Peer{{Key: [32]byte{2}, Name: "paris", Endpoint: "paris.example:4000"}}}
	r := New(dev, Config{Resolver: dns, Logger: slog.New(slog.DiscardHandler)})
	if n := r.Check(context.Background(), t0, false); n != 1 || dev.current(0) != netip.MustParseAddrPort("192.0.2.1:4000") {
		t.Fatalf("%d changes, endpoint %s; want 1, 192.0.2.1:4000", n, dev.current(0))
	}
}

func TestAddressesAndEmptyEndpointsAreLeftAlone(t *testing.T) {
	dns := newFakeDNS()
	dev := &fakeDevice{peers: []Peer{
		{Key: [32]byte{1}, Name: "v4", Endpoint: "192.0.2.1:51820"},
		{Key: [32]byte{2}, Name: "v6", Endpoint: "[2001:db8::1]:51820"},
		{Key: [32]byte{3}, Name: "dialer"},
		{Key: [32]byte{4}, Name: "garbage", Endpoint: "no-port"},
	}}
	r := New(dev, Config{Resolver: dns, Logger: slog.New(slog.DiscardHandler)})
	if n := r.Check(context.Background(), t0, true); n != 0 || len(dns.lookups) != 0 {
		t.Fatalf("%d changes, lookups %v; want none", n, dns.lookups)
	}
}

func TestKeepsCurrentAmongAnswersElsePrefersIPv4(t *testing.T) {
	dns := newFakeDNS()
	dns.set("rr.example", "2001:db8::5", "192.0.2.5", "192.0.2.6")
	dev := &fakeDevice{peers: []Peer{
		{Key: [32]byte{1}, Name: "on-second", Endpoint: "rr.example:1", Current: netip.MustParseAddrPort("192.0.2.6:1")},
		{Key: [32]byte{2}, Name: "elsewhere", Endpoint: "rr.example:1", Current: netip.MustParseAddrPort("192.0.2.200:1")},
	}}
	r := New(dev, Config{Resolver: dns, Logger: slog.New(slog.DiscardHandler)})
	if n := r.Check(context.Background(), t0, false); n != 1 {
		t.Fatalf("%d changes, want 1", n)
	}
	if got := dev.current(0); got != netip.MustParseAddrPort("192.0.2.6:1") {
		t.Errorf("peer on a current answer moved to %s", got)
	}
	if got := dev.current(1); got != netip.MustParseAddrPort("192.0.2.5:1") {
		t.Errorf("moved peer went to %s, want the first IPv4 answer 192.0.2.5:1", got)
	}
	dns.set("v6only.example", "2001:db8::7")
	dev.peers = append(dev.peers, Peer{Key: [32]byte{3}, Name: "v6", Endpoint: "v6only.example:2"})
	r.Check(context.Background(), t0, false)
	if got := dev.current(2); got != netip.MustParseAddrPort("[2001:db8::7]:2") {
		t.Errorf("IPv6-only name: endpoint %s", got)
	}
}

func TestFailedLookupKeepsEndpointAndRetries(t *testing.T) {
	dns := newFakeDNS()
	dns.fail["gone.example"] = errors.New("SERVFAIL")
	cur := netip.MustParseAddrPort("192.0.2.1:9")
	dev := &fakeDevice{peers: []Peer{{Key: [32]byte{1}, Name: "gone", Endpoint: "gone.example:9", Current: cur}}}
	r := New(dev, Config{Resolver: dns, Logger: slog.New(slog.DiscardHandler)})
	if n := r.Check(context.Background(), t0, false); n != 0 || dev.current(0) != cur {
		t.Fatalf("failed lookup: %d changes, endpoint %s", n, dev.current(0))
	}
	dns.set("gone.example") // an empty answer is no answer either
	if n := r.Check(context.Background(), t0, false); n != 0 || dev.current(0) != cur {
		t.Fatalf("empty answer: %d changes, endpoint %s", n, dev.current(0))
	}
	dns.set("gone.example", "192.0.2.2")
	if n := r.Check(context.Background(), t0, false); n != 1 || dev.current(0) != netip.MustParseAddrPort("192.0.2.2:9") {
		t.Fatalf("answer back: %d changes, endpoint %s", n, dev.current(0))
	}
}

func TestAllIgnoresFreshHandshakes(t *testing.T) {
	dns := newFakeDNS()
	dns.set("moved.example", "192.0.2.3")
	dev := &fakeDevice{peers: []Peer{{Key: [32]byte{1}, Name: "moved", Endpoint: "moved.example:9",
		Current: netip.MustParseAddrPort("192.0.2.1:9"), LastHandshake: t0}}}
	r := New(dev, Config{Resolver: dns, Logger: slog.New(slog.DiscardHandler)})
	if n := r.Check(context.Background(), t0, false); n != 0 {
		t.Fatalf("fresh peer changed by a periodic check")
	}
	if n := r.Check(context.Background(), t0, true); n != 1 || dev.current(0) != netip.MustParseAddrPort("192.0.2.3:9") {
		t.Fatalf("reload: %d changes, endpoint %s", n, dev.current(0))
	}
}

func TestConfigDefaultsAndShortStale(t *testing.T) {
	r := New(&fakeDevice{}, Config{})
	if r.Stale() != DefaultStale || r.Interval() != DefaultInterval {
		t.Errorf("defaults: stale %s interval %s", r.Stale(), r.Interval())
	}
	r = New(&fakeDevice{}, Config{Stale: 2 * time.Second})
	if r.Interval() != 500*time.Millisecond {
		t.Errorf("stale 2s: interval %s, want 500ms", r.Interval())
	}
	r = New(&fakeDevice{}, Config{Stale: 2 * time.Second})
	stale := Peer{LastHandshake: t0}
	if r.isStale(stale, t0.Add(2*time.Second)) || !r.isStale(stale, t0.Add(2*time.Second+1)) {
		t.Error("stale is not 'older than the threshold'")
	}
}

func TestRunChecksOnTickAndKick(t *testing.T) {
	dns := newFakeDNS()
	dns.set("kick.example", "192.0.2.4")
	dev := &fakeDevice{set: make(chan struct{}, 1), peers: []Peer{{Key: [32]byte{1}, Name: "kick", Endpoint: "kick.example:9",
		Current: netip.MustParseAddrPort("192.0.2.1:9"), LastHandshake: time.Now().Add(time.Hour)}}}
	// A handshake in the future is fresh for the whole test and the interval
	// is long: only the kick can move the peer.
	r := New(dev, Config{Resolver: dns, Interval: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	r.Kick()
	select {
	case <-dev.set:
	case <-time.After(10 * time.Second):
		t.Fatal("kick did not re-resolve")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return when its context ended")
	}

	// A stale peer and a short interval: the ticker alone moves it.
	dns.set("kick.example", "192.0.2.8")
	dev.mu.Lock()
	dev.peers[0].LastHandshake = time.Time{}
	dev.mu.Unlock()
	r = New(dev, Config{Resolver: dns, Interval: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	select {
	case <-dev.set:
	case <-time.After(10 * time.Second):
		t.Fatal("ticker did not re-resolve a stale peer")
	}
	if got := dev.current(0); got != netip.MustParseAddrPort("192.0.2.8:9") {
		t.Errorf("endpoint %s", got)
	}
}
