package tunnel

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/curve25519"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/frag"
)

// DefaultMTU is the tunnel MTU: the largest inner packet wireguard-go sends.
// 1420 + 80 bytes of WireGuard, UDP and IPv6 overhead fit a 1500-byte underlay.
const DefaultMTU = 1420

// MinMTU is the smallest tunnel MTU l2wg accepts (IPv4's minimum datagram).
const MinMTU = 576

// Switch is what the tunnel needs of the learning switch.
type Switch interface {
	AddPort(name string, p bridge.Port) bridge.PortID
	RemovePort(id bridge.PortID)
	Input(in bridge.PortID, frames []bridge.Frame)
}

// Config configures a Tunnel.
type Config struct {
	PrivateKey [32]byte
	ListenPort int // 0: a random port
	MTU        int // 0: DefaultMTU
	Reassembly frag.Config
	// Bind is wireguard-go's UDP transport; nil means conn.NewDefaultBind()
	// (sendmmsg/recvmmsg with UDP GSO/GRO). Tests pass conn/bindtest binds.
	Bind   conn.Bind
	Logger *slog.Logger
	// ProbeInterval is how often each peer is probed for liveness and round
	// trip time; 0: DefaultProbeInterval.
	ProbeInterval time.Duration
	// Buffers bounds the packet buffers wireguard-go may have in use at once
	// (each is 64 KiB), and with them the packets in flight and most of the
	// memory of a busy node; 0: DefaultBuffers. Raised to MinBuffers(Bind)
	// if lower. See MemoryLimit for the process's memory limit.
	Buffers int
}

// DefaultBuffers is the default bound on wireguard-go's packet buffers:
// MinBuffers of the default UDP bind, 768 of 64 KiB, 48 MiB, mapped
// outside the Go heap (see MemoryLimit), where RSS counts the pages
// written. The readers hold 384 between reads (128 of them, the IPv6
// reader's, never touched while no IPv6 packet arrives); the rest carry
// packets in flight. Under
// TCP the buffers fill up to the bound (the sender outruns the encryption
// until the pool makes the tunnel's reader wait), so the bound is both the
// node's memory and its queue: 1024 measured the same throughput within
// the noise of the shared machine (four interleaved quick bench runs), at
// 77-79 MB of peak RSS instead of 58-62; 896 at 69 MB.
const DefaultBuffers = 768

// MinBuffers is the least Config.Buffers that lets wireguard-go work with
// bind. Each of its readers (the tunnel's, and one per receive function of
// the bind: two for the UDP bind, IPv4 and IPv6) holds a batch of buffers
// and takes a fresh one for every packet it has read before it hands that
// batch on, so it holds at most two batches at once. With this many, the
// readers cannot all wait with every buffer in their hands: some are in
// flight, and packets in flight never wait for a buffer (encryption and
// the UDP send, or decryption and the TAP or a peer's queue, which drops
// when full), so they come back. (With 512, below this, the lab's tunnel
// stopped under TCP.)
func MinBuffers(bind conn.Bind) int { return 2 * (batchSize + 2*bind.BatchSize()) }

// runtimeOverhead is what the Go runtime holds for a node besides the
// reassembly: the queue to wireguard-go (queueBatches of batchBufLen,
// 4.3 MiB), the TAP's read batch, wireguard-go's elements, goroutine
// stacks and the runtime's own.
const runtimeOverhead = 12 << 20

// MemoryLimit is a soft memory limit, for debug.SetMemoryLimit, for a
// process that runs one tunnel with a reassembly cap of reassemblyBytes
// over all peers (0: frag.DefaultMaxBytesTotal): the sum of the bounds of
// what lives in the Go heap, 20 MiB by default. wireguard-go's packet
// buffers (Config.Buffers of 64 KiB, 48 MiB by default) are not in it: the
// patched copy cuts them from memory mapped outside the Go heap, where
// only the pages a packet was written to count, and where the collector
// does not see them. (In the heap, the 384 buffers the readers hold
// counted as live, so GOGC=100 let twice as much garbage pile up before a
// collection: an idle node with 50 peers grew to 36-39 MB in 30 s.) The
// limit keeps the collector's headroom (twice the live set) from adding
// to the bounds: wireguard-go's UDP bind allocates an endpoint per
// received datagram. A limit at or below the live set makes the collector
// run all the time (with 1024 buffers in the heap a 56 MiB limit cut TCP
// to a fifth).
func MemoryLimit(reassemblyBytes int) int64 {
	if reassemblyBytes <= 0 {
		reassemblyBytes = frag.DefaultMaxBytesTotal
	}
	return int64(reassemblyBytes) + runtimeOverhead
}

