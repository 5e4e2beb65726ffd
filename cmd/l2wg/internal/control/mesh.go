package control

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"time"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/bridge/mesh"
)

// MeshViewer is what a node running the mesh protocol offers the control
// socket and the metrics, besides Handler. A node without a mesh (rstp,
// stp) does not implement it, or answers ok false.
type MeshViewer interface {
	MeshView() (MeshSource, bool)
}

// MeshSource is what the node hands over: the machine's view (with the
// peers' names in View.Names), the mesh port's counters, the measured
// round trip to each neighbour, and the time spent computing tables.
type MeshSource struct {
	View mesh.View
	Port bridge.MeshStats
	RTT  map[mesh.NodeID]time.Duration // neighbours with a measured RTT
	// SPFTime is the wall time the machine's table computations took,
	// summed, when SPFTimed (the node measures it); otherwise neither show
	// nor the metrics report an SPF time.
	SPFTime  time.Duration
	SPFTimed bool
	// LAN is the LAN behind the node's TAP; nil where the node runs no
	// appointed-forwarder election.
	LAN *MeshLAN
}

// MeshLAN is the LAN behind a node's TAP as its appointed-forwarder
// election sees it (bridge/mesh Forwarder): the l2wg nodes heard on it,
// this one included, and the one that passes frames between it and the
// mesh.
type MeshLAN struct {
	Forwarding bool          // this node is the LAN's appointed forwarder
	Forwarder  mesh.NodeID   // the LAN's forwarder; 0 while none is
	Nodes      []mesh.NodeID // ascending
}

// MeshLANSection is the LAN in `l2wg show mesh`.
type MeshLANSection struct {
	Forwarding bool     `json:"forwarding"`          // this node forwards
	Forwarder  string   `json:"forwarder,omitempty"` // node ID; omitted while none
	Nodes      []string `json:"nodes"`               // node IDs heard on the LAN, this one included
}

// Mesh is the mesh protocol in `l2wg show` and `l2wg show mesh`: omitted
// when the node runs rstp or stp.
type Mesh struct {
	Self   string `json:"self"` // node ID, 8 hex digits
	Synced bool   `json:"synced"`
	// UsedKnown: links' used was computed over every node's tree (up to
	// mesh.MaxViewUsedNodes nodes, by mesh.View.ComputeUsed).
	UsedKnown bool       `json:"used_known"`
	Nodes     []MeshNode `json:"nodes"`
	Links     []MeshLink `json:"links"`
	Stats     MeshStats  `json:"stats"`
	// LAN behind this node's TAP: its appointed forwarder.
	LAN *MeshLANSection `json:"lan,omitempty"`
}

// MeshNode is one node of the link-state database.
type MeshNode struct {
	ID        string   `json:"id"`
	Name      string   `json:"name,omitempty"`
	PublicKey string   `json:"public_key"`
	Seq       uint64   `json:"seq"`
	Lifetime  float64  `json:"lifetime"` // seconds left
	Reachable bool     `json:"reachable"`
	Hops      int      `json:"hops"`
	Cost      uint64   `json:"cost"`               // of the path from this node
	NextHop   string   `json:"next_hop,omitempty"` // ID of the neighbour the path starts with
	Path      []string `json:"path,omitempty"`     // IDs from this node to it, both included
}

// MeshLink is one link as its ends' records list it.
type MeshLink struct {
	A         string  `json:"a"`
	B         string  `json:"b"`
	CostAB    uint32  `json:"cost_ab"` // as a lists it; 0: not listed
	CostBA    uint32  `json:"cost_ba"`
	Cost      uint32  `json:"cost"`      // in the graph (the larger); 0 unless confirmed
	Confirmed bool    `json:"confirmed"` // both ends list it
	InUse     bool    `json:"in_use"`    // on this node's shortest-path tree
	Used      bool    `json:"used"`      // on some node's tree: some pair's frames take it
	RTT       float64 `json:"rtt_ms,omitempty"`
}

