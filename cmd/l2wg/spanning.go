package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/stp"
)

// privateGroup is the destination of l2wg's spanning-tree messages on a TAP
// whose host bridge does not run STP. A non-STP Linux bridge floods BPDUs
// to 01:80:C2:00:00:00 like data onto the physical LAN, where a switch with
// BPDU guard shuts its port; to a locally administered group address
// outside 01:80:C2:00:00:0X, switches forward the same messages as plain
// multicast, and l2wg nodes on the LAN still find a loop through it.
var privateGroup = bridge.MAC{0x03, 0x6c, 0x32, 0x77, 0x67, 0x00}

// TAP port modes ([stp] tap).
const (
	tapAuto    = "auto"    // stp if the host bridge runs kernel STP, private otherwise
	tapSTP     = "stp"     // standard BPDUs: one tree with the kernel bridge
	tapPrivate = "private" // l2wg's messages to privateGroup
	tapEdge    = "edge"    // no spanning-tree messages: the TAP always forwards
)

// spanningTree drives the pure stp state machine for the switch: it feeds it
// BPDUs, time and link changes, and carries out its actions on the switch.
type spanningTree struct {
	br      *bridge.Bridge
	log     *slog.Logger
	mac     [6]byte
	ageing  time.Duration // the configured FDB ageing, restored after a topology change
	tapID   bridge.PortID
	tapMode string

	mu    sync.Mutex // protects tree, names, up and ageing, and orders the actions applied
	tree  *stp.Bridge
	names map[stp.PortNo]string
	up    map[bridge.PortID]bool // link state last reported by setLink

	ignored atomic.Uint64 // BPDUs to the wrong group for their port, or on an edge TAP
	bad     atomic.Uint64 // BPDUs that do not decode

	bpduGuard    atomic.Bool
	guardedUntil time.Time // the TAP port is disabled by BPDU guard until then; zero if not; under mu
}

// bpduGuardHold is how long BPDU guard keeps the TAP port disabled after the
// last BPDU from the VM side.
const bpduGuardHold = 30 * time.Second

func (s *spanningTree) setBPDUGuard(on bool) { s.bpduGuard.Store(on) }

// guardLocked disables the TAP port: a spanning-tree message came from the
// VM side, where BPDU guard says none may come from.
func (s *spanningTree) guardLocked(now time.Time) {
	if s.guardedUntil.IsZero() {
		s.log.Error("bpdu guard: spanning-tree message received on the TAP port; port disabled",
			"port", s.names[stp.PortNo(s.tapID)], "for", bpduGuardHold)
		if s.tapMode == tapEdge {
			s.br.SetPortState(s.tapID, stp.Disabled)
		} else {
			s.applyLocked(s.tree.Disable(stp.PortNo(s.tapID), now))
		}
	}
	s.guardedUntil = now.Add(bpduGuardHold)
}

// unguardLocked re-enables the TAP port once the hold has passed.
func (s *spanningTree) unguardLocked(now time.Time) {
	if s.guardedUntil.IsZero() || now.Before(s.guardedUntil) {
		return
	}
	s.guardedUntil = time.Time{}
	s.log.Info("bpdu guard: no spanning-tree message from the VM side for a while; TAP port enabled again", "port", s.names[stp.PortNo(s.tapID)])
	if s.tapMode == tapEdge {
		s.br.SetPortState(s.tapID, stp.Forwarding)
	} else {
		s.applyLocked(s.tree.Enable(stp.PortNo(s.tapID), now))
	}
}

// resolveTAPMode turns "auto" into stp or private by the host bridge's
// stp_state (1: kernel STP, 2: a user-space STP daemon such as mstpd).
func resolveTAPMode(mode, hostBridge string) string {
	if mode != tapAuto {
		return mode
	}
	if hostBridge == "" {
		return tapPrivate
	}
	b, err := os.ReadFile(filepath.Join("/sys/class/net", hostBridge, "bridge/stp_state"))
	if err == nil && strings.TrimSpace(string(b)) != "0" {
		return tapSTP
	}
	return tapPrivate
}

