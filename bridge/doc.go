// Package bridge is l2wg's in-process learning switch: an IEEE 802.1D MAC
// relay with a forwarding database (FDB), ageing, a size limit, flooding and
// the port states of package stp.
//
// Ports are the TAP and every WireGuard peer, but the switch knows nothing of
// either: a port is anything with a WriteFrames method (see Port). Frames carry
// an opaque offload header (a virtio-net header from the TAP) that the switch
// never reads, only carries.
//
// The files follow the order a frame flows through, as the Linux bridge does
// (br_input.c, br_fdb.c, br_forward.c):
//
//	input.go    ingress: sanity checks, control frames, learning, the forwarding decision
//	fdb.go      the MAC table: learning, lookup, ageing, flush, sweep
//	forward.go  egress: per-call batches, flooding, one WriteFrames per port per call
//	port.go     the port table and port administration
//	vlan.go     VLAN tags, VID sets, per-port VLAN filters
//	counters.go per-port and bridge-wide counters
//
// # Decisions and their reasons
//
// Batches: Input groups its output per egress port and calls each port's
// WriteFrames once per call, order preserved. When a batch floods, every
// flooding port gets the very same []Frame (no copies; ports must not modify
// it); a port that also receives known-unicast frames from the batch gets its
// own merged list in input order. The kernel copies the skb for every port but
// the last; here the Port contract (no modification, no retention) makes even
// that copy unnecessary.
//
// Hot path: the port table is an immutable slice behind an atomic pointer; the
// FDB is a map under a sync.RWMutex taken for reading once per Input call, not
// per frame. The map is keyed by the address packed into a uint64: with a
// [6]byte key, hashing took more than half of the forwarding time, and the
// integer key made known-unicast forwarding 2.6 times faster. Refreshing a
// known address on the same port only stores an atomic timestamp (and only
// when it changed). New addresses and station moves are collected during the
// read pass and applied under the write lock once at the end of the call. The
// clock is read once per call, and counters are summed per call and added
// with one atomic add per counter. Per-call scratch comes from a sync.Pool, so
// a steady state Input allocates nothing.
//
// VLANs: independent VLAN learning, as an 802.1Q bridge with one filtering
// database per VLAN. The FDB key is (VID, MAC) packed into one uint64, the
// VID in the bits above the MAC, so a VLAN-aware lookup costs what the
// MAC-only one did. The VID is the outer tag's, 802.1Q (0x8100) or 802.1ad
// (0x88a8, QinQ); untagged and priority-tagged frames have VID 0. The switch
// never adds, removes or rewrites a tag: a trunk carries frames as they came.
// Ageing, the size limit (it counts (VID, MAC) entries), station moves and
// flushes are per entry, so per VID. A port's VLAN filter (SetVLANFilter)
// is read once per Input call on ingress and once per port per call on
// egress; while no port has one, flooding hands every port the same slice as
// before, and a port with a filter gets its own list of the frames of its
// VLANs. One spanning tree serves all VLANs (802.1Q's common spanning tree):
// port states and the tree's flushes apply to every VID. A malformed tag (too
// short for the tag and the EtherType behind it, or VID 4095) is dropped and
// counted (DropBadVLANTag).
//
// FDB limit: a full FDB never evicts a known host. A new address is simply not
// learned (counted as DropFDBFull) and its frames are still flooded, so a MAC
// flood from one port cannot push the known hosts out and turn the switch into
// a hub. Expired entries count as unknown on lookup before Sweep removes them.
//
// Control frames (802.1D reserved group addresses 01:80:C2:00:00:00 to 0F and
// every address added with AddControlAddress) are never forwarded, whatever the
// port state, and are not learned from. They bypass the source filter: the
// host's Linux bridge sends BPDUs from its port's address, and a Linux bridge
// takes its own address (the one the filter holds) from a port unless it is
// set, so the two may be the same. Spanning tree with the host bridge must
// keep working while the host's stack is kept off the VM segment. On a peer
// port (AddPeerPort) they also tell what protocol the peer speaks: a
// shortest-path mesh's control frame takes the port out of the data path
// until a BPDU from the peer puts it back (mismatch.go).
//
// Port IDs start at 1, and RemovePort frees its ID for the next AddPort (the
// kernel reuses port numbers too). RemovePort does not wait for Input calls in
// flight: a removed port may still see a WriteFrames call that was already
// under way, and its owner must tolerate that.
package bridge