// MeshStats are the mesh's counters.
type MeshStats struct {
	DatabaseNodes int      `json:"database_nodes"` // records held
	GraphNodes    int      `json:"graph_nodes"`    // reachable, in the last computation
	GraphLinks    int      `json:"graph_links"`    // confirmed links in it
	SPFRuns       uint64   `json:"spf_runs"`
	Computes      uint64   `json:"computes"`
	SPFSeconds    *float64 `json:"spf_seconds,omitempty"`      // nil: not measured
	LastSPFSecs   *float64 `json:"last_spf_seconds,omitempty"` // the latest computation; nil: not measured
	FloodsIn      uint64   `json:"floods_in"`                  // records accepted as new or newer
	FloodsOut     uint64   `json:"floods_out"`
	SummariesIn   uint64   `json:"summaries_in"`
	SummariesOut  uint64   `json:"summaries_out"`
	RequestsIn    uint64   `json:"requests_in"`
	RequestsOut   uint64   `json:"requests_out"`
	Expired       uint64   `json:"expired"`
	// Records or messages dropped, by reason.
	ControlDrops map[string]uint64 `json:"control_drops,omitempty"`
	// Frames: what the mesh port forwarded and dropped.
	FramesSent    uint64            `json:"frames_sent"`
	FramesTransit uint64            `json:"frames_transit"`
	FrameDrops    map[string]uint64 `json:"frame_drops,omitempty"`
	ControlIn     uint64            `json:"control_in"`
	ControlOut    uint64            `json:"control_out"`
	Addresses     int               `json:"addresses"` // learned behind other nodes
}

// MeshControlDropCounts names the machine's drop counters, as show and
// the metrics name them.
func MeshControlDropCounts(s mesh.Stats) []DropCount {
	return []DropCount{
		{"malformed", s.Malformed}, {"not-adjacent", s.NotAdjacent}, {"absurd-seq", s.AbsurdSeq},
		{"oversized", s.Oversized}, {"database-full", s.DatabaseFull}, {"id-collision", s.Collisions},
	}
}

// MeshFrameDropCounts names the mesh port's drop counters.
func MeshFrameDropCounts(s bridge.MeshStats) []DropCount {
	return []DropCount{
		{"hop-limit", s.HopLimit}, {"reverse-path", s.ReversePath}, {"no-route", s.NoRoute},
		{"no-table", s.NoTable}, {"malformed", s.Malformed},
		{"hop-limit-zero", s.HopLimitZero}, {"vlan-filtered", s.VLANFiltered}, {"protocol-mismatch", s.ProtocolMismatch},
	}
}

func nonzero(cs []DropCount) map[string]uint64 {
	m := make(map[string]uint64)
	for _, c := range cs {
		if c.N > 0 {
			m[c.Reason] = c.N
		}
	}
	return m
}

// MeshSourceOf returns what h hands over about its mesh: nil unless h is
// a MeshViewer with a mesh (h may be nil).
func MeshSourceOf(h any) *MeshSource {
	mv, ok := h.(MeshViewer)
	if !ok || mv == nil {
		return nil
	}
	src, ok := mv.MeshView()
	if !ok {
		return nil
	}
	return &src
}

// MeshOf returns the mesh section of h: nil unless h is a MeshViewer with
// a mesh (h may be nil).
func MeshOf(h any) *Mesh {
	if src := MeshSourceOf(h); src != nil {
		return NewMesh(*src)
	}
	return nil
}

