// Package mesh is l2wg's link-state mesh protocol, pure like stp: events in
// (a control message from a neighbour, an adjacency up or down with its cost,
// time passed), actions out (messages to send to a neighbour, a new
// forwarding table, notices for the log). It starts no goroutine, reads no
// clock and touches no network; every call takes the time. It borrows the
// ideas of IEEE 802.1aq (Shortest Path Bridging) and IETF TRILL (RFC 6325,
// RFC 7177) and IS-IS's flooding, not their wire formats.
//
// The files: id.go (node IDs), record.go (the control-message codec),
// header.go (the data-plane header), machine.go (the API, config, sync),
// flood.go (origination, flooding, summaries, requests, ageing), spf.go
// (graph and Dijkstra), table.go (the forwarding snapshot), action.go.
//
// # Using it
//
// The caller owns one Machine per node, serializes calls to it, and:
//   - calls AdjacencyUp(port, neighbourKey, cost) when a peer is live (a
//     WireGuard session and answered probes) and again when its cost
//     changes, AdjacencyDown(port) when it is not;
//   - hands every control message from a neighbour to Receive (malformed
//     ones are dropped and counted there);
//   - calls Tick every 10 to 100 ms;
//   - carries out the actions in order: Send (the bytes to the neighbour
//     on that port over the control channel), TablesChanged (store the
//     table where the data path loads it; flush addresses learned behind
//     nodes it no longer reaches), Notice (log it once).
//
// The data path reads a *Table without locks: NextHop(egress),
// AcceptMulti(ingress, fromPort), MultiTargets(ingress), MultiHopLimit.
// Lookups allocate nothing. bridge.MeshPort is that data path.
//
// # Decisions and their reasons
//
//   - Node ID: the first 32 bits of SHA-256 of the node's public key. The
//     key is the identity WireGuard already authenticates; 32 bits keep the
//     data header and the records small. Records carry the whole key, so
//     a collision is seen: the record of the larger key is dropped by every
//     node alike (NoticeCollision). At 1,000 nodes the chance of any
//     collision is about 1 in 10,000.
//   - Neighbours are named by a caller-chosen Port (the bridge port or link
//     number), not by ID: the table answers in ports, which is what the data
//     path needs, without a second lookup. Two ports to one neighbour: the
//     record lists the neighbour once, at the cheaper cost, and forwarding
//     uses that port.
//   - Sequence numbers: 64 bits, the boot time (Unix seconds, passed in
//     Config.Boot) in the high 32, a counter in the low 32. A restarted node
//     supersedes its old record with its first one, without waiting for the
//     old one to age out and without having to learn it first. A record
//     whose boot time is more than MaxClockSkew (24 h) ahead of the
//     receiver's clock is absurd: dropped and counted, so a broken or
//     hostile clock cannot pin a node's sequence at the top. If a node
//     hears its own record with a higher sequence (an earlier life with a
//     clock ahead), it jumps past it and floods, as IS-IS does.
//   - Lifetime: 20 minutes by default, refreshed at a third of it; sent as
//     the remaining seconds, so every copy expires at about the same time.
//     Ageing is only for records whose origin is gone from the graph
//     anyway: failures are handled by the neighbours, not by ageing. There
//     are no purges: a record that ages out is dropped locally.
//   - Two-way check: an edge A–B is in the graph only when A lists B and B
//     lists A. A dead node's neighbours drop it from their records at once
//     (their liveness sees it), so it leaves every graph in one flood,
//     whatever its own stale record says. An edge's cost is the larger of
//     the two listed costs: costs must be symmetric for paths to be.
//   - Flooding: a new or newer record goes to every neighbour but the one it
//     came from; an older one makes the receiver send its newer copy back.
//     The transport is lossy, so every SummaryInterval (1 s) each neighbour
//     gets a summary of the whole database, (node, seq) in ID ranges of 100
//     entries (IS-IS CSNP); the receiver sends what the sender lacks or has
//     older and requests what it lacks itself (PSNP). MESH.md offered
//     per-record acknowledgements as the alternative; summaries were chosen
//     because they also repair what a restarted or partitioned neighbour
//     missed, with no per-record, per-neighbour retransmit state.
//   - Origination hold (OriginateHold, 10 ms): the first change of this
//     node's adjacencies after a quiet spell floods at once (failover is
//     not delayed), later ones at most once per hold; the hold counts from
//     the start, so tunnels that come up together at start make one record.
//     Without it a cold start of a 1,000-node mesh floods about twice as
//     many records.
//   - SPF hold (SPFHold, 10 ms): the table is recomputed that long after the
//     first change of a burst, not at every record (MESH.md's "short
//     hold-down"). A change is applied as soon as the database holds it:
//     nothing waits for the network to be quiet.
//   - A starting node learns the database before it computes: until every
//     adjacency has sent a complete summary and the records it listed newer
//     than ours have arrived (or SyncTimeout, 3 s, passed), the table is
//     empty and the node forwards nothing over the mesh. A restarted node
//     so never floods on a tree computed from a database of one.
//   - Paths: Dijkstra from this node; ties are broken by (cost, hops, sorted
//     list of node IDs on the path, sorted list of the path's edges). The
//     first three are 802.1aq's ECT-ALGORITHM 1 idea; the edge list settles
//     the tie of two paths over the same nodes in different orders, which
//     the node list alone cannot, and makes the order total on simple
//     paths. Each key is the same for a path and its reverse, so the path
//     S→D is the reverse of D→S (property test on random graphs); each is
//     preserved when two paths are extended by the same node, which lets
//     Dijkstra decide ties as it goes. The lists are built only on ties.
//   - Multi-destination frames follow the ingress node's tree: accepted only
//     from this node's next hop towards the ingress (by symmetry, the
//     ingress node's path to this node), forwarded to each neighbour whose
//     next hop towards the ingress is this node. That needs one SPF per
//     neighbour, not per node: a table costs 1 + degree SPF runs.
//   - Hop limit: the ingress node puts 2·hops+2 (unicast: hops to the
//     egress; multi-destination: the depth of its tree), at most 255. A
//     longer path taken during a change still arrives; a transient loop dies
//     after a few turns. A node drops a frame that arrives with 0, or that
//     it would have to forward with 0 (counted by the data path).
//   - Data header: 10 bytes, version and flags, hop limit, ingress, egress (0
//     for multi-destination), in front of the Ethernet frame before
//     fragmentation. A fixed size keeps the decoder branch-free; shaving the
//     egress off multi-destination frames would save 4 bytes per broadcast.
//   - Control messages travel on the links themselves, as control frames
//     (control.go: an Ethernet frame to the 802.1D reserved group address
//     01:80:C2:00:00:0F, 15 bytes of header), not in a tunnel chunk type of
//     their own: they ride the same fragmentation as frames, so a record of
//     255 links (2 KB) crosses a 1,420-byte tunnel, and the tunnel package
//     needs no change. A node that does not speak the mesh (a spanning
//     tree) takes them for control frames, which no switch forwards: never
//     junk for its VMs, and proof for it that the peer speaks the mesh, as
//     a BPDU on a link is proof for a mesh node that the peer runs a
//     spanning tree (bridge/mismatch.go: such a peering carries no data).
//   - Caps: MaxNodes (4,096) records in the database, MaxLinks (64, at most
//     MaxRecordLinks 255 on the wire) links per record. A record of a new
//     node over the cap, or one with too many links, is dropped and counted,
//     with one Notice per episode. A node with more adjacencies than it may
//     list lists the cheapest.
//   - Records travel between neighbours that WireGuard authenticated, but a
//     neighbour can forge others' records: records are not signed. The
//     two-way check limits the harm (a forged edge needs both ends), not
//     more. Signing records with the node keys is left for later.
//
// # Not here (yet)
//
// The edge towards kernel STP (the mesh as one virtual root; a LAN shared
// by several l2wg nodes' TAPs has its appointed forwarder, forwarder.go), equal-cost multipath (one tree per ECT
// algorithm), signatures, and a purge of a dead node's record (it ages
// out; the two-way check already takes it out of every graph).
package mesh
