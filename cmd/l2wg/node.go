package main

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/cmd/l2wg/systemd"
	"github.com/l2wg/l2wg/frag"
	"github.com/l2wg/l2wg/stp"
	"github.com/l2wg/l2wg/tap"
	"github.com/l2wg/l2wg/tunnel"
)

// tapBatch is how many frames the TAP reader hands the switch at once.
const tapBatch = 32

// node is one running l2wg: the switch, its TAP port and the tunnel.
type node struct {
	cfg *nodeConfig
	log *slog.Logger

	br    *bridge.Bridge
	tap   *tap.Device
	tapID bridge.PortID
	tun   *tunnel.Tunnel
	st    *spanningTree // nil when [stp] enabled = false
	ctl   net.Listener

	level   *slog.LevelVar // log level, changed by reload
	isolate atomic.Bool    // isolate_host, changed by reload
	storm   atomic.Int64   // storm_limit, changed by reload

	costMu   sync.Mutex               // protects autoCost
	autoCost map[bridge.PortID]uint32 // peer ports with cost "auto", and the cost applied

	reloadMu sync.Mutex  // serialises reloads; protects applied
	applied  *nodeConfig // the config in effect: cfg, then each reload's

	capture captureTaps    // l2wg capture's tap points on every port (capture.go)
	uapi    *uapiServer    // wg(8)'s socket; nil if none (uapi.go)
	metrics *metricsServer // metrics_listen; nil if off (metrics.go)

	fatalCh chan error
	done    chan struct{}
	wg      sync.WaitGroup
}

// peerSwitch is the switch as the tunnel sees it: with a spanning tree, a
// new peer port starts disabled and forwards nothing until the tree says so.
type peerSwitch struct {
	*bridge.Bridge
	stp   bool
	storm *atomic.Int64 // storm_limit, as reloaded
}

func (s peerSwitch) AddPort(name string, p bridge.Port) bridge.PortID {
	state := stp.Forwarding
	if s.stp {
		state = stp.Disabled
	}
	id := s.Bridge.AddPortInState(name, p, state)
	s.Bridge.SetStormLimit(id, int(s.storm.Load()))
	return id
}

// setStormLimit applies storm_limit to every port.
func (n *node) setStormLimit(pps int) {
	n.storm.Store(int64(pps))
	for _, p := range n.br.Ports() {
		n.br.SetStormLimit(p.ID, pps)
	}
}

// tapPort is the TAP as a switch port.
type tapPort struct {
	dev           *tap.Device
	log           *slog.Logger
	writeErrors   atomic.Uint64
	lastErrLogged atomic.Int64
}

var _ bridge.Port = (*tapPort)(nil)
var _ bridge.Port = (*tunnel.PeerPort)(nil)

// WriteFrames writes each frame, with its offload header, to the TAP.
func (p *tapPort) WriteFrames(frames []bridge.Frame) {
	for i := range frames {
		if err := p.dev.WriteFrame((*tap.VNetHdr)(&frames[i].Offload), frames[i].Data); err != nil {
			p.writeErrors.Add(1)
			now := time.Now().UnixNano()
			if last := p.lastErrLogged.Load(); now-last > int64(time.Second) && p.lastErrLogged.CompareAndSwap(last, now) {
				p.log.Debug("write to tap failed", "err", err, "errors", p.writeErrors.Load())
			}
		}
	}
}

// tapMAC derives the TAP's MAC from the node's public key: stable across
// restarts, locally administered, and starting with 0xfe so that a Linux
// bridge never adopts it as its own address (a bridge takes the lowest port
// MAC), as libvirt does for its vnet TAPs.
func tapMAC(publicKey [32]byte) [6]byte {
	sum := sha256.Sum256(append([]byte("l2wg tap mac\x00"), publicKey[:]...))
	return [6]byte{0xfe, sum[0], sum[1], sum[2], sum[3], sum[4]}
}