// newDeviceMu serialises setting wireguard-go's pool bound (a package
// variable of the patched copy) and creating a device, which reads it.
var newDeviceMu sync.Mutex

func newDevice(vtun *virtualTUN, bind conn.Bind, buffers int, log *device.Logger) *device.Device {
	if buffers == 0 {
		buffers = DefaultBuffers
	}
	buffers = max(buffers, MinBuffers(bind))
	newDeviceMu.Lock()
	defer newDeviceMu.Unlock()
	device.PoolBound = uint32(buffers)
	tun := &inlineTUN{virtualTUN: vtun}
	dev := device.NewDevice(tun, bind, log)
	tun.dev.Store(dev)
	return dev
}

// Tunnel is the embedded wireguard-go device and its peer ports.
type Tunnel struct {
	log   *slog.Logger
	sw    Switch
	dev   *device.Device
	vtun  *virtualTUN
	reasm *frag.Reassembler
	self  Label

	privateKey [32]byte
	selfPublic [32]byte

	mu      sync.Mutex                          // protects peers and serialises changes to byLabel
	peers   map[[32]byte]*PeerPort              // by public key
	byLabel atomic.Pointer[map[Label]*PeerPort] // read lock-free on the receive path

	rxPool sync.Pool // *rxScratch

	rxMalformed, rxUnknownPeer atomic.Uint64
	rxUnsolicitedProbe         atomic.Uint64 // probe replies to no outstanding probe (probe.go)
	rxForeignLabel             atomic.Uint64 // dropped by wireguard-go: a source label the peer does not own (logger.go)

	done chan struct{}
	wg   sync.WaitGroup
}

type rxScratch struct {
	frames []bridge.Frame
	held   []frag.Frame
}

// PublicKey derives the public key of a WireGuard private key.
func PublicKey(private [32]byte) [32]byte {
	var pub [32]byte
	curve25519.ScalarBaseMult(&pub, &private)
	return pub
}

