package node

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/bridge/mesh"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/config"
	"github.com/l2wg/l2wg/tunnel"
)

// The shortest-path mesh ([mesh] protocol = "shortest-path"): the switch has
// the TAP port and one MeshPort; every peer's tunnel is a link of the mesh
// port, and the pure bridge/mesh machine decides where frames go. This
// driver feeds the machine the peers' liveness (a WireGuard session and
// answered probes, as for the spanning tree), their costs, the control
// messages that come in on links and the time, and carries out its actions.

// meshTick is how often the machine is ticked and the peers' liveness read.
const meshTick = 20 * time.Millisecond

// meshNudgeEvery is how often peers without a session are nudged into a
// handshake (and quiet sessions into a new one) in mesh mode. The sessions
// themselves are read every tick from the tunnel's own flag
// (PeerPort.HasSession), the one it checks before it sends: an adjacency
// comes up within a tick of the tunnel's carrying traffic, and never
// before (what the machine sends on adjacency up would be withheld, and
// the neighbour would wait for the next periodic summary).
const meshNudgeEvery = 100 * time.Millisecond

// firstMeshLink is the first link number: apart from the switch's own port
// IDs (the TAP and the mesh port), so that logs and captures never confuse a
// link with a switch port.
const firstMeshLink = 256

type meshDriver struct {
	mp   *bridge.MeshPort
	log  *slog.Logger
	next atomic.Uint32 // the last link number handed out

	mu sync.Mutex            // serializes the machine; protects m and up
	m  *mesh.Machine         // protected by mu
	up map[mesh.Port]meshAdj // live adjacencies; protected by mu
	// names of links, for logs; protected by mu
	names map[mesh.Port]string

	// kick tells routineMesh that a control message came in, which may
	// have left the machine a held change to carry out.
	kick chan struct{}
}

type meshAdj struct {
	cost uint32
}

func newMeshDriver(br *bridge.Bridge, pub [32]byte, log *slog.Logger) (*meshDriver, error) {
	m, err := mesh.New(mesh.Config{Key: mesh.Key(pub), Boot: time.Now(), Stopwatch: time.Now}, time.Now())
	if err != nil {
		return nil, err
	}
	d := &meshDriver{mp: br.AttachMesh(m.ID()), log: log, m: m,
		up: map[mesh.Port]meshAdj{}, names: map[mesh.Port]string{}, kick: make(chan struct{}, 1)}
	d.next.Store(firstMeshLink - 1)
	d.mp.SetControlHandler(d.receive)
	log.Info("mesh: shortest-path", "node", m.ID().String())
	return d, nil
}

// meshSwitch is the switch as the tunnel sees it in mesh mode: a peer port
// is a link of the mesh port; its frames go to the mesh port, not into the
// switch.
type meshSwitch struct{ d *meshDriver }

var _ tunnel.Switch = meshSwitch{}

func (s meshSwitch) AddPort(name string, p bridge.Port) bridge.PortID {
	id := mesh.Port(s.d.next.Add(1))
	s.d.mp.AddLink(id, name, p)
	s.d.mu.Lock()
	s.d.names[id] = name
	s.d.mu.Unlock()
	return bridge.PortID(id)
}

func (s meshSwitch) RemovePort(id bridge.PortID) {
	s.d.mp.RemoveLink(mesh.Port(id))
	s.d.follow(mesh.Port(id), [32]byte{}, false, 0, time.Now())
	s.d.mu.Lock()
	delete(s.d.names, mesh.Port(id))
	s.d.mu.Unlock()
}

func (s meshSwitch) Input(in bridge.PortID, frames []bridge.Frame) {
	s.d.mp.InputFromLink(mesh.Port(in), frames)
}

