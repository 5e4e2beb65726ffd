// Package spanning drives the pure stp state machine for a bridge.Bridge —
// the role of the kernel's br_stp_if.c: it feeds the tree the BPDUs the
// switch hands over, the time and the links' changes, and carries out the
// tree's actions (port states, BPDUs to send, FDB flushes and ageing) on
// the switch. The TAP port takes part in one of four modes (TAPModes).
package spanning

import (
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/stp"
)

// PrivateGroup is the destination of l2wg's spanning-tree messages on a TAP
// whose host bridge does not run STP. A non-STP Linux bridge floods BPDUs
// to 01:80:C2:00:00:00 like data onto the physical LAN, where a switch with
// BPDU guard shuts its port; to a locally administered group address
// outside 01:80:C2:00:00:0X, switches forward the same messages as plain
// multicast, and l2wg nodes on the LAN still find a loop through it.
var PrivateGroup = bridge.MAC{0x03, 0x6c, 0x32, 0x77, 0x67, 0x00}

// TAP port modes ([stp] tap).
const (
	TAPAuto    = "auto"    // stp if the host bridge runs kernel STP, private otherwise
	TAPSTP     = "stp"     // standard BPDUs: one tree with the kernel bridge
	TAPPrivate = "private" // l2wg's messages to PrivateGroup
	TAPEdge    = "edge"    // no spanning-tree messages: the TAP always forwards
)

// TAPModes are the modes [stp] tap may name.
var TAPModes = []string{TAPAuto, TAPSTP, TAPPrivate, TAPEdge}

// Config is the tree's part of [stp].
type Config struct {
	Priority     uint16
	HelloTime    time.Duration
	MaxAge       time.Duration
	ForwardDelay time.Duration
	Protocol     stp.Protocol
	BPDUGuard    bool // a BPDU from the VM side disables the TAP port for BPDUGuardHold
	// Now is the clock of the changes not driven by Tick (a BPDU received,
	// a link or a setting changed); nil: time.Now. Tests pass a fake one.
	Now func() time.Time
}

// Tree drives the pure stp state machine for the switch: it feeds it
// BPDUs, time and link changes, and carries out its actions on the switch.
type Tree struct {
	br      *bridge.Bridge
	log     *slog.Logger
	mac     [6]byte
	ageing  time.Duration // the configured FDB ageing, restored after a topology change
	tapID   bridge.PortID
	tapMode string

	now func() time.Time

	mu    sync.Mutex // protects tree, names, up and ageing, and orders the actions applied
	tree  *stp.Bridge
	names map[stp.PortNo]string
	up    map[bridge.PortID]bool // link state last reported by setLink

	ignored atomic.Uint64 // BPDUs to the wrong group for their port, or on an edge TAP
	bad     atomic.Uint64 // BPDUs that do not decode

	bpduGuard    atomic.Bool
	guardedUntil time.Time // the TAP port is disabled by BPDU guard until then; zero if not; under mu
}

// BPDUGuardHold is how long BPDU guard keeps the TAP port disabled after the
// last BPDU from the VM side.
const BPDUGuardHold = 30 * time.Second

func (s *Tree) SetBPDUGuard(on bool) { s.bpduGuard.Store(on) }

// guardLocked disables the TAP port: a spanning-tree message came from the
// VM side, where BPDU guard says none may come from.
func (s *Tree) guardLocked(now time.Time) {
	if s.guardedUntil.IsZero() {
		s.log.Error("bpdu guard: spanning-tree message received on the TAP port; port disabled",
			"port", s.names[stp.PortNo(s.tapID)], "for", BPDUGuardHold)
		if s.tapMode == TAPEdge {
			s.br.SetPortState(s.tapID, stp.Disabled)
		} else {
			s.applyLocked(s.tree.Disable(stp.PortNo(s.tapID), now))
		}
	}
	s.guardedUntil = now.Add(BPDUGuardHold)
}

// unguardLocked re-enables the TAP port once the hold has passed.
func (s *Tree) unguardLocked(now time.Time) {
	if s.guardedUntil.IsZero() || now.Before(s.guardedUntil) {
		return
	}
	s.guardedUntil = time.Time{}
	s.log.Info("bpdu guard: no spanning-tree message from the VM side for a while; TAP port enabled again", "port", s.names[stp.PortNo(s.tapID)])
	if s.tapMode == TAPEdge {
		s.br.SetPortState(s.tapID, stp.Forwarding)
	} else {
		s.applyLocked(s.tree.Enable(stp.PortNo(s.tapID), now))
	}
}

// resolveTAPMode turns "auto" into stp or private by the host bridge's
// stp_state (1: kernel STP, 2: a user-space STP daemon such as mstpd).
func ResolveTAPMode(mode, hostBridge string) string {
	if mode != TAPAuto {
		return mode
	}
	if hostBridge == "" {
		return TAPPrivate
	}
	b, err := os.ReadFile(filepath.Join("/sys/class/net", hostBridge, "bridge/stp_state"))
	if err == nil && strings.TrimSpace(string(b)) != "0" {
		return TAPSTP
	}
	return TAPPrivate
}