// New creates the wireguard-go device, configured with the private key and
// listen port, and registers nothing with the switch until peers are added.
// Call Up to start it.
func New(cfg Config, sw Switch) (*Tunnel, error) {
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.MTU < MinMTU || cfg.MTU > 65535 {
		return nil, fmt.Errorf("tunnel mtu %d: must be between %d and 65535", cfg.MTU, MinMTU)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Bind == nil {
		cfg.Bind = conn.NewDefaultBind()
	}
	t := &Tunnel{
		log:  cfg.Logger,
		sw:   sw,
		self: LabelOf(PublicKey(cfg.PrivateKey)),

		privateKey: cfg.PrivateKey,
		selfPublic: PublicKey(cfg.PrivateKey),
		reasm:      frag.NewReassembler(cfg.Reassembly),
		peers:      make(map[[32]byte]*PeerPort),
		done:       make(chan struct{}),
	}
	empty := map[Label]*PeerPort{}
	t.byLabel.Store(&empty)
	t.rxPool.New = func() any {
		return &rxScratch{frames: make([]bridge.Frame, 0, batchSize), held: make([]frag.Frame, 0, batchSize)}
	}
	t.vtun = newVirtualTUN(cfg.MTU, t.self)
	t.vtun.receive = t.receive
	t.dev = newDevice(t.vtun, cfg.Bind, cfg.Buffers, wgLogger(cfg.Logger, &t.rxForeignLabel))
	uapi := fmt.Sprintf("private_key=%s\nlisten_port=%d\n", hex.EncodeToString(cfg.PrivateKey[:]), cfg.ListenPort)
	if err := t.dev.IpcSet(uapi); err != nil {
		t.dev.Close()
		return nil, fmt.Errorf("configure wireguard device: %w", err)
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = DefaultProbeInterval
	}
	t.wg.Add(3)
	go t.routineWatchSessions()
	go t.routineExpireReassembly()
	go t.routineProbe(cfg.ProbeInterval)
	return t, nil
}

// Up starts the device: it binds the listen port and begins handshakes.
func (t *Tunnel) Up() error {
	if err := t.dev.Up(); err != nil {
		return fmt.Errorf("start wireguard device: %w", err)
	}
	return nil
}

// Self is this node's routing label.
func (t *Tunnel) Self() Label { return t.self }

// AddPeer configures a WireGuard peer and adds it to the switch as a port.
func (t *Tunnel) AddPeer(pc PeerConfig) (*PeerPort, error) {
	label := LabelOf(pc.PublicKey)
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.peers[pc.PublicKey]; ok {
		return nil, fmt.Errorf("peer %q: public key already configured", pc.Name)
	}
	if label == t.self {
		return nil, fmt.Errorf("peer %q: its label %s equals this node's: is it our own public key?", pc.Name, label)
	}
	if other := (*t.byLabel.Load())[label]; other != nil {
		return nil, fmt.Errorf("peer %q: label %s collides with peer %q; regenerate one of the keys", pc.Name, label, other.cfg.Name)
	}
	p := &PeerPort{t: t, cfg: pc, label: label, added: time.Now()}

	var endpoint netip.AddrPort
	if pc.Endpoint != "" {
		ep, err := resolveEndpoint(pc.Endpoint)
		if err != nil {
			t.log.Warn("peer endpoint does not resolve yet; retrying in the background", "peer", pc.Name, "endpoint", pc.Endpoint, "err", err)
			t.wg.Add(1)
			go t.routineResolveEndpoint(p)
		}
		endpoint = ep
	}
	if err := t.dev.IpcSet(peerUAPI(pc, label, endpoint)); err != nil {
		return nil, fmt.Errorf("peer %q: configure wireguard: %w", pc.Name, err)
	}
	p.id = t.sw.AddPort(pc.Name, p)
	t.peers[pc.PublicKey] = p
	t.storeLabelsLocked()
	t.log.Info("peer added", "peer", pc.Name, "label", label, "endpoint", pc.Endpoint)
	return p, nil
}

// RemovePeer removes a peer from WireGuard and from the switch.
func (t *Tunnel) RemovePeer(publicKey [32]byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.peers[publicKey]
	if p == nil {
		return errors.New("no such peer")
	}
	if err := t.dev.IpcSet(fmt.Sprintf("public_key=%s\nremove=true\n", hex.EncodeToString(publicKey[:]))); err != nil {
		return fmt.Errorf("peer %q: remove from wireguard: %w", p.cfg.Name, err)
	}
	delete(t.peers, publicKey)
	t.storeLabelsLocked()
	t.sw.RemovePort(p.id)
	t.reasm.DropPeer(p.label.key())
	t.log.Info("peer removed", "peer", p.cfg.Name)
	return nil
}

// Peers returns the peer ports.
func (t *Tunnel) Peers() []*PeerPort {
	t.mu.Lock()
	defer t.mu.Unlock()
	ps := make([]*PeerPort, 0, len(t.peers))
	for _, p := range t.peers {
		ps = append(ps, p)
	}
	return ps
}

// Packed returns the packed chunks sent to peers that unpack, and the
// frames they carried (frag.TypePacked).
func (t *Tunnel) Packed() (chunks, frames uint64) {
	return t.vtun.packedChunks.Load(), t.vtun.packedFrames.Load()
}

// ReassemblyStats reports the reassembly counters.
func (t *Tunnel) ReassemblyStats() frag.Stats { return t.reasm.Stats() }

// Close stops the device and every goroutine of the tunnel.
func (t *Tunnel) Close() error {
	select {
	case <-t.done:
		return nil
	default:
	}
	close(t.done)
	t.dev.Close()
	t.wg.Wait()
	return nil
}

func (t *Tunnel) storeLabelsLocked() {
	m := make(map[Label]*PeerPort, len(t.peers))
	for _, p := range t.peers {
		m[p.label] = p
	}
	t.byLabel.Store(&m)
}

// receive takes a batch of decrypted packets from wireguard-go, reassembles
// frames and hands them to the switch, in order, per source port.
func (t *Tunnel) receive(bufs [][]byte, offset int) {
	now := time.Now()
	labels := *t.byLabel.Load()
	s := t.rxPool.Get().(*rxScratch)
	var from, stamped *PeerPort
	for _, b := range bufs {
		src, chunk, ok := parseLabelHeader(b[offset:])
		if !ok {
			t.rxMalformed.Add(1)
			continue
		}
		p := labels[src]
		if p == nil {
			t.rxUnknownPeer.Add(1)
			continue
		}
		if p != stamped { // once per peer per batch
			p.lastRx.Store(now.UnixNano())
			// A packet from the peer: wireguard-go has its keys, and
			// has them for longer than the poll (session.go) may say;
			// unless a redial dropped our sending keys since the last
			// handshake the poll saw (the peer's packets still arrive
			// under its old ones: they say nothing of ours).
			if until := now.Add(sessionPollSlow).UnixNano(); until > p.sessionUntil.Load() && p.expired.Load() <= p.handshake.Load() {
				p.sessionUntil.Store(until)
			}
			stamped = p
		}
		if isProbe(chunk) {
			t.handleProbe(p, chunk, now)
			continue
		}
		// Every packet says whether its sender unpacks (label.go).
		if unpacks := labelUnpacks(b[offset:]); p.sender.peerUnpacks.Load() != unpacks {
			p.sender.peerUnpacks.Store(unpacks)
		}
		if frag.IsPacked(chunk) {
			packed, ok := t.reasm.Unpack(src.key(), chunk)
			for f, more := packed.Next(); ok && more; f, more = packed.Next() {
				if (p != from && len(s.frames) > 0) || len(s.frames) == cap(s.frames) {
					t.deliver(from, s)
				}
				from = p
				s.frames = append(s.frames, bridge.Frame{Offload: f.Offload, Data: f.Data})
			}
			continue
		}
		f, ok := t.reasm.Add(src.key(), chunk, now)
		if !ok {
			continue
		}
		if (p != from && len(s.frames) > 0) || len(s.frames) == cap(s.frames) {
			t.deliver(from, s)
		}
		from = p
		s.frames = append(s.frames, bridge.Frame{Offload: f.Offload, Data: f.Data})
		s.held = append(s.held, f)
	}
	if len(s.frames) > 0 {
		t.deliver(from, s)
	}
	t.rxPool.Put(s)
}

func (t *Tunnel) deliver(from *PeerPort, s *rxScratch) {
	t.sw.Input(from.id, s.frames)
	for _, f := range s.held {
		t.reasm.Release(f)
	}
	clear(s.frames)
	clear(s.held)
	s.frames = s.frames[:0]
	s.held = s.held[:0]
}

func (t *Tunnel) routineExpireReassembly() {
	defer t.wg.Done()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-t.done:
			return
		case now := <-tick.C:
			t.reasm.Expire(now)
		}
	}
}