// receive hands a control message from a link to the machine.
func (d *meshDriver) receive(from mesh.Port, msg []byte) {
	d.mu.Lock()
	d.applyLocked(d.m.Receive(from, msg, time.Now()))
	d.mu.Unlock()
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

func (d *meshDriver) tick(now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.applyLocked(d.m.Tick(now))
}

// follow tells the machine whether the peer on link p is live, and at what
// cost; it reports whether that changed the adjacency.
func (d *meshDriver) follow(p mesh.Port, key [32]byte, up bool, cost uint32, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	cur, isUp := d.up[p]
	switch {
	case up && !isUp:
		d.up[p] = meshAdj{cost}
		d.log.Info("mesh adjacency up", "peer", d.names[p], "cost", cost)
		d.applyLocked(d.m.AdjacencyUp(p, mesh.Key(key), cost, now))
	case up && cost != cur.cost:
		d.up[p] = meshAdj{cost}
		d.log.Info("mesh adjacency cost", "peer", d.names[p], "cost", cost)
		d.applyLocked(d.m.AdjacencyUp(p, mesh.Key(key), cost, now))
	case !up && isUp:
		delete(d.up, p)
		d.log.Info("mesh adjacency down", "peer", d.names[p])
		d.applyLocked(d.m.AdjacencyDown(p, now))
	default:
		return false
	}
	return true
}

// applyLocked carries out the machine's actions. Called with mu held.
func (d *meshDriver) applyLocked(acts []mesh.Action) {
	for _, a := range acts {
		switch a.Kind {
		case mesh.Send:
			d.mp.SendControl(a.Port, a.Msg)
		case mesh.TablesChanged:
			d.mp.SetTable(a.Table)
			d.log.Debug("mesh tables changed", "nodes", len(a.Table.Nodes()))
		case mesh.Notice:
			switch a.Notice {
			case mesh.NoticeSynced:
				d.log.Info("mesh: database learned from the neighbours", "records", len(d.m.Records(time.Now())))
			default:
				d.log.Warn("mesh: "+a.Notice.String(), "node", a.Node.String())
			}
		}
	}
}

// routineMesh ticks the machine and follows each peer: an adjacency is up
// while WireGuard has a session with the peer and the peer is live by the
// liveness rule (liveRule; one that never answered a probe, by its session
// and anything received from it), at the peer's configured cost or, for "auto", the cost of
// its least round trip. It wakes every meshTick, at the instant a peer's
// silence reaches the limit, and when the machine's holds end after an
// adjacency changed, so that a failure waits for no tick.
func (n *Node) routineMesh() {
	defer n.wg.Done()
	wake := time.NewTimer(meshTick)
	defer wake.Stop()
	lv := newLiveness(n.tun, n.log, n.cfg.ProbeInterval, n.cfg.ProbeLoss)
	lv.clock.arm(time.Now().Add(meshTick), time.Now())
	var lastNudge, lastTick time.Time
	for {
		select {
		case <-n.done:
			return
		case <-n.mesh.kick:
			// A control message may have left the machine a held
			// change: tick once its holds have passed.
			now := time.Now()
			if due := now.Add(meshHoldWake); due.Before(lv.clock.due) {
				lv.clock.sooner(due)
				wake.Reset(meshHoldWake)
			}
			continue
		case <-wake.C:
		}
		now := time.Now()
		onTime := lv.clock.wake(now)
		if now.Sub(lastNudge) >= meshNudgeEvery {
			lastNudge = now
			lv.nudge(func(p *tunnel.PeerPort) bool { return p.HasSession(now) }, now)
		}
		next, changed := n.followMeshPeers(lv, now, onTime)
		n.mesh.tick(now)
		if now.Sub(lastTick) >= meshTick {
			lastTick = now
		}
		if changed {
			next = earliest(next, now.Add(meshHoldWake))
		}
		sleep := lastTick.Add(meshTick).Sub(now)
		if !next.IsZero() {
			sleep = min(sleep, next.Sub(now))
		}
		sleep = max(sleep, time.Millisecond)
		armed := time.Now()
		lv.clock.arm(armed.Add(sleep), armed)
		wake.Reset(sleep)
	}
}

// meshHoldWake is when the driver ticks the machine again after an
// adjacency changed: once its origination and SPF holds have passed.
const meshHoldWake = max(mesh.DefaultOriginateHold, mesh.DefaultSPFHold) + time.Millisecond

// followMeshPeers brings each peer's adjacency up or down; it returns when
// a peer should be judged again (zero: at the next tick) and whether an
// adjacency changed.
func (n *Node) followMeshPeers(lv *liveness, now time.Time, onTime bool) (next time.Time, changed bool) {
	peers := n.applied.Load().Peers
	tps := n.tun.Peers()
	verdicts, next := lv.judgePeers(tps, now, onTime)
	for i, p := range tps {
		answering := verdicts[i]
		_, mismatch := n.mesh.mp.LinkMismatch(mesh.Port(p.PortID())) // a spanning tree's BPDUs on it
		up := p.HasSession(now) && answering && !mismatch
		if n.mesh.follow(mesh.Port(p.PortID()), p.Key(), up, n.meshCost(p, peers), now) {
			changed = true
		}
	}
	return next, changed
}

// meshCost is a peer's configured cost, or for "auto" the cost of its least
// round trip, moved only as costShouldMove says (as the
// spanning tree's auto costs), so that jitter does not flood records.
func (n *Node) meshCost(p *tunnel.PeerPort, peers []config.Peer) uint32 {
	for _, pc := range peers {
		if pc.PublicKey == p.Key() && pc.Cost != config.CostAuto {
			return pc.Cost
		}
	}
	want := costFromRTT(p.MinRTT())
	n.mesh.mu.Lock()
	cur, ok := n.mesh.up[mesh.Port(p.PortID())]
	n.mesh.mu.Unlock()
	if ok && !costShouldMove(cur.cost, want) {
		return cur.cost
	}
	return want
}
