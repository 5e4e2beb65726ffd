// Package node is a running l2wg: it opens the TAP, builds the switch and
// the tunnel, wires them together with the spanning tree, follows the
// peers' liveness, serves the control socket, reloads node.toml and
// reports the node's state.
package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/bridge/spanning"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/capture"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/config"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/control"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/metrics"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/uapi"
	"github.com/l2wg/l2wg/cmd/l2wg/systemd"
	"github.com/l2wg/l2wg/frag"
	"github.com/l2wg/l2wg/stp"
	"github.com/l2wg/l2wg/tap"
	"github.com/l2wg/l2wg/tunnel"
	"github.com/l2wg/l2wg/tunnel/resolve"
)

// tapBatch is how many frames the TAP reader hands the switch at once.
const tapBatch = 32

// Node is one running l2wg: the switch, its TAP port and the tunnel.
type Node struct {
	cfg     *config.Config // the config it started with (restart-only settings)
	log     *slog.Logger
	version string

	br   *bridge.Bridge
	tap  *tap.Device
	port *tapPort // the TAP as a switch port
	tun  *tunnel.Tunnel
	st   *spanning.Tree // nil when [stp] enabled = false, or in mesh mode
	mesh *meshDriver    // nil unless [mesh] protocol = "shortest-path"
	edge *meshEdge      // the TAP's appointed-forwarder election; nil unless mesh (mesh_edge.go)
	ctl  net.Listener

	level *slog.LevelVar // log level, changed by reload
	storm atomic.Int64   // storm_limit, changed by reload

	costs autoCosts // peer ports with cost "auto" (autocost.go)

	reloadMu sync.Mutex                    // serialises reloads
	applied  atomic.Pointer[config.Config] // the config in force: cfg, then each reload's (reload.go)

	capture capture.Taps    // l2wg capture's tap points on every port
	uapi    *uapi.Server    // wg(8)'s socket; nil if none
	metrics *metrics.Server // metrics_listen; nil if off

	reresolve     *resolve.Reresolver // DNS endpoints resolved again (reresolve_after)
	stopReresolve context.CancelFunc

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
	id := s.Bridge.AddPeerPort(name, p, state)
	s.Bridge.SetStormLimit(id, int(s.storm.Load()))
	return id
}

// Start opens the TAP, builds the switch and brings up the tunnel. On
// error everything already made is undone.
//
// level is the logger's level, which log_level changes on reload; version
// is reported by show and the metrics.
func Start(cfg *config.Config, log *slog.Logger, level *slog.LevelVar, version string) (n *Node, err error) {
	n = &Node{cfg: cfg, version: version, log: log, level: level, done: make(chan struct{}), fatalCh: make(chan error, 1)}
	n.applied.Store(cfg)
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	n.ctl, err = control.Listen(cfg.TAPName)
	if err != nil {
		return n, err
	}
	pub := tunnel.PublicKey(cfg.PrivateKey)
	if err := n.openSwitch(pub); err != nil {
		return n, err
	}
	if cfg.MeshProtocol == config.MeshShortestPath {
		if n.mesh, err = newMeshDriver(n.br, pub, log); err != nil {
			return n, err
		}
		if err := n.startMeshEdge(); err != nil {
			return n, err
		}
	}
	if err := n.openTunnel(); err != nil {
		return n, err
	}
	var peers []*tunnel.PeerPort
	for _, pc := range cfg.Peers {
		p, err := n.tun.AddPeer(pc.PeerConfig)
		if err != nil {
			return n, err
		}
		n.br.SetVLANFilter(p.PortID(), pc.VLANs)
		peers = append(peers, p)
	}
	if cfg.STP.Enabled && n.mesh == nil {
		if err := n.startSpanningTree(pub, peers); err != nil {
			return n, err
		}
	}
	if err := n.tun.Up(); err != nil {
		return n, err
	}

	rd := n.port.newReader(n.capture.Wrap(n.br), n.done, n.fatal)
	if n.tap.Interruptible() {
		n.tun.SetSource(rd) // the tunnel's reader reads the TAP
	} else {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			rd.routineReadFromTAP()
		}()
	}
	n.wg.Add(2)
	go n.routineHousekeeping()
	go func() {
		defer n.wg.Done()
		control.Serve(n.ctl, n)
	}()
	if n.st != nil {
		lv := newLiveness(n.tun, log, cfg.ProbeInterval, cfg.ProbeLoss)
		lv.st, lv.costs = n.st, &n.costs
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			lv.routineSpanningTree(n.done)
		}()
	}
	if n.mesh != nil {
		n.wg.Add(1)
		go n.routineMesh()
	}
	n.uapi = uapi.Start(n.tap.Name(), n.tun, log)
	n.reresolve = resolve.New(resolve.Tunnel(n.tun), resolve.Config{Stale: cfg.ReresolveAfter, Logger: log})
	ctx, stop := context.WithCancel(context.Background())
	n.stopReresolve = stop
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.reresolve.Run(ctx)
	}()
	if cfg.MetricsListen != "" {
		if n.metrics, err = metrics.Start(cfg.MetricsListen, version, n.metricsSnapshot, log); err != nil {
			return n, err
		}
	}
	systemd.Notify("READY=1") // Type=notify: the switch is up
	return n, nil
}

// peerProtocol names what the node speaks to its peers, for the switch's
// log line about a peer that speaks another protocol.
func peerProtocol(cfg *config.Config) string {
	switch {
	case cfg.MeshProtocol == config.MeshShortestPath:
		return config.MeshShortestPath
	case !cfg.STP.Enabled:
		return "none"
	}
	return cfg.STP.Protocol.String()
}