func newSpanningTree(cfg stpConfig, mac [6]byte, br *bridge.Bridge, ageing time.Duration, tapMode string, log *slog.Logger) (*spanningTree, error) {
	tree, err := stp.New(stp.Config{
		Priority: cfg.Priority, MAC: mac, Protocol: cfg.Protocol,
		HelloTime: cfg.HelloTime, MaxAge: cfg.MaxAge, ForwardDelay: cfg.ForwardDelay,
	}, time.Now())
	if err != nil {
		return nil, err
	}
	s := &spanningTree{br: br, log: log, mac: mac, ageing: ageing, tapMode: tapMode, tree: tree, names: make(map[stp.PortNo]string), up: make(map[bridge.PortID]bool)}
	s.bpduGuard.Store(cfg.BPDUGuard)
	br.AddControlAddress(privateGroup)
	br.SetControlHandler(s.handleControl)
	return s, nil
}

// addPort makes a switch port a spanning-tree port, Disabled until its link
// is up. The switch port is put in the tree's state at once.
// A tunnel peer port is point-to-point (one bridge behind it: RSTP's
// proposal/agreement makes it forward at once); the TAP port is not (its
// host bridge may hold other l2wg nodes on a LAN).
func (s *spanningTree) addPort(id bridge.PortID, name string, cost uint32, rootGuard bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	no := stp.PortNo(id)
	pc := stp.DefaultPortConfig()
	if cost != 0 {
		pc.PathCost = cost
	}
	pc.RootGuard = rootGuard
	pc.PointToPoint = !rootGuard
	actions, err := s.tree.AddPort(no, pc, time.Now())
	if err != nil {
		return fmt.Errorf("spanning tree: port %s: %w", name, err)
	}
	s.names[no] = name
	delete(s.up, id) // a reused port ID starts with its link down
	s.br.SetPortState(id, stp.Disabled)
	s.applyLocked(actions)
	return nil
}

// setTAP records the TAP port; it takes part in the tree unless edge.
func (s *spanningTree) setTAP(id bridge.PortID, name string, cost uint32) error {
	s.tapID = id
	if s.tapMode == tapEdge {
		return nil
	}
	if err := s.addPort(id, name, cost, true); err != nil {
		return err
	}
	s.setLink(id, true)
	return nil
}

// setLink reports a port's link up or down (a peer with or without a
// WireGuard session). It reports whether that changed the link's state.
func (s *spanningTree) setLink(id bridge.PortID, up bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.names[stp.PortNo(id)]; !ok || s.up[id] == up {
		return false // not (or no longer) a tree port, or no change
	}
	s.up[id] = up
	now := time.Now()
	if up {
		s.applyLocked(s.tree.Enable(stp.PortNo(id), now))
	} else {
		s.applyLocked(s.tree.Disable(stp.PortNo(id), now))
	}
	return true
}

// removePort takes a port out of the tree.
func (s *spanningTree) removePort(id bridge.PortID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	actions, err := s.tree.RemovePort(stp.PortNo(id), time.Now())
	if err == nil {
		s.applyLocked(actions)
	}
	delete(s.names, stp.PortNo(id))
	delete(s.up, id)
}

