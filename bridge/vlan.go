package bridge

import (
	"encoding/binary"

	"errors"
	"fmt"
	"github.com/l2wg/l2wg/bridge/mesh"
	"strconv"
	"strings"
)

// VLANs: the switch is VLAN-aware in the way of an 802.1Q bridge with
// independent VLAN learning, without ever changing a frame. A frame's VID is
// the one of its outer tag: 802.1Q (TPID 0x8100) or 802.1ad (0x88a8, QinQ,
// whose inner tag the switch carries unread). Untagged and priority-tagged
// (VID 0) frames have VID 0. The forwarding database is keyed by (VID, MAC),
// so one address in two VLANs is two stations; each port may carry a subset
// of the VLANs (SetVLANFilter). There is one spanning tree for all VLANs
// (802.1Q's common spanning tree): port states and FDB flushes of the tree
// apply to every VID.

// TPIDs the switch reads a VID from.
const (
	TPIDDot1Q  = 0x8100 // IEEE 802.1Q customer VLAN tag
	TPIDDot1ad = 0x88a8 // IEEE 802.1ad service VLAN tag (QinQ outer tag)
)

// VLAN ID limits: 0 means "no VLAN" (priority tag) and 4095 is reserved.
const (
	MinVID = 1
	MaxVID = 4094

	vidReserved = 0xfff
	vlanTagLen  = 4
)

// VLAN returns the VID that learning and VLAN filters use for the frame: its
// outer tag's VID, 0 for an untagged or priority-tagged frame. ok is false for
// a malformed tag: a frame too short to hold its (outer, or 802.1ad's inner
// 802.1Q) tag and the EtherType behind it, or a tag with the reserved VID
// 4095. Like the other accessors it expects at least EthernetHeaderLen bytes.
func (e Ethernet) VLAN() (vid uint16, ok bool) {
	tpid := e.EtherType()
	if tpid != TPIDDot1Q && tpid != TPIDDot1ad {
		return 0, true
	}
	return e.tagVLAN(tpid)
}

// tagVLAN is VLAN for a frame whose EtherType is the TPID tpid.
func (e Ethernet) tagVLAN(tpid uint16) (vid uint16, ok bool) {
	if len(e) < EthernetHeaderLen+vlanTagLen {
		return 0, false
	}
	vid = binary.BigEndian.Uint16(e[14:]) & 0x0fff
	if vid == vidReserved {
		return 0, false
	}
	if tpid == TPIDDot1ad && binary.BigEndian.Uint16(e[16:]) == TPIDDot1Q {
		if len(e) < EthernetHeaderLen+2*vlanTagLen ||
			binary.BigEndian.Uint16(e[18:])&0x0fff == vidReserved {
			return 0, false
		}
	}
	return vid, true
}

// VIDSet is a set of VLAN IDs 1 to 4094, a bitmap: it compares with == and
// copies as a value. The zero value is empty.
type VIDSet struct {
	bits [(MaxVID + 2) / 64]uint64 // bit v: VID v; bit 0 is used by vlanFilter for untagged frames
}

// AllVIDs returns the set of every VID, 1 to 4094.
func AllVIDs() VIDSet {
	var s VIDSet
	s.AddRange(MinVID, MaxVID)
	return s
}

// Add adds VID v; a VID outside 1-4094 is ignored.
func (s *VIDSet) Add(v uint16) {
	if v >= MinVID && v <= MaxVID {
		s.bits[v>>6] |= 1 << (v & 63)
	}
}

// AddRange adds the VIDs from lo to hi, both included, clipped to 1-4094.
func (s *VIDSet) AddRange(lo, hi uint16) {
	for v := max(lo, MinVID); v <= min(hi, MaxVID); v++ {
		s.Add(v)
	}
}

// Contains reports whether VID v is in the set.
func (s *VIDSet) Contains(v uint16) bool {
	return v >= MinVID && v <= MaxVID && s.has(v)
}

func (s *VIDSet) has(v uint16) bool { return s.bits[v>>6]&(1<<(v&63)) != 0 }

// Len returns the number of VIDs in the set.
func (s *VIDSet) Len() int {
	n := 0
	for v := uint16(MinVID); v <= MaxVID; v++ {
		if s.has(v) {
			n++
		}
	}
	return n
}

// String returns the set as ParseVIDSet reads it, ranges joined:
// "100-199,300"; "all" for every VID and "none" for the empty set.
func (s VIDSet) String() string {
	switch s {
	case VIDSet{}:
		return "none"
	case AllVIDs():
		return "all"
	}
	var b strings.Builder
	for v := uint16(MinVID); v <= MaxVID; v++ {
		if !s.has(v) {
			continue
		}
		hi := v
		for hi < MaxVID && s.has(hi+1) {
			hi++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(v)))
		if hi > v {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(int(hi)))
		}
		v = hi
	}
	return b.String()
}

// ParseVIDSet parses a list of VIDs and ranges separated by commas, such as
// "100-199,300" (spaces around items are allowed), or "all" (1-4094) or
// "none". Errors quote the item at fault: `"4096": out of range 1-4094`.
func ParseVIDSet(list string) (VIDSet, error) {
	var s VIDSet
	switch strings.TrimSpace(list) {
	case "all":
		return AllVIDs(), nil
	case "none":
		return s, nil
	case "":
		return s, errors.New(`empty list: want VIDs and ranges such as "100-199,300", "all" or "none"`)
	}
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		loS, hiS, isRange := strings.Cut(item, "-")
		lo, err := parseVID(item, loS)
		if err != nil {
			return VIDSet{}, err
		}
		hi := lo
		if isRange {
			if hi, err = parseVID(item, hiS); err != nil {
				return VIDSet{}, err
			}
			if hi < lo {
				return VIDSet{}, fmt.Errorf("%q: range ends below its start", item)
			}
		}
		s.AddRange(lo, hi)
	}
	return s, nil
}