// routineResolveEndpoint retries a peer's DNS endpoint until it resolves,
// the peer is removed or the tunnel closes.
func (t *Tunnel) routineResolveEndpoint(p *PeerPort) {
	defer t.wg.Done()
	retry := time.NewTicker(5 * time.Second)
	defer retry.Stop()
	for {
		select {
		case <-t.done:
			return
		case <-retry.C:
		}
		t.mu.Lock()
		current := t.peers[p.cfg.PublicKey] == p
		name, endpoint := p.cfg.Name, p.cfg.Endpoint
		t.mu.Unlock()
		if !current || endpoint == "" {
			return
		}
		ep, err := resolveEndpoint(endpoint)
		if err != nil {
			t.log.Debug("peer endpoint still does not resolve", "peer", name, "endpoint", endpoint, "err", err)
			continue
		}
		uapi := fmt.Sprintf("public_key=%s\nupdate_only=true\nendpoint=%s\n", hex.EncodeToString(p.cfg.PublicKey[:]), ep)
		if err := t.dev.IpcSet(uapi); err != nil {
			t.log.Warn("set peer endpoint", "peer", name, "err", err)
			continue
		}
		t.log.Info("peer endpoint resolved", "peer", name, "endpoint", ep)
		return
	}
}

func peerUAPI(pc PeerConfig, label Label, endpoint netip.AddrPort) string {
	var b strings.Builder
	fmt.Fprintf(&b, "public_key=%s\n", hex.EncodeToString(pc.PublicKey[:]))
	if endpoint.IsValid() {
		fmt.Fprintf(&b, "endpoint=%s\n", endpoint)
	}
	fmt.Fprintf(&b, "persistent_keepalive_interval=%d\n", int(pc.PersistentKeepalive/time.Second))
	fmt.Fprintf(&b, "replace_allowed_ips=true\nallowed_ip=%s/32\n", label.Addr())
	return b.String()
}

