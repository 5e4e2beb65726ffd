package node

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/bridge/spanning"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/config"
	"github.com/l2wg/l2wg/tunnel"
)

// The node's setters for reload (see live). Without a spanning tree the
// tree's settings have nothing to change and are kept for a restart that
// enables it.

var _ live = (*Node)(nil)

func (n *Node) setLogLevel(l slog.Level) { n.level.Set(l) }

func (n *Node) setIsolateHost(on bool) { n.port.setIsolateHost(on) }

// setListenPort moves WireGuard to another UDP port. wireguard-go closes
// its sockets before it binds the new port, so a port another socket holds
// leaves it with none: then the port bound before is bound again.
func (n *Node) setListenPort(port int) error {
	was := n.Applied().ListenPort
	if ts, err := n.tun.Status(); err == nil {
		was = ts.ListenPort // the port in use (listen_port 0 picked one)
	}
	err := n.tun.SetListenPort(port)
	if err == nil {
		return nil
	}
	if rerr := n.tun.SetListenPort(was); rerr != nil {
		return fmt.Errorf("%w; and binding port %d again failed: %v", err, was, rerr)
	}
	return err
}

func (n *Node) setAgeing(d time.Duration) {
	if n.st != nil {
		n.st.SetAgeing(d) // kept short while a topology change lasts
		return
	}
	n.br.SetAgeingTime(d)
}

// setStormLimit applies storm_limit to every port, and to those added later.
func (n *Node) setStormLimit(pps int) {
	n.storm.Store(int64(pps))
	for _, p := range n.br.Ports() {
		n.br.SetStormLimit(p.ID, pps)
	}
}

func (n *Node) setBPDUGuard(on bool) {
	if n.st != nil {
		n.st.SetBPDUGuard(on)
	}
}

func (n *Node) setBridgeTimers(s config.STP) error {
	if n.st == nil {
		return n.edge.setSTP(s) // the mesh's virtual root, if any
	}
	return n.st.SetBridge(treeConfig(s))
}

func (n *Node) setTAPCost(cost uint32) error {
	if n.st == nil || n.st.TAPModeInUse() == spanning.TAPEdge {
		return nil
	}
	return n.st.SetPortCost(n.port.id, cost)
}

// setTAPVLANs sets the VLANs the TAP port carries.
func (n *Node) setTAPVLANs(f bridge.VLANFilter) { n.br.SetVLANFilter(n.port.id, f) }

// setPeerVLANs sets the VLANs a peer's port carries.
func (n *Node) setPeerVLANs(pc config.Peer) error {
	p := n.peerPort(pc.PublicKey)
	if p == nil {
		return fmt.Errorf("peer %s: no such peer", pc.Name)
	}
	n.br.SetVLANFilter(p.PortID(), pc.VLANs)
	return nil
}

// peerPort finds the port of the peer with key.
func (n *Node) peerPort(key [32]byte) *tunnel.PeerPort {
	for _, p := range n.tun.Peers() {
		if p.Key() == key {
			return p
		}
	}
	return nil
}

// addPeer adds a peer and its port, in the tree if there is one; a port the
// tree refuses is taken out again.
func (n *Node) addPeer(pc config.Peer) error {
	p, err := n.tun.AddPeer(pc.PeerConfig)
	if err != nil {
		return err
	}
	n.br.SetVLANFilter(p.PortID(), pc.VLANs)
	if n.st == nil {
		return nil
	}
	if err := n.st.AddPort(p.PortID(), p.Name(), pc.Cost, false); err != nil {
		n.tun.RemovePeer(pc.PublicKey)
		return err
	}
	n.costs.mark(p.PortID(), pc.Cost == config.CostAuto)
	return nil
}

func (n *Node) removePeer(pc config.Peer) error {
	p := n.peerPort(pc.PublicKey)
	if p == nil {
		return fmt.Errorf("remove peer %s: no such peer", pc.Name)
	}
	if n.st != nil {
		n.st.RemovePort(p.PortID())
		n.costs.forget(p.PortID())
	}
	return n.tun.RemovePeer(pc.PublicKey)
}

func (n *Node) updatePeer(pc config.Peer) error { return n.tun.UpdatePeer(pc.PeerConfig) }

func (n *Node) setPeerCost(pc config.Peer) error {
	if n.st == nil {
		return nil
	}
	p := n.peerPort(pc.PublicKey)
	if p == nil {
		return fmt.Errorf("peer %s: no such peer", pc.Name)
	}
	return n.costs.set(p.PortID(), pc.Cost, n.st.SetPortCost)
}