// setPortCost changes a port's path cost.
func (s *spanningTree) setPortCost(id bridge.PortID, cost uint32) error {
	if cost == 0 {
		cost = stp.DefaultPathCost
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	actions, err := s.tree.SetPortCost(stp.PortNo(id), cost, time.Now())
	if err != nil {
		return err
	}
	s.applyLocked(actions)
	return nil
}

// setBridge changes the bridge priority and timers.
func (s *spanningTree) setBridge(cfg stpConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	actions, err := s.tree.SetTimers(cfg.HelloTime, cfg.MaxAge, cfg.ForwardDelay, now)
	if err != nil {
		return err
	}
	s.applyLocked(actions)
	s.applyLocked(s.tree.SetBridgePriority(cfg.Priority, now))
	return nil
}

// setAgeing changes the configured FDB ageing; while a topology change is
// in progress the short ageing stays until the change is over.
func (s *spanningTree) setAgeing(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ageing = d
	if !s.tree.Status().TopologyChange {
		s.br.SetAgeingTime(d)
	}
}

// tick advances the tree's timers.
func (s *spanningTree) tick(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unguardLocked(now)
	s.applyLocked(s.tree.Tick(now))
}

// handleControl takes the switch's control frames: BPDUs to the standard
// group on peer ports and on an stp-mode TAP, to the private group on a
// private-mode TAP. Anything else is ignored and counted.
func (s *spanningTree) handleControl(in bridge.PortID, f bridge.Frame) {
	dst := bridge.Dst(f.Data)
	if in == s.tapID && s.bpduGuard.Load() && (dst == bridge.MAC(stp.GroupAddress) || dst == privateGroup) {
		s.mu.Lock()
		s.guardLocked(time.Now())
		s.mu.Unlock()
		return
	}
	want := bridge.MAC(stp.GroupAddress)
	if in == s.tapID {
		switch s.tapMode {
		case tapEdge:
			s.ignored.Add(1)
			return
		case tapPrivate:
			want = privateGroup
		}
	}
	if dst != want {
		s.ignored.Add(1)
		return
	}
	bpdu, err := stp.DecodeFrame(f.Data)
	if err != nil {
		s.bad.Add(1)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applyLocked(s.tree.Receive(stp.PortNo(in), bpdu, time.Now()))
}

// applyLocked carries out the tree's actions in order.
func (s *spanningTree) applyLocked(actions []stp.Action) {
	for _, a := range actions {
		id := bridge.PortID(a.Port)
		switch a.Kind {
		case stp.SendBPDU:
			dst := stp.GroupAddress
			if id == s.tapID && s.tapMode == tapPrivate {
				dst = privateGroup
			}
			frame, err := stp.AppendFrameTo(make([]byte, 0, 64), dst, s.mac, a.BPDU)
			if err != nil {
				s.log.Warn("encode bpdu", "port", s.names[a.Port], "err", err)
				continue
			}
			s.br.Output(id, []bridge.Frame{{Data: frame}})
		case stp.SetState:
			s.br.SetPortState(id, a.State)
		case stp.FlushFDB:
			s.br.Flush(id)
		case stp.FlushAll:
			s.br.FlushAll()
		case stp.SetAgeing:
			s.br.SetAgeingTime(a.Ageing)
		case stp.RestoreAgeing:
			s.br.SetAgeingTime(s.ageing)
		}
	}
}

// showSTP is the spanning tree in `l2wg show`, as brctl showstp prints it.
type showSTP struct {
	BridgeID               string        `json:"bridge_id"`
	DesignatedRoot         string        `json:"designated_root"`
	IsRoot                 bool          `json:"is_root"`
	RootPort               string        `json:"root_port,omitempty"`
	RootPathCost           uint32        `json:"root_path_cost"`
	MaxAge                 float64       `json:"max_age"`
	HelloTime              float64       `json:"hello_time"`
	ForwardDelay           float64       `json:"forward_delay"`
	BridgeMaxAge           float64       `json:"bridge_max_age"`
	BridgeHelloTime        float64       `json:"bridge_hello_time"`
	BridgeForwardDelay     float64       `json:"bridge_forward_delay"`
	TopologyChange         bool          `json:"topology_change"`
	TopologyChangeDetected bool          `json:"topology_change_detected"`
	TopologyChanges        uint64        `json:"topology_changes"`
	TAPMode                string        `json:"tap_mode"`
	Protocol               string        `json:"protocol"`
	BPDUsIgnored           uint64        `json:"bpdus_ignored"`   // to the wrong group for their port, or on an edge TAP
	BPDUsMalformed         uint64        `json:"bpdus_malformed"` // did not decode
	Ports                  []showSTPPort `json:"ports"`
}

type showSTPPort struct {
	Name             string  `json:"name"`
	No               int     `json:"no"`
	PortID           string  `json:"port_id"`
	State            string  `json:"state"`
	Role             string  `json:"role"`
	PathCost         uint32  `json:"path_cost"`
	DesignatedRoot   string  `json:"designated_root"`
	DesignatedBridge string  `json:"designated_bridge"`
	DesignatedPort   string  `json:"designated_port"`
	DesignatedCost   uint32  `json:"designated_cost"`
	RootGuard        bool    `json:"root_guard"`
	RootInconsistent bool    `json:"root_inconsistent"`
	BPDUsIn          uint64  `json:"bpdus_in"`
	BPDUsOut         uint64  `json:"bpdus_out"`
	Protocol         string  `json:"protocol"` // what the port speaks: rstp, or stp after falling back
	PointToPoint     bool    `json:"point_to_point"`
	Edge             bool    `json:"edge"`
	RTT              float64 `json:"rtt_ms,omitempty"` // smoothed round trip to the peer
}

func (s *spanningTree) status() *showSTP {
	s.mu.Lock()
	st := s.tree.Status()
	names := make(map[stp.PortNo]string, len(s.names))
	for k, v := range s.names {
		names[k] = v
	}
	s.mu.Unlock()
	out := &showSTP{
		BridgeID: st.BridgeID.String(), DesignatedRoot: st.RootID.String(), IsRoot: st.IsRoot(),
		RootPort: names[st.RootPort], RootPathCost: st.RootPathCost,
		MaxAge: st.MaxAge.Seconds(), HelloTime: st.HelloTime.Seconds(), ForwardDelay: st.ForwardDelay.Seconds(),
		BridgeMaxAge: st.BridgeMaxAge.Seconds(), BridgeHelloTime: st.BridgeHelloTime.Seconds(), BridgeForwardDelay: st.BridgeForwardDelay.Seconds(),
		TopologyChange: st.TopologyChange, TopologyChangeDetected: st.TopologyChangeDetected, TopologyChanges: st.TopologyChanges,
		TAPMode: s.tapMode, Protocol: st.Protocol.String(),
		BPDUsIgnored: s.ignored.Load(), BPDUsMalformed: s.bad.Load(),
	}
	for _, p := range st.Ports {
		out.Ports = append(out.Ports, showSTPPort{
			Name: names[p.No], No: int(p.No), PortID: p.ID.String(), State: p.State.String(), Role: p.Role.String(),
			PathCost: p.PathCost, DesignatedRoot: p.DesignatedRoot.String(), DesignatedBridge: p.DesignatedBridge.String(),
			DesignatedPort: p.DesignatedPort.String(), DesignatedCost: p.DesignatedCost,
			RootGuard: p.RootGuard, RootInconsistent: p.RootInconsistent,
			BPDUsIn: p.Counters.ConfigIn + p.Counters.TCNIn, BPDUsOut: p.Counters.ConfigOut + p.Counters.TCNOut,
			Protocol: p.Protocol.String(), PointToPoint: p.PointToPoint, Edge: p.Edge,
		})
	}
	return out
}

// printSTP prints the tree the way brctl showstp does.
func printSTP(w interface{ Write([]byte) (int, error) }, st showStatus) {
	t := st.STP
	fmt.Fprintf(w, "spanning tree: %s\n", st.Interface.TAP)
	row := func(k1 string, v1 any, k2 string, v2 any) {
		fmt.Fprintf(w, " %-22s %-18v %-22s %v\n", k1, v1, k2, v2)
	}
	fmt.Fprintf(w, " %-22s %s\n", "bridge id", t.BridgeID)
	fmt.Fprintf(w, " %-22s %s%s\n", "designated root", t.DesignatedRoot, ifThen(t.IsRoot, " (this bridge)"))
	row("root port", orNone(t.RootPort), "path cost", t.RootPathCost)
	row("max age", secs(t.MaxAge), "bridge max age", secs(t.BridgeMaxAge))
	row("hello time", secs(t.HelloTime), "bridge hello time", secs(t.BridgeHelloTime))
	row("forward delay", secs(t.ForwardDelay), "bridge forward delay", secs(t.BridgeForwardDelay))
	row("protocol", t.Protocol, "tap mode", t.TAPMode)
	row("topology changes", t.TopologyChanges, "bpdus dropped", t.BPDUsIgnored+t.BPDUsMalformed)
	var flags []string
	if t.TopologyChange {
		flags = append(flags, "TOPOLOGY_CHANGE")
	}
	if t.TopologyChangeDetected {
		flags = append(flags, "TOPOLOGY_CHANGE_DETECTED")
	}
	fmt.Fprintf(w, " %-22s %s\n", "flags", strings.Join(flags, " "))
	for _, p := range t.Ports {
		fmt.Fprintf(w, "\n%s (%d)\n", p.Name, p.No)
		row("port id", p.PortID, "state", p.State)
		row("role", p.Role, "path cost", p.PathCost)
		row("designated root", p.DesignatedRoot, "designated cost", p.DesignatedCost)
		row("designated bridge", p.DesignatedBridge, "designated port", p.DesignatedPort)
		row("bpdus in", p.BPDUsIn, "bpdus out", p.BPDUsOut)
		row("protocol", p.Protocol, "point-to-point", p.PointToPoint)
		if p.RTT > 0 {
			row("round trip", fmt.Sprintf("%.2fms", p.RTT), "", "")
		}
		var pf []string
		if p.RootGuard {
			pf = append(pf, "ROOT_GUARD")
		}
		if p.RootInconsistent {
			pf = append(pf, "ROOT_INCONSISTENT")
		}
		fmt.Fprintf(w, " %-22s %s\n", "flags", strings.Join(pf, " "))
	}
}
