// Package tap is l2wg's local switch port: a Linux TAP device that VM bridges
// attach to, or that l2wg attaches to a named Linux bridge.
//
// Open creates the TAP (or reopens a persistent one), sets its MTU and MAC,
// brings it up and makes it a port of Config.Bridge; ReadFrames and
// WriteFrame move Ethernet frames, each with a virtio-net header (VNetHdr).
//
//	vnethdr.go      the virtio-net header: layout, accessors, flag and GSO constants
//	config.go       Config, its checks, limits
//	device.go       the accessors every platform shares
//	tap_linux.go    Open, setup (offloads, MAC, MTU, bridge, up, persist), Close
//	io_linux.go     batched reads (readv) and writes (writev) through the netpoller
//	ifreq_linux.go  link administration: SIOC* ioctls and one netlink request
//	addr_linux.go   no address on the TAP: IPv6 address generation off (rtnetlink)
//	plain_linux.go  the plain TAP, created with songgao/water
//	segment.go      software offload: partial checksums, TCP segmentation
//	uso.go          WriteFrames: runs of UDP datagrams written as one USO superframe
//	tap_other.go    the portable fallback (water, plain frames only)
//
// # Decisions and their reasons
//
// Two paths. With Config.Offload (the default l2wg wants, DESIGN.md decision
// 4) the TAP is opened with golang.org/x/sys/unix: IFF_VNET_HDR and
// TUNSETOFFLOAD(TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6), so the kernel hands over TCP
// superframes of up to 64 KiB with partial checksums, and takes them back the
// same way. songgao/water cannot do that (no IFF_VNET_HDR, no offloads), so it
// only creates the plain TAP of Offload false, and the portable fallback.
// The header travels with its frame; the 16-bit fields are little endian on
// every host (TUNSETVNETLE), because the header crosses the tunnel.
//
// A plain TAP still gets correct frames. A peer with offloads sends
// superframes and partial checksums; the kernel of a plain TAP would take a
// superframe as one giant frame and a partial checksum as a wrong one. So
// WriteFrame on a plain TAP does the work in software (segment.go): it
// completes a NEEDS_CSUM checksum and cuts a TCPv4/TCPv6 superframe into
// gso_size segments, as tcp_gso_segment does, on a pooled copy, never on
// the caller's frame. Other GSO types (UDP) are never enabled by l2wg, so a
// frame that carries one is malformed here.
//
// No address on the TAP. The TAP is a port of the VMs' segment, where the
// hypervisor's own stack has no business, yet Linux gives every link that
// comes up an IPv6 link-local address, and with it router solicitations and
// neighbour discovery sent out of the TAP into l2wg. Open sets the link's
// IPv6 address generation to none over rtnetlink (what `ip link set dev X
// addrgenmode none` does) before the link comes up, and removes the
// link-local addresses a reused TAP still has. Not the disable_ipv6 sysctl:
// /proc/sys is read-only under systemd's ProtectKernelTunables.
//
// A plain TAP is also told TUNSETOFFLOAD(0): a persistent TAP keeps the
// offloads an earlier fast-path Open set, and would otherwise hand
// superframes to a reader that gets no header to say so.
//
// Batches through the netpoller. The descriptor is non-blocking and wrapped
// in an *os.File, so a blocked ReadFrames parks its goroutine, not a thread,
// and Close wakes it. The RawConn.Read callback reads frames with readv(2)
// (header and frame into separate buffers, no copy) until EAGAIN or a full
// batch. Callbacks are method values bound once (read state in the Device,
// write state in pooled writeOps), so the hot path allocates nothing
// (TestAllocs). Writes go through RawConn.Control rather than RawConn.Write,
// which would serialise writers on the os.File's write lock: the TAP's send
// buffer is practically unlimited, and on EAGAIN a write falls back to
// waiting for writability.
//
// Malformed frames are dropped and counted (Dropped), not returned as
// errors: a frame the kernel rejects with EINVAL, or the software offload
// cannot parse, or one that meets a TAP whose link is down (EIO). One bad
// frame from a peer is not an error of the device.
//
// Link administration in-process: SIOC* ioctls and a netlink RTM_GETLINK,
// both on one NETLINK_ROUTE socket that Open creates and the Device keeps.
// The socket stays in the network namespace the TAP was created in, so
// MAC, MTU and BridgeMAC answer for the right namespace whichever thread
// asks; /sys/class/net would show the namespace that mounted sysfs.
//
// Persistence. Persistent is set last in Open, so a TAP that Open created is
// gone again if a step fails, and a persistent TAP that Open reused is left
// persistent. Open without Persistent of an existing persistent TAP reuses it
// and clears the flag: the config says it should not outlive the process.
//
// USO on the write side only. WriteFrames writes a run of UDP datagrams of
// one flow as one GSO_UDP_L4 superframe (uso.go): the kernel takes such
// writes without TUN_F_USO4/6, which only says what the TAP may hand over
// on reads. Reads stay without USO, so that a peer never receives a UDP
// superframe it may not be able to write (an older kernel, a plain TAP,
// whose software offload segments TCP only). A kernel that refuses a
// superframe (EINVAL) turns USO off for the Device; the run and every later
// one are written frame by frame.
//
// Not done yet: multiqueue (IFF_MULTI_QUEUE, one Device per queue).
package tap