func parseVID(item, s string) (uint16, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	switch {
	case err != nil:
		return 0, fmt.Errorf("%q: not a VID or a range of VIDs", item)
	case n < MinVID || n > MaxVID:
		return 0, fmt.Errorf("%q: out of range %d-%d", item, MinVID, MaxVID)
	}
	return uint16(n), nil
}

// VLANFilter says which frames a port carries: the tagged frames of VIDs, and
// untagged (and priority-tagged) frames if Untagged.
type VLANFilter struct {
	VIDs     VIDSet
	Untagged bool
}

// AllVLANs is the filter of a port that carries everything, the default.
func AllVLANs() VLANFilter { return VLANFilter{VIDs: AllVIDs(), Untagged: true} }

// String returns "100-199,300" for tagged VLANs only, with "+untagged" when
// untagged frames pass too: "all+untagged" carries everything.
func (f VLANFilter) String() string {
	if f.Untagged {
		return f.VIDs.String() + "+untagged"
	}
	return f.VIDs.String()
}

// vlanFilter is a VLANFilter as the hot path reads it: one bitmap where bit 0
// stands for untagged frames (VID 0). A port without a filter (nil) carries
// everything.
type vlanFilter VIDSet

func newVLANFilter(f VLANFilter) *vlanFilter {
	if f == AllVLANs() {
		return nil
	}
	vf := vlanFilter(f.VIDs)
	if f.Untagged {
		vf.bits[0] |= 1
	}
	return &vf
}

// carries reports whether a frame of VID vid (0: untagged) may enter or leave
// the port; a nil filter carries everything.
func (f *vlanFilter) carries(vid uint16) bool {
	return f == nil || f.bits[vid>>6]&(1<<(vid&63)) != 0
}

func (f *vlanFilter) public() VLANFilter {
	if f == nil {
		return AllVLANs()
	}
	s := VIDSet(*f)
	s.bits[0] &^= 1
	return VLANFilter{VIDs: s, Untagged: f.bits[0]&1 != 0}
}

// SetVLANFilter sets, atomically, which frames port id carries: a frame whose
// VID it does not carry is neither learned from it nor forwarded to it, and is
// counted as DropVLANFiltered on its ingress port (a flooded frame still goes
// to the ports that carry its VID; TxVLANFiltered counts the copies a port
// did not get). Addresses learned on the port in VLANs it no longer carries
// are forgotten. Control frames (BPDUs) pass whatever the filter. Ports start
// with AllVLANs.
//
// In mesh mode the tunnels are links of the MeshPort, and the ID a peer's
// port was given (by the Switch the tunnel sees) names its link: when id is
// no switch port but a link of the mesh port, the filter applies to that
// link (MeshPort.SetVLANFilter). Link numbers must therefore be apart from
// the switch's port IDs (the node's start at 256).
func (b *Bridge) SetVLANFilter(id PortID, f VLANFilter) {
	b.portsMu.Lock() // keeps vlanFiltered in step with the ports' filters
	defer b.portsMu.Unlock()
	p := b.ports.Load().get(id)
	if p == nil {
		if mp := b.mesh.Load(); mp != nil {
			mp.SetVLANFilter(mesh.Port(id), f)
		}
		return
	}
	nf := newVLANFilter(f)
	old := p.vlans.Swap(nf)
	switch {
	case old == nil && nf != nil:
		b.vlanFiltered.Add(1)
	case old != nil && nf == nil:
		b.vlanFiltered.Add(-1)
	}
	if nf != nil {
		b.fdb.flushFunc(func(k fdbKey, e *fdbEntry) bool { return e.port == id && !nf.carries(k.vid()) })
	}
	if old.public() != f {
		b.log.Info("port vlans", "port", p.name, "id", id, "vlans", f.String())
	}
}

// VLANFilter returns the filter of port id (or of the mesh port's link
// id, as SetVLANFilter); AllVLANs if there is no such port.
func (b *Bridge) VLANFilter(id PortID) VLANFilter {
	p := b.ports.Load().get(id)
	if p == nil {
		if mp := b.mesh.Load(); mp != nil {
			if lk := mp.links.Load().get(mesh.Port(id)); lk != nil {
				return lk.vlans.Load().public()
			}
		}
		return AllVLANs()
	}
	return p.vlans.Load().public()
}

// SetVLANFilter sets which frames link p carries, in and out, transit
// frames included, with the semantics of Bridge.SetVLANFilter for a port:
// a frame of a VLAN the link does not carry is dropped when it comes in on
// the link, or when the link is its next hop (DropVLANFiltered); a
// multi-destination frame skips the link. The mesh's paths do not depend
// on VLANs (one shortest-path tree for all, as 802.1aq with a single ECT
// set): a frame is never rerouted around a link that does not carry its
// VLAN. No address is flushed: the mesh learns addresses behind nodes,
// not links. A missing link is ignored.
func (mp *MeshPort) SetVLANFilter(p mesh.Port, f VLANFilter) {
	var old VLANFilter
	found := false
	mp.replaceLinks(func(links []*meshLink) []*meshLink {
		if lk := (&meshLinks{links: links}).get(p); lk != nil {
			found, old = true, lk.vlans.Swap(newVLANFilter(f)).public()
		}
		return links
	})
	if found && old != f {
		name := mp.links.Load().get(p).name
		mp.b.log.Info("link vlans", "peer", name, "link", p, "vlans", f.String())
	}
}
