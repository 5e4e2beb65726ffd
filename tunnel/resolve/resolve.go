// Package resolve re-resolves peer endpoints given as DNS names, so that a
// peer whose address changes (a dynamic address behind a DNS name) is found
// again without a restart.
//
// It does what wireguard-tools' reresolve-dns.sh does from a timer: a peer
// whose latest handshake is older than the stale threshold (135 s by default:
// a session that carries traffic, as l2wg's probes make every session do,
// handshakes again every 120 s) or that never completed one has its
// endpoint's name looked up again, and a changed
// answer becomes the peer's endpoint. A reload looks up every name, stale or
// not (Kick). Endpoints given as addresses are never touched, and a peer
// whose current endpoint is still among the answers keeps it, so round-robin
// DNS does not make it flap.
//
// The core (Check) takes the time as an argument and the lookups through a
// Resolver, so tests run it with a fake clock and a fake DNS.
package resolve

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Defaults, as reresolve-dns.sh and its systemd timer.
const (
	DefaultStale    = 135 * time.Second
	DefaultInterval = 30 * time.Second
	lookupTimeout   = 5 * time.Second
)

// Resolver looks a name up; *net.Resolver satisfies it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Peer is one peer as the re-resolver sees it.
type Peer struct {
	Key           [32]byte
	Name          string
	Endpoint      string         // as configured: "host:port"; empty if none
	Current       netip.AddrPort // WireGuard's endpoint now; zero if none
	LastHandshake time.Time      // zero: never
}

// Device is what the re-resolver reads and acts on (Tunnel adapts a
// *tunnel.Tunnel).
type Device interface {
	Peers() ([]Peer, error)
	SetEndpoint(key [32]byte, ep netip.AddrPort) error
}

// Config configures a Reresolver. The zero value is usable.
type Config struct {
	// Stale is how old a peer's latest handshake must be before its name is
	// looked up again; zero or less: DefaultStale.
	Stale time.Duration
	// Interval is how often Run checks; zero or less: DefaultInterval, or
	// Stale/4 if that is shorter.
	Interval time.Duration
	Resolver Resolver     // nil: net.DefaultResolver
	Logger   *slog.Logger // nil: slog.Default()
}

// Reresolver re-resolves the DNS endpoints of a Device's peers.
type Reresolver struct {
	dev  Device
	cfg  Config
	log  *slog.Logger
	kick chan struct{}
}

// New makes a Reresolver for dev; Run drives it.
func New(dev Device, cfg Config) *Reresolver {
	if cfg.Stale <= 0 {
		cfg.Stale = DefaultStale
	}
	if cfg.Interval <= 0 {
		cfg.Interval = min(DefaultInterval, cfg.Stale/4)
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Reresolver{dev: dev, cfg: cfg, log: cfg.Logger, kick: make(chan struct{}, 1)}
}

// Stale is the threshold in use.
func (r *Reresolver) Stale() time.Duration { return r.cfg.Stale }

// Interval is how often Run checks.
func (r *Reresolver) Interval() time.Duration { return r.cfg.Interval }

// Kick asks Run to look up every name now, stale or not (a reload). It
// does not block; kicks while one is pending are one.
func (r *Reresolver) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run checks every Interval, and on Kick, until ctx is done.
func (r *Reresolver) Run(ctx context.Context) {
	tick := time.NewTicker(r.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			r.Check(ctx, now, false)
		case <-r.kick:
			r.Check(ctx, time.Now(), true)
		}
	}
}

// Check looks up the name of every peer whose handshake is stale at now
// (every peer with a name if all) and sets the endpoints whose answer
// changed. It returns how many it changed.
func (r *Reresolver) Check(ctx context.Context, now time.Time, all bool) int {
	peers, err := r.dev.Peers()
	if err != nil {
		r.log.Warn("re-resolve endpoints: read peers", "err", err)
		return 0
	}
	changed := 0
	for _, p := range peers {
		host, port, ok := dnsName(p.Endpoint)
		if !ok || (!all && !r.isStale(p, now)) {
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
		addrs, err := r.cfg.Resolver.LookupNetIP(lctx, "ip", host)
		cancel()
		if err != nil || len(addrs) == 0 {
			r.log.Debug("re-resolve endpoint: no answer", "peer", p.Name, "endpoint", p.Endpoint, "err", err)
			continue
		}
		ep, keep := choose(addrs, port, p.Current)
		if keep {
			continue
		}
		if err := r.dev.SetEndpoint(p.Key, ep); err != nil {
			r.log.Warn("re-resolve endpoint", "peer", p.Name, "err", err)
			continue
		}
		changed++
		r.log.Info("peer endpoint re-resolved", "peer", p.Name, "endpoint", p.Endpoint, "from", p.Current, "to", ep)
	}
	return changed
}

// isStale reports whether p's latest handshake is older than the threshold
// (or never happened), as reresolve-dns.sh decides.
func (r *Reresolver) isStale(p Peer, now time.Time) bool {
	return p.LastHandshake.IsZero() || now.Sub(p.LastHandshake) > r.cfg.Stale
}

// dnsName splits a configured endpoint whose host is a name (not an
// address literal) into host and port.
func dnsName(endpoint string) (host string, port uint16, ok bool) {
	h, ps, err := net.SplitHostPort(endpoint)
	if err != nil || h == "" {
		return "", 0, false
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return "", 0, false
	}
	n, err := strconv.ParseUint(ps, 10, 16)
	if err != nil || n == 0 {
		return "", 0, false
	}
	return h, uint16(n), true
}

// choose picks the endpoint among a name's answers: the current one if it
// is still there (keep), otherwise the first IPv4 address (as wg(8) and
// the first resolution prefer), otherwise the first.
func choose(addrs []netip.Addr, port uint16, current netip.AddrPort) (ep netip.AddrPort, keep bool) {
	best := addrs[0].Unmap()
	found4 := best.Is4()
	for _, a := range addrs {
		a = a.Unmap()
		if netip.AddrPortFrom(a, port) == current {
			return current, true
		}
		if !found4 && a.Is4() {
			best, found4 = a, true
		}
	}
	return netip.AddrPortFrom(best, port), false
}