// NewMesh fills the mesh section from what the node hands over.
func NewMesh(src MeshSource) *Mesh {
	v := src.View
	m := &Mesh{Self: v.Self.String(), Synced: v.Synced, UsedKnown: v.UsedKnown, Nodes: []MeshNode{}, Links: []MeshLink{}}
	for _, n := range v.Nodes {
		mn := MeshNode{ID: n.ID.String(), Name: v.Names[n.ID], PublicKey: base64.StdEncoding.EncodeToString(n.Key[:]),
			Seq: n.Seq, Lifetime: n.Lifetime.Seconds(), Reachable: n.Reachable, Hops: n.Hops, Cost: n.Cost}
		if len(n.Path) > 1 {
			mn.NextHop = n.Path[1].String()
		}
		for _, id := range n.Path {
			mn.Path = append(mn.Path, id.String())
		}
		m.Nodes = append(m.Nodes, mn)
	}
	for _, l := range v.Links {
		ml := MeshLink{A: l.A.String(), B: l.B.String(), CostAB: l.CostAB, CostBA: l.CostBA, Cost: l.Cost,
			Confirmed: l.Confirmed, InUse: l.InUse, Used: l.Used}
		var other mesh.NodeID
		switch v.Self {
		case l.A:
			other = l.B
		case l.B:
			other = l.A
		}
		if rtt, ok := src.RTT[other]; ok && other != 0 {
			ml.RTT = float64(rtt) / float64(time.Millisecond)
		}
		m.Links = append(m.Links, ml)
	}
	s, p := v.Stats, src.Port
	m.Stats = MeshStats{DatabaseNodes: len(v.Nodes), GraphNodes: s.Nodes, GraphLinks: s.Edges,
		SPFRuns: s.SPFRuns, Computes: s.Computes,
		FloodsIn: s.RecordsIn, FloodsOut: s.RecordsOut, SummariesIn: s.SummariesIn, SummariesOut: s.SummariesOut,
		RequestsIn: s.RequestsIn, RequestsOut: s.RequestsOut, Expired: s.Expired,
		ControlDrops: nonzero(MeshControlDropCounts(s)),
		FramesSent:   p.Sent, FramesTransit: p.Transit, FrameDrops: nonzero(MeshFrameDropCounts(p)),
		ControlIn: p.ControlIn, ControlOut: p.ControlOut, Addresses: p.Addresses}
	if src.SPFTimed {
		secs, last := src.SPFTime.Seconds(), s.LastSPFTime.Seconds()
		m.Stats.SPFSeconds, m.Stats.LastSPFSecs = &secs, &last
	}
	if src.LAN != nil {
		m.LAN = &MeshLANSection{Forwarding: src.LAN.Forwarding, Nodes: []string{}}
		if src.LAN.Forwarder != 0 {
			m.LAN.Forwarder = src.LAN.Forwarder.String()
		}
		for _, id := range src.LAN.Nodes {
			m.LAN.Nodes = append(m.LAN.Nodes, id.String())
		}
	}
	return m
}

// View turns the section back into what mesh.View.WriteDOT draws (nodes,
// links, names; no counters), for the client side of `l2wg show mesh
// --dot`.
func (m *Mesh) View() (mesh.View, error) {
	self, err := parseID(m.Self)
	if err != nil {
		return mesh.View{}, err
	}
	v := mesh.View{Self: self, Synced: m.Synced, UsedKnown: m.UsedKnown, Names: map[mesh.NodeID]string{}}
	for _, n := range m.Nodes {
		id, err := parseID(n.ID)
		if err != nil {
			return mesh.View{}, err
		}
		if n.Name != "" {
			v.Names[id] = n.Name
		}
		nv := mesh.NodeView{ID: id, Seq: n.Seq, Reachable: n.Reachable, Hops: n.Hops, Cost: n.Cost,
			Lifetime: time.Duration(n.Lifetime * float64(time.Second))}
		if k, err := base64.StdEncoding.DecodeString(n.PublicKey); err == nil && len(k) == len(nv.Key) {
			copy(nv.Key[:], k)
		}
		for _, s := range n.Path {
			id, err := parseID(s)
			if err != nil {
				return mesh.View{}, err
			}
			nv.Path = append(nv.Path, id)
		}
		v.Nodes = append(v.Nodes, nv)
	}
	for _, l := range m.Links {
		a, err := parseID(l.A)
		if err != nil {
			return mesh.View{}, err
		}
		b, err := parseID(l.B)
		if err != nil {
			return mesh.View{}, err
		}
		v.Links = append(v.Links, mesh.LinkView{A: a, B: b, CostAB: l.CostAB, CostBA: l.CostBA, Cost: l.Cost,
			Confirmed: l.Confirmed, InUse: l.InUse, Used: l.Used})
	}
	return v, nil
}

func parseID(s string) (mesh.NodeID, error) {
	n, err := strconv.ParseUint(s, 16, 32)
	if err != nil || len(s) != 8 {
		return 0, fmt.Errorf("mesh: bad node ID %q", s)
	}
	return mesh.NodeID(n), nil
}

// NoMesh is the error of a "mesh" request to a node without one.
const NoMesh = "this node does not run the mesh protocol (mesh.protocol is rstp or stp)"

// meshAnswer is the answer to "mesh".
type meshAnswer struct {
	Mesh  *Mesh  `json:"mesh,omitempty"`
	Error string `json:"error,omitempty"`
}

// QueryMesh asks the l2wg at addr for its mesh.
func QueryMesh(addr string) (*Mesh, error) {
	var a meshAnswer
	if err := ask(addr, "mesh", requestTimeout, &a); err != nil {
		return nil, err
	}
	if a.Mesh == nil {
		if a.Error == "" {
			a.Error = "no mesh in l2wg's answer"
		}
		return nil, fmt.Errorf("%s", a.Error)
	}
	return a.Mesh, nil
}
