package bridge

import "sync/atomic"

// DropReason says why the switch did not deliver a frame (or, for
// DropFDBFull, did not learn its source address).
type DropReason uint8

const (
	// DropRunt: shorter than an Ethernet header (14 bytes).
	DropRunt DropReason = iota
	// DropMulticastSource: the source address is a group address (multicast
	// or broadcast), which no station may use.
	DropMulticastSource
	// DropZeroSource: the source address is 00:00:00:00:00:00.
	DropZeroSource
	// DropFilteredSource: the source address is in the ingress port's deny
	// filter (SetSourceFilter).
	DropFilteredSource
	// DropFDBFull is not a drop of the frame: the FDB was full, so the source
	// address was not learned; the frame was still forwarded. Counted per
	// frame whose new source address could not be learned.
	DropFDBFull
	// DropNotForwarding: the ingress port is not in the forwarding state, or
	// the known egress port of a unicast frame is not.
	DropNotForwarding
	// DropSamePort: a unicast frame whose destination was learned on the
	// port it came in on (filtered, as 802.1D requires).
	DropSamePort
	// DropNoControlHandler: a control frame arrived and no handler was set.
	DropNoControlHandler
	// DropStorm: a broadcast, multicast or unknown-unicast frame over the
	// ingress port's storm-control limit (SetStormLimit).
	DropStorm
	// DropBadVLANTag: a malformed VLAN tag: the frame is too short to hold
	// its tag (or QinQ's inner tag) and the EtherType behind it, or the tag
	// has the reserved VID 4095.
	DropBadVLANTag
	// DropVLANFiltered: the ingress port does not carry the frame's VLAN, or
	// the known egress port of a unicast frame does not (SetVLANFilter).
	DropVLANFiltered
	// DropProtocolMismatch: a frame from, or for, a peer that speaks another
	// mesh protocol (a spanning tree's BPDUs heard on a shortest-path link,
	// or shortest-path control frames on a spanning-tree peer port): the
	// peering carries no data until the peer speaks this node's protocol
	// (see Bridge.AddPeerPort and MeshPort).
	DropProtocolMismatch

	numDropReasons
)

var dropReasonNames = [...]string{
	DropRunt:             "runt",
	DropMulticastSource:  "multicast-source",
	DropZeroSource:       "zero-source",
	DropFilteredSource:   "filtered-source",
	DropFDBFull:          "fdb-full",
	DropNotForwarding:    "not-forwarding",
	DropSamePort:         "same-port",
	DropNoControlHandler: "no-control-handler",
	DropStorm:            "storm",
	DropBadVLANTag:       "bad-vlan-tag",
	DropVLANFiltered:     "vlan-filtered",
	DropProtocolMismatch: "protocol-mismatch",
}

// String returns a short name such as "runt" or "fdb-full".
func (r DropReason) String() string {
	if int(r) < len(dropReasonNames) {
		return dropReasonNames[r]
	}
	return "unknown"
}

// Drops counts frames by DropReason: d[DropRunt] and so on. Range over it and
// name each count with DropReason(i).String().
type Drops [numDropReasons]uint64

// Counters are one port's frame and byte counts. Rx counts every frame handed
// to Input on the port, dropped or not; Tx counts frames written to the port by
// Input and Output. Drops are counted on the ingress port. TxVLANFiltered
// counts the flooded frames that this port did not get because its VLAN
// filter does not carry their VID (they went to the other ports).
type Counters struct {
	RxFrames, RxBytes uint64
	TxFrames, TxBytes uint64
	TxVLANFiltered    uint64
	Drops             Drops
}

// Stats is a bridge-wide snapshot.
type Stats struct {
	FDBEntries   int    // addresses in the FDB, expired ones not yet swept included
	FDBLimit     int    // Config.MaxEntries
	StationMoves uint64 // addresses learned on one port and then seen on another
	Drops        Drops  // over all ports, removed ones included
}

// dropCounters are the atomic twin of Drops.
type dropCounters [numDropReasons]atomic.Uint64

// add adds the nonzero counts of d, one atomic add each.
func (c *dropCounters) add(d *Drops) {
	for r, n := range d {
		if n != 0 {
			c[r].Add(n)
		}
	}
}

func (c *dropCounters) load() Drops {
	var d Drops
	for r := range c {
		d[r] = c[r].Load()
	}
	return d
}

// portCounters are the atomic twin of Counters. Input adds its per-call sums,
// so a busy port costs a handful of atomic adds per batch, not per frame.
type portCounters struct {
	rxFrames, rxBytes atomic.Uint64
	txFrames, txBytes atomic.Uint64
	txVLANFiltered    atomic.Uint64
	drops             dropCounters
}

func (c *portCounters) load() Counters {
	return Counters{
		RxFrames:       c.rxFrames.Load(),
		RxBytes:        c.rxBytes.Load(),
		TxFrames:       c.txFrames.Load(),
		TxBytes:        c.txBytes.Load(),
		TxVLANFiltered: c.txVLANFiltered.Load(),
		Drops:          c.drops.load(),
	}
}
