package node

import (
	"os"
	"time"

	"github.com/l2wg/l2wg/bridge/spanning"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/control"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/metrics"
)

// Status gathers the node's state; withFDB adds the forwarding database.
func (n *Node) Status(withFDB bool) control.Status {
	now := time.Now()
	cfg := n.Applied() // the config in force, not the one of start
	st := control.Status{
		Interface: control.Interface{
			TAP: n.tap.Name(), MTU: cfg.TAPMTU, Bridge: cfg.TAPBridge, Offload: n.tap.Offload(),
			Persistent: cfg.TAPPersistent, IsolateHost: cfg.IsolateHost,
			TunnelMTU: cfg.TunnelMTU, Label: n.tun.Self().String(), Version: n.version, PID: os.Getpid(),
		},
		Reassembly: n.tun.ReassemblyStats(),
		Tunnel:     control.Tunnel{Drops: control.TunnelDrops(n.tun.Drops())},
	}
	if ts, err := n.tun.Status(); err == nil {
		st.Interface.PublicKey = ts.PublicKey
		st.Interface.ListenPort = ts.ListenPort
		for _, p := range ts.Peers {
			sp := control.Peer{
				Name: p.Name, PublicKey: p.PublicKey, Endpoint: p.Endpoint, RxBytes: p.RxBytes, TxBytes: p.TxBytes,
				PersistentKeepalive: int(p.PersistentKeepalive / time.Second), Port: int(p.Port), Live: p.Live(now),
			}
			if !p.LastHandshake.IsZero() {
				hs := p.LastHandshake
				sp.LatestHandshake = &hs
			}
			st.Peers = append(st.Peers, sp)
		}
	}
	for _, p := range n.br.Ports() {
		st.Ports = append(st.Ports, control.Port{
			ID: int(p.ID), Name: p.Name, State: p.State.String(),
			RxFrames: p.Counters.RxFrames, RxBytes: p.Counters.RxBytes,
			TxFrames: p.Counters.TxFrames, TxBytes: p.Counters.TxBytes,
			Drops: control.SwitchDrops(p.Counters.Drops),
			VLANs: p.VLANs.VIDs.String(), Untagged: p.VLANs.Untagged, TxVLANFiltered: p.Counters.TxVLANFiltered,
		})
	}
	bs := n.br.Stats()
	st.Switch = control.Switch{
		FDBEntries: bs.FDBEntries, FDBLimit: bs.FDBLimit, AgeingTime: n.br.AgeingTime().Seconds(),
		StationMoves: bs.StationMoves, Drops: control.SwitchDrops(bs.Drops),
	}
	st.STP = n.stpStatus()
	if withFDB {
		for _, e := range n.br.FDB() {
			st.FDB = append(st.FDB, control.FDBEntry{VID: e.VID, MAC: e.MAC.String(), Port: int(e.Port), Name: e.PortName, Age: e.Age.Seconds()})
		}
	}
	return st
}

// stpStatus is the spanning tree for show and the metrics; nil without one.
func (n *Node) stpStatus() *control.STP {
	if n.st == nil {
		return n.meshSTPStatus() // mesh_stp.go
	}
	st := stpJSON(n.st.Status())
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

// stpJSON is the tree's status as show reports it (brctl showstp's fields).
func stpJSON(s spanning.Status) *control.STP {
	st, names := s.Status, s.Names
	out := &control.STP{
		BridgeID: st.BridgeID.String(), DesignatedRoot: st.RootID.String(), IsRoot: st.IsRoot(),
		RootPort: names[st.RootPort], RootPathCost: st.RootPathCost,
		MaxAge: st.MaxAge.Seconds(), HelloTime: st.HelloTime.Seconds(), ForwardDelay: st.ForwardDelay.Seconds(),
		BridgeMaxAge: st.BridgeMaxAge.Seconds(), BridgeHelloTime: st.BridgeHelloTime.Seconds(), BridgeForwardDelay: st.BridgeForwardDelay.Seconds(),
		TopologyChange: st.TopologyChange, TopologyChangeDetected: st.TopologyChangeDetected, TopologyChanges: st.TopologyChanges,
		TAPMode: s.TAPMode, Protocol: st.Protocol.String(),
		BPDUsIgnored: s.Ignored, BPDUsMalformed: s.Malformed,
	}
	for _, p := range st.Ports {
		out.Ports = append(out.Ports, control.STPPort{
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

// metricsSnapshot reads the node's state for one scrape.
func (n *Node) metricsSnapshot() metrics.Snapshot {
	s := metrics.Snapshot{
		TAP:        n.tap.Name(),
		Ports:      n.br.Ports(),
		Switch:     n.br.Stats(),
		FDBByVLAN:  n.br.FDBEntriesByVLAN(),
		Reassembly: n.tun.ReassemblyStats(),
		Tunnel:     n.tun.Drops(),
		STP:        n.stpStatus(),
		Mesh:       control.MeshSourceOf(n),
		Now:        time.Now(),
	}
	if ts, err := n.tun.Status(); err == nil {
		s.Peers = ts.Peers
	}
	return s
}