// startNode opens the TAP, builds the switch and brings up the tunnel. On
// error everything already made is undone.
func startNode(cfg *nodeConfig, log *slog.Logger, level *slog.LevelVar) (n *node, err error) {
	n = &node{cfg: cfg, applied: cfg, autoCost: make(map[bridge.PortID]uint32), log: log, level: level, done: make(chan struct{}), fatalCh: make(chan error, 1)}
	n.isolate.Store(cfg.IsolateHost)
	defer func() {
		if err != nil {
			n.close()
		}
	}()
	n.ctl, err = listenControl(cfg.TAPName)
	if err != nil {
		return n, err
	}
	n.br = bridge.New(bridge.Config{
		AgeingTime: cfg.AgeingTime,
		MaxEntries: cfg.MaxFDBEntries,
		Logger:     log,
	})

	pub := tunnel.PublicKey(cfg.PrivateKey)
	n.tap, err = tap.Open(tap.Config{
		Name:       cfg.TAPName,
		MTU:        cfg.TAPMTU,
		MAC:        tapMAC(pub),
		Persistent: cfg.TAPPersistent,
		Bridge:     cfg.TAPBridge,
		Offload:    cfg.TAPOffload,
	})
	if err != nil {
		return n, err
	}
	n.tapID = n.capture.wrap(n.br).AddPort(n.tap.Name(), &tapPort{dev: n.tap, log: log})
	n.setStormLimit(cfg.StormLimit)
	n.refreshHostFilter()

	n.tun, err = tunnel.New(tunnel.Config{
		PrivateKey: cfg.PrivateKey,
		ListenPort: cfg.ListenPort,
		MTU:        cfg.TunnelMTU,
		Reassembly: frag.Config{
			Timeout:         cfg.ReassemblyTimeout,
			MaxBytesPerPeer: cfg.ReassemblyPeerBytes,
			MaxBytesTotal:   cfg.ReassemblyTotalBytes,
		},
		Logger:        log,
		ProbeInterval: cfg.ProbeInterval,
	}, n.capture.wrap(peerSwitch{n.br, cfg.STP.Enabled, &n.storm}))
	if err != nil {
		return n, err
	}
	var peers []*tunnel.PeerPort
	for _, pc := range cfg.Peers {
		p, err := n.tun.AddPeer(pc)
		if err != nil {
			return n, err
		}
		peers = append(peers, p)
	}
	if cfg.STP.Enabled {
		if err := n.startSpanningTree(pub, peers); err != nil {
			return n, err
		}
	}
	if err := n.tun.Up(); err != nil {
		return n, err
	}

	n.wg.Add(3)
	go n.routineReadFromTAP()
	go n.routineHousekeeping()
	go n.routineServeControl(n.ctl)
	if n.st != nil {
		n.wg.Add(1)
		go n.routineSpanningTree()
	}
	n.startUAPI()
	if err := n.startMetrics(); err != nil {
		return n, err
	}
	systemd.Notify("READY=1") // Type=notify: the switch is up
	return n, nil
}

// startSpanningTree puts the TAP and every peer port under the spanning
// tree. Peer ports stay disabled until WireGuard has a session with the peer.
func (n *node) startSpanningTree(pub [32]byte, peers []*tunnel.PeerPort) error {
	mode := resolveTAPMode(n.cfg.STP.TAPMode, n.cfg.TAPBridge)
	st, err := newSpanningTree(n.cfg.STP, tapMAC(pub), n.br, n.cfg.AgeingTime, mode, n.log)
	if err != nil {
		return fmt.Errorf("spanning tree: %w", err)
	}
	if err := st.setTAP(n.tapID, n.tap.Name(), n.cfg.STP.TAPCost); err != nil {
		return err
	}
	for i, p := range peers {
		if err := st.addPort(p.PortID(), p.Name(), n.cfg.PeerCosts[i], false); err != nil {
			return err
		}
		n.setAutoCost(p.PortID(), n.cfg.PeerCosts[i] == costAuto)
	}
	n.st = st
	n.log.Info("spanning tree on", "bridge_id", st.status().BridgeID, "tap_mode", mode,
		"hello_time", n.cfg.STP.HelloTime, "max_age", n.cfg.STP.MaxAge, "forward_delay", n.cfg.STP.ForwardDelay)
	return nil
}

// routineSpanningTree runs the tree's timers and follows each peer: a peer
// port is up while WireGuard has a session with the peer and the peer
// answers its liveness probes (one that never answered one, such as an
// older l2wg, is judged by its session alone). Probe loss takes a port down
// within probe_loss x probe_interval, far sooner than WireGuard notices.
func (n *node) routineSpanningTree() {
	defer n.wg.Done()
	interval := min(n.cfg.ProbeInterval, 100*time.Millisecond)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	sessions := make(map[bridge.PortID]bool)
	var lastPoll, lastCosts time.Time
	for {
		select {
		case <-n.done:
			return
		case now := <-tick.C:
			n.st.tick(now)
			if now.Sub(lastPoll) >= time.Second {
				lastPoll = now
				n.pollSessions(sessions, now)
			}
			if now.Sub(lastCosts) >= autoCostEvery {
				lastCosts = now
				n.updateAutoCosts()
			}
			n.followPeers(sessions, now)
		}
	}
}

// pollSessions reads which peers have a WireGuard session, and nudges the
// others into a handshake.
func (n *node) pollSessions(sessions map[bridge.PortID]bool, now time.Time) {
	ts, err := n.tun.Status()
	if err != nil {
		return
	}
	clear(sessions)
	for _, p := range ts.Peers {
		sessions[p.Port] = p.Live(now)
	}
	for _, p := range n.tun.Peers() {
		if !sessions[p.PortID()] {
			n.tun.Nudge(p)
		}
	}
}