// SplitEndpoint checks the form of "host:port" and returns its parts.
func SplitEndpoint(s string) (host string, port uint16, err error) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	if h == "" {
		return "", 0, errors.New("missing host")
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return "", 0, fmt.Errorf("port %q: must be a number between 1 and 65535", p)
	}
	return h, uint16(n), nil
}

// resolveEndpoint turns "host:port" into an address, resolving DNS names
// (IPv4 preferred, as wg does).
func resolveEndpoint(s string) (netip.AddrPort, error) {
	host, port, err := SplitEndpoint(s)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		return netip.AddrPortFrom(addr.Unmap(), port), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if len(addrs) == 0 {
		return netip.AddrPort{}, fmt.Errorf("%s: no addresses", host)
	}
	best := addrs[0]
	for _, a := range addrs {
		if a.Unmap().Is4() {
			best = a
			break
		}
	}
	return netip.AddrPortFrom(best.Unmap(), port), nil
}

// UpdatePeer applies a peer's new endpoint and keepalive without touching
// its session, its port or its label. The peer is named by pc.PublicKey.
func (t *Tunnel) UpdatePeer(pc PeerConfig) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.peers[pc.PublicKey]
	if p == nil {
		return fmt.Errorf("peer %q: not configured", pc.Name)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "public_key=%s\nupdate_only=true\n", hex.EncodeToString(pc.PublicKey[:]))
	if pc.Endpoint != p.cfg.Endpoint && pc.Endpoint != "" {
		ep, err := resolveEndpoint(pc.Endpoint)
		if err != nil {
			t.log.Warn("peer endpoint does not resolve yet; retrying in the background", "peer", pc.Name, "endpoint", pc.Endpoint, "err", err)
			t.wg.Add(1)
			defer func() { go t.routineResolveEndpoint(p) }()
		} else {
			fmt.Fprintf(&b, "endpoint=%s\n", ep)
		}
	}
	fmt.Fprintf(&b, "persistent_keepalive_interval=%d\n", int(pc.PersistentKeepalive/time.Second))
	if err := t.dev.IpcSet(b.String()); err != nil {
		return fmt.Errorf("peer %q: configure wireguard: %w", pc.Name, err)
	}
	p.cfg.Endpoint = pc.Endpoint
	p.cfg.PersistentKeepalive = pc.PersistentKeepalive
	return nil
}

// SetListenPort moves WireGuard to another UDP port.
func (t *Tunnel) SetListenPort(port int) error {
	if err := t.dev.IpcSet(fmt.Sprintf("listen_port=%d\n", port)); err != nil {
		return fmt.Errorf("set listen port %d: %w", port, err)
	}
	return nil
}
