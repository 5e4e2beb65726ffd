package control

import (
	"time"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/frag"
	"github.com/l2wg/l2wg/tunnel"
)

// The JSON that `l2wg show --json` prints and the control socket serves.
// Field names are stable; new fields may be added.

type Status struct {
	Interface  Interface  `json:"interface"`
	Peers      []Peer     `json:"peers"`
	Ports      []Port     `json:"ports"`
	Switch     Switch     `json:"switch"`
	STP        *STP       `json:"stp,omitempty"`
	Mesh       *Mesh      `json:"mesh,omitempty"` // nil unless mesh.protocol is shortest-path
	Reassembly frag.Stats `json:"reassembly"`
	Tunnel     Tunnel     `json:"tunnel"`
	FDB        []FDBEntry `json:"fdb,omitempty"`
}

type Interface struct {
	TAP         string `json:"tap"`
	MTU         int    `json:"mtu"`
	Bridge      string `json:"bridge,omitempty"`
	Offload     bool   `json:"offload"`
	Persistent  bool   `json:"persistent"`
	IsolateHost bool   `json:"isolate_host"`
	PublicKey   string `json:"public_key"`
	ListenPort  int    `json:"listen_port"`
	TunnelMTU   int    `json:"tunnel_mtu"`
	Label       string `json:"label"`
	Version     string `json:"version"`
	PID         int    `json:"pid"`
}

type Peer struct {
	Name                string     `json:"name"`
	PublicKey           string     `json:"public_key"`
	Endpoint            string     `json:"endpoint,omitempty"`
	LatestHandshake     *time.Time `json:"latest_handshake,omitempty"`
	RxBytes             uint64     `json:"rx_bytes"`
	TxBytes             uint64     `json:"tx_bytes"`
	PersistentKeepalive int        `json:"persistent_keepalive"` // seconds, 0 = off
	Port                int        `json:"port"`
	Live                bool       `json:"live"` // has a WireGuard session
}

type Port struct {
	ID       int               `json:"id"`
	Name     string            `json:"name"`
	State    string            `json:"state"`
	RxFrames uint64            `json:"rx_frames"`
	RxBytes  uint64            `json:"rx_bytes"`
	TxFrames uint64            `json:"tx_frames"`
	TxBytes  uint64            `json:"tx_bytes"`
	Drops    map[string]uint64 `json:"drops,omitempty"`
	// VLANs the port carries ("all", "100-199,300", "none") and Untagged
	// whether it carries untagged frames; TxVLANFiltered counts the flooded
	// frames it did not get because it does not carry their VLAN.
	VLANs          string `json:"vlans"`
	Untagged       bool   `json:"untagged"`
	TxVLANFiltered uint64 `json:"tx_vlan_filtered"`
}

type Switch struct {
	FDBEntries   int               `json:"fdb_entries"`
	FDBLimit     int               `json:"fdb_limit"`
	AgeingTime   float64           `json:"ageing_time"` // seconds
	StationMoves uint64            `json:"station_moves"`
	Drops        map[string]uint64 `json:"drops,omitempty"`
}

// Tunnel is what the tunnel itself dropped (see tunnel.Drops).
type Tunnel struct {
	Drops map[string]uint64 `json:"drops,omitempty"`
}

// DropCount is a drop reason's name and its count.
type DropCount struct {
	Reason string
	N      uint64
}

// TunnelDropCounts names each of the tunnel's drop counters, as show and
// the metrics name them.
func TunnelDropCounts(d tunnel.Drops) []DropCount {
	return []DropCount{
		{"malformed", d.Malformed}, {"unknown-peer", d.UnknownPeer}, {"too-big", d.TooBig},
		{"closed", d.Closed}, {"control-queue-full", d.Control},
		{"unsolicited-probe", d.UnsolicitedProbe}, {"foreign-label", d.ForeignLabel},
	}
}

// TunnelDrops are the tunnel's nonzero drop counters by reason.
func TunnelDrops(d tunnel.Drops) map[string]uint64 {
	m := make(map[string]uint64)
	for _, c := range TunnelDropCounts(d) {
		if c.N > 0 {
			m[c.Reason] = c.N
		}
	}
	return m
}

type FDBEntry struct {
	VID  uint16  `json:"vid"` // 0: untagged
	MAC  string  `json:"mac"`
	Port int     `json:"port"`
	Name string  `json:"port_name"`
	Age  float64 `json:"age"` // seconds since last seen
}

// SwitchDrops are a switch port's (or the switch's) nonzero drop counters
// by reason.
func SwitchDrops(d bridge.Drops) map[string]uint64 {
	m := make(map[string]uint64)
	for i, n := range d {
		if n > 0 {
			m[bridge.DropReason(i).String()] = n
		}
	}
	return m
}

// STP is the spanning tree in `l2wg show`, as brctl showstp prints it.
type STP struct {
	BridgeID               string    `json:"bridge_id"`
	DesignatedRoot         string    `json:"designated_root"`
	IsRoot                 bool      `json:"is_root"`
	RootPort               string    `json:"root_port,omitempty"`
	RootPathCost           uint32    `json:"root_path_cost"`
	MaxAge                 float64   `json:"max_age"`
	HelloTime              float64   `json:"hello_time"`
	ForwardDelay           float64   `json:"forward_delay"`
	BridgeMaxAge           float64   `json:"bridge_max_age"`
	BridgeHelloTime        float64   `json:"bridge_hello_time"`
	BridgeForwardDelay     float64   `json:"bridge_forward_delay"`
	TopologyChange         bool      `json:"topology_change"`
	TopologyChangeDetected bool      `json:"topology_change_detected"`
	TopologyChanges        uint64    `json:"topology_changes"`
	TAPMode                string    `json:"tap_mode"`
	Protocol               string    `json:"protocol"`
	BPDUsIgnored           uint64    `json:"bpdus_ignored"`   // to the wrong group for their port, or on an edge TAP
	BPDUsMalformed         uint64    `json:"bpdus_malformed"` // did not decode
	Ports                  []STPPort `json:"ports"`
}

type STPPort struct {
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
	RootGuardBlocks  uint64  `json:"root_guard_blocks,omitempty"` // mesh virtual root: times root guard blocked the TAP
	BPDUsIn          uint64  `json:"bpdus_in"`
	BPDUsOut         uint64  `json:"bpdus_out"`
	Protocol         string  `json:"protocol"` // what the port speaks: rstp, or stp after falling back
	PointToPoint     bool    `json:"point_to_point"`
	Edge             bool    `json:"edge"`
	RTT              float64 `json:"rtt_ms,omitempty"` // smoothed round trip to the peer
}

// ReloadResult is the answer to "reload".
type ReloadResult struct {
	OK      bool     `json:"ok"`
	Changes []string `json:"changes,omitempty"`
	Error   string   `json:"error,omitempty"`
}