// followPeers sets each peer port up or down.
func (n *node) followPeers(sessions map[bridge.PortID]bool, now time.Time) {
	deadline := time.Duration(n.cfg.ProbeLoss) * n.cfg.ProbeInterval
	for _, p := range n.tun.Peers() {
		rtt, last := p.RTT()
		answering := last.IsZero() || now.Sub(last) < deadline+rtt
		up := sessions[p.PortID()] && answering
		if !n.st.setLink(p.PortID(), up) {
			continue
		}
		switch {
		case up:
			n.log.Info("peer port up", "peer", p.Name(), "rtt", rtt.Round(time.Microsecond))
		case !answering:
			n.log.Warn("peer port down: liveness probes unanswered", "peer", p.Name(), "since", now.Sub(last).Round(time.Millisecond))
		default:
			n.log.Info("peer port down: no wireguard session", "peer", p.Name())
		}
	}
}

func (n *node) stpStatus() *showSTP {
	if n.st == nil {
		return nil
	}
	st := n.st.status()
	rtts := make(map[string]time.Duration)
	for _, p := range n.tun.Peers() {
		rtt, _ := p.RTT()
		rtts[p.Name()] = rtt
	}
	for i := range st.Ports {
		if rtt := rtts[st.Ports[i].Name]; rtt > 0 {
			st.Ports[i].RTT = float64(rtt.Microseconds()) / 1000
		}
	}
	return st
}

// routineReadFromTAP moves frames from the TAP into the switch in batches.
func (n *node) routineReadFromTAP() {
	defer n.wg.Done()
	bufs := make([][]byte, tapBatch)
	for i := range bufs {
		bufs[i] = make([]byte, frag.MaxFrameLen)
	}
	hdrs := make([]tap.VNetHdr, tapBatch)
	sizes := make([]int, tapBatch)
	frames := make([]bridge.Frame, tapBatch)
	for {
		count, err := n.tap.ReadFrames(bufs, hdrs, sizes)
		for i := 0; i < count; i++ {
			frames[i] = bridge.Frame{Offload: hdrs[i], Data: bufs[i][:sizes[i]]}
		}
		if count > 0 {
			n.capture.wrap(n.br).Input(n.tapID, frames[:count])
		}
		if err != nil {
			select {
			case <-n.done:
			default:
				n.log.Error("read from tap failed; stopping", "tap", n.tap.Name(), "err", err)
				n.fatal(err)
			}
			return
		}
	}
}

// routineHousekeeping ages the forwarding database and follows the host
// bridge's MAC for host isolation.
func (n *node) routineHousekeeping() {
	defer n.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-n.done:
			return
		case <-tick.C:
			n.br.Sweep()
			n.refreshHostFilter()
		}
	}
}

// refreshHostFilter keeps frames from the hypervisor's own network stack off
// the VM segment: their source MAC is the host bridge's (or, without a
// bridge, the TAP's own).
func (n *node) refreshHostFilter() {
	if !n.isolate.Load() {
		n.br.SetSourceFilter(n.tapID, nil)
		return
	}
	deny := []bridge.MAC{bridge.MAC(n.tap.MAC())}
	if mac, ok, err := n.tap.BridgeMAC(); err == nil && ok {
		deny = append(deny, bridge.MAC(mac))
	}
	n.br.SetSourceFilter(n.tapID, slices.Compact(deny))
}

// fatal reports a data-path failure that stops the node (see Fatal).
func (n *node) fatal(err error) {
	select {
	case n.fatalCh <- err:
	default:
	}
}

// Fatal delivers a failure of the data path after which the node cannot work.
func (n *node) Fatal() <-chan error { return n.fatalCh }

// close stops everything: first the tunnel (which unblocks ports waiting on
// its queue), then the TAP (which unblocks its reader), then the goroutines.
func (n *node) close() {
	select {
	case <-n.done:
		return
	default:
	}
	close(n.done)
	if n.ctl != nil {
		n.ctl.Close() // an abstract socket: nothing left on disk
	}
	systemd.Notify("STOPPING=1")
	n.stopUAPI()
	n.stopMetrics()
	if n.tun != nil {
		n.tun.Close()
	}
	if n.tap != nil {
		if err := n.tap.Close(); err != nil {
			n.log.Warn("close tap", "tap", n.cfg.TAPName, "err", err)
		}
	}
	n.wg.Wait()
}

func (n *node) summary() []any {
	return []any{
		"tap", n.tap.Name(), "mtu", n.cfg.TAPMTU, "bridge", n.cfg.TAPBridge,
		"offload", n.tap.Offload(), "listen_port", n.cfg.ListenPort,
		"tunnel_mtu", n.cfg.TunnelMTU, "label", n.tun.Self(), "peers", len(n.cfg.Peers),
		"pid", os.Getpid(),
	}
}