// openSwitch builds the switch and opens the TAP as its first port.
func (n *Node) openSwitch(pub [32]byte) error {
	cfg := n.cfg
	n.br = bridge.New(bridge.Config{
		AgeingTime: cfg.AgeingTime,
		MaxEntries: cfg.MaxFDBEntries,
		Logger:     n.log,
		Protocol:   peerProtocol(cfg),
	})
	dev, err := tap.Open(tap.Config{
		Name:       cfg.TAPName,
		MTU:        cfg.TAPMTU,
		MAC:        tapMAC(pub),
		Persistent: cfg.TAPPersistent,
		Bridge:     cfg.TAPBridge,
		Offload:    cfg.TAPOffload,
	})
	if err != nil {
		return err
	}
	n.tap = dev
	n.port = &tapPort{dev: n.tap, log: n.log, br: n.br}
	n.port.isolate.Store(cfg.IsolateHost)
	n.port.id = n.capture.Wrap(n.br).AddPort(n.tap.Name(), n.port)
	n.setStormLimit(cfg.StormLimit)
	n.setTAPVLANs(cfg.TAPVLANs)
	n.port.refreshHostFilter()
	return nil
}

// openTunnel makes the WireGuard device, its peers to come being ports of
// the switch behind the capture's tap points.
func (n *Node) openTunnel() error {
	cfg := n.cfg
	var sw tunnel.Switch = peerSwitch{n.br, cfg.STP.Enabled, &n.storm}
	if n.mesh != nil {
		sw = meshSwitch{n.mesh}
	}
	tun, err := tunnel.New(tunnel.Config{
		PrivateKey: cfg.PrivateKey,
		ListenPort: cfg.ListenPort,
		MTU:        cfg.TunnelMTU,
		Reassembly: frag.Config{
			Timeout:         cfg.ReassemblyTimeout,
			MaxBytesPerPeer: cfg.ReassemblyPeerBytes,
			MaxBytesTotal:   cfg.ReassemblyTotalBytes,
		},
		Logger:        n.log,
		ProbeInterval: cfg.ProbeInterval,
	}, n.capture.Wrap(sw))
	if err != nil {
		return err
	}
	n.tun = tun
	return nil
}

// startSpanningTree puts the TAP and every peer port under the spanning
// tree. Peer ports stay disabled until WireGuard has a session with the peer.
func (n *Node) startSpanningTree(pub [32]byte, peers []*tunnel.PeerPort) error {
	mode := spanning.ResolveTAPMode(n.cfg.STP.TAPMode, n.cfg.TAPBridge)
	st, err := spanning.New(treeConfig(n.cfg.STP), tapMAC(pub), n.br, n.cfg.AgeingTime, mode, n.log)
	if err != nil {
		return fmt.Errorf("spanning tree: %w", err)
	}
	if err := st.SetTAP(n.port.id, n.tap.Name(), n.cfg.STP.TAPCost); err != nil {
		return err
	}
	for i, p := range peers {
		if err := st.AddPort(p.PortID(), p.Name(), n.cfg.Peers[i].Cost, false); err != nil {
			return err
		}
		n.costs.mark(p.PortID(), n.cfg.Peers[i].Cost == config.CostAuto)
	}
	n.st = st
	n.log.Info("spanning tree on", "bridge_id", st.Status().BridgeID, "tap_mode", mode,
		"hello_time", n.cfg.STP.HelloTime, "max_age", n.cfg.STP.MaxAge, "forward_delay", n.cfg.STP.ForwardDelay)
	return nil
}

// routineHousekeeping ages the forwarding database and follows the host
// bridge's MAC for host isolation.
func (n *Node) routineHousekeeping() {
	defer n.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-n.done:
			return
		case <-tick.C:
			n.br.Sweep()
			n.port.refreshHostFilter()
		}
	}
}

// fatal reports a data-path failure that stops the node (see Fatal).
func (n *Node) fatal(err error) {
	select {
	case n.fatalCh <- err:
	default:
	}
}

// Fatal delivers a failure of the data path after which the node cannot work.
func (n *Node) Fatal() <-chan error { return n.fatalCh }

// Close stops everything: first the tunnel (which unblocks ports waiting on
// its queue), then the TAP (which unblocks its reader), then the goroutines.
func (n *Node) Close() {
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
	n.uapi.Close()
	if n.stopReresolve != nil {
		n.stopReresolve()
	}
	if n.metrics != nil {
		n.metrics.Close()
	}
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

// Summary is the node in log attributes, for its start.
func (n *Node) Summary() []any {
	return []any{
		"tap", n.tap.Name(), "mtu", n.cfg.TAPMTU, "bridge", n.cfg.TAPBridge,
		"offload", n.tap.Offload(), "listen_port", n.cfg.ListenPort,
		"tunnel_mtu", n.cfg.TunnelMTU, "label", n.tun.Self(), "peers", len(n.cfg.Peers),
		"pid", os.Getpid(),
	}
}

// treeConfig is the tree's part of [stp].
func treeConfig(c config.STP) spanning.Config {
	return spanning.Config{
		Priority: c.Priority, HelloTime: c.HelloTime, MaxAge: c.MaxAge, ForwardDelay: c.ForwardDelay,
		Protocol: c.Protocol, BPDUGuard: c.BPDUGuard,
	}
}

// Capture serves `l2wg capture` on a control connection.
func (n *Node) Capture(c net.Conn, request string) {
	n.capture.Serve(c, request, n.br, n.done, n.log)
}

var _ control.Handler = (*Node)(nil)