func New(cfg Config, mac [6]byte, br *bridge.Bridge, ageing time.Duration, tapMode string, log *slog.Logger) (*Tree, error) {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	tree, err := stp.New(stp.Config{
		Priority: cfg.Priority, MAC: mac, Protocol: cfg.Protocol,
		HelloTime: cfg.HelloTime, MaxAge: cfg.MaxAge, ForwardDelay: cfg.ForwardDelay,
	}, now())
	if err != nil {
		return nil, err
	}
	s := &Tree{br: br, log: log, mac: mac, ageing: ageing, tapMode: tapMode, now: now, tree: tree, names: make(map[stp.PortNo]string), up: make(map[bridge.PortID]bool)}
	s.bpduGuard.Store(cfg.BPDUGuard)
	br.AddControlAddress(PrivateGroup)
	br.SetControlHandler(s.handleControl)
	return s, nil
}

// addPort makes a switch port a spanning-tree port, Disabled until its link
// is up. The switch port is put in the tree's state at once.
// A tunnel peer port is point-to-point (one bridge behind it: RSTP's
// proposal/agreement makes it forward at once); the TAP port is not (its
// host bridge may hold other l2wg nodes on a LAN).
func (s *Tree) AddPort(id bridge.PortID, name string, cost uint32, rootGuard bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	no := stp.PortNo(id)
	pc := stp.DefaultPortConfig()
	if cost != 0 {
		pc.PathCost = cost
	}
	pc.RootGuard = rootGuard
	pc.PointToPoint = !rootGuard
	actions, err := s.tree.AddPort(no, pc, s.now())
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
func (s *Tree) SetTAP(id bridge.PortID, name string, cost uint32) error {
	s.tapID = id
	if s.tapMode == TAPEdge {
		return nil
	}
	if err := s.AddPort(id, name, cost, true); err != nil {
		return err
	}
	s.SetLink(id, true)
	return nil
}

// setLink reports a port's link up or down (a peer with or without a
// WireGuard session). It reports whether that changed the link's state.
func (s *Tree) SetLink(id bridge.PortID, up bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.names[stp.PortNo(id)]; !ok || s.up[id] == up {
		return false // not (or no longer) a tree port, or no change
	}
	s.up[id] = up
	now := s.now()
	if up {
		s.applyLocked(s.tree.Enable(stp.PortNo(id), now))
	} else {
		s.applyLocked(s.tree.Disable(stp.PortNo(id), now))
	}
	return true
}

// removePort takes a port out of the tree.
func (s *Tree) RemovePort(id bridge.PortID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	actions, err := s.tree.RemovePort(stp.PortNo(id), s.now())
	if err == nil {
		s.applyLocked(actions)
	}
	delete(s.names, stp.PortNo(id))
	delete(s.up, id)
}

// setPortCost changes a port's path cost.
func (s *Tree) SetPortCost(id bridge.PortID, cost uint32) error {
	if cost == 0 {
		cost = stp.DefaultPathCost
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	actions, err := s.tree.SetPortCost(stp.PortNo(id), cost, s.now())
	if err != nil {
		return err
	}
	s.applyLocked(actions)
	return nil
}

// setBridge changes the bridge priority and timers.
func (s *Tree) SetBridge(cfg Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
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
func (s *Tree) SetAgeing(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ageing = d
	if !s.tree.Status().TopologyChange {
		s.br.SetAgeingTime(d)
	}
}

// tick advances the tree's timers.
func (s *Tree) Tick(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unguardLocked(now)
	s.applyLocked(s.tree.Tick(now))
}

// handleControl takes the switch's control frames: BPDUs to the standard
// group on peer ports and on an stp-mode TAP, to the private group on a
// private-mode TAP. Anything else is ignored and counted.
func (s *Tree) handleControl(in bridge.PortID, f bridge.Frame) {
	dst := bridge.Dst(f.Data)
	if in == s.tapID && s.bpduGuard.Load() && (dst == bridge.MAC(stp.GroupAddress) || dst == PrivateGroup) {
		s.mu.Lock()
		s.guardLocked(s.now())
		s.mu.Unlock()
		return
	}
	want := bridge.MAC(stp.GroupAddress)
	if in == s.tapID {
		switch s.tapMode {
		case TAPEdge:
			s.ignored.Add(1)
			return
		case TAPPrivate:
			want = PrivateGroup
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
	s.applyLocked(s.tree.Receive(stp.PortNo(in), bpdu, s.now()))
}

// applyLocked carries out the tree's actions in order.
func (s *Tree) applyLocked(actions []stp.Action) {
	for _, a := range actions {
		id := bridge.PortID(a.Port)
		switch a.Kind {
		case stp.SendBPDU:
			dst := stp.GroupAddress
			if id == s.tapID && s.tapMode == TAPPrivate {
				dst = PrivateGroup
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

// Status is the tree as `l2wg show` reports it.
type Status struct {
	stp.Status
	Names     map[stp.PortNo]string // each port's name
	TAPMode   string
	Ignored   uint64 // BPDUs to the wrong group for their port, or on an edge TAP
	Malformed uint64 // BPDUs that did not decode
}

// Status reads the tree.
func (s *Tree) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Status{Status: s.tree.Status(), Names: maps.Clone(s.names), TAPMode: s.tapMode, Ignored: s.ignored.Load(), Malformed: s.bad.Load()}
}

// TAPModeInUse is the TAP port's mode, auto resolved.
func (s *Tree) TAPModeInUse() string { return s.tapMode }
