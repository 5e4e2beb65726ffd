// Package stp is the IEEE 802.1D spanning tree protocol as a pure state
// machine, in two flavours chosen by Config.Protocol: ProtocolSTP, 802.1D-1998
// clause 8 (classic STP, the zero value), and ProtocolRSTP, 802.1D-2004
// clause 17 (rapid spanning tree, 802.1w). Events in (a BPDU received, time
// passed, a link up or down, a management change), actions out (send a
// BPDU, set a port's state, flush learned addresses, shorten or restore FDB
// ageing). It starts no goroutine and reads no clock: every call takes the
// time, so a 50-second convergence story runs in microseconds in a test.
//
// The files follow the Linux bridge's split: bpdu.go is the wire codec
// (br_stp_bpdu.c), election.go, transmit.go and tc.go the protocol
// (br_stp.c), timers.go one handler per timer (br_stp_timer.c), admin.go and
// port.go the management entry points with their range checks (br_stp_if.c).
//
// # Using it
//
// The caller owns one Bridge per switch, serializes calls to it, and:
//   - adds a port per switch port (AddPort) and enables it when its link is
//     up (Enable), disables it when the link goes down (Disable);
//   - decodes BPDU frames (DecodeFrame) and hands them to Receive, counting
//     and dropping those that fail to decode;
//   - calls Tick at least every 100 ms to 1 s, or at NextTimer;
//   - carries out the returned actions in order: SendBPDU (AppendFrame with
//     the port's or bridge's MAC as source), SetState, FlushFDB, FlushAll,
//     SetAgeing, RestoreAgeing.
//
// # RSTP
//
// The RSTP machine is the clause's state machines, one function each
// (rstp_*.go), stepped until none moves after every event, so that a
// proposal/agreement handshake completes within the caller's delivery of
// the BPDUs, with no time passing. What the caller sees:
//   - Ports are Disabled, Discarding, Learning or Forwarding; roles are
//     root, designated, alternate, backup or disabled (RoleBlocked is the
//     802.1D machine's only).
//   - PortConfig.PointToPoint: only point-to-point ports agree to
//     proposals, and so forward within one handshake round; others wait
//     out their timers. DefaultPortConfig sets it (tunnel peers); a port
//     on a shared LAN, such as a TAP whose Linux bridge may hold other
//     l2wg nodes' TAPs, must clear it.
//   - PortConfig.Edge: the port forwards as soon as it is enabled and its
//     starting is no topology change; a BPDU received makes it an ordinary
//     port until its link goes down and up again (no auto-edge).
//   - A root port whose link goes down (Disable) hands over to an
//     alternate port within the same call. Information from a silent
//     neighbour ages out after three of its hellos (rcvdInfoWhile), not max
//     age. The port timers count whole seconds (a one-second tick, 17.22),
//     so "three hellos" is 5 to 6 seconds with the default hello.
//   - The death of the root bridge itself, seen from bridges in a loop, is
//     RSTP's weak spot: stale information about it circulates until its
//     message age reaches max age ("count to infinity"); with the defaults
//     the tree re-forms in about 15 to 25 s, never slower than 802.1D.
//   - Topology change: a root or designated port that starts forwarding
//     (not an edge port), or hears TC, flushes every other port at once
//     (FlushFDB per port) and sets TC in its BPDUs for hello + 1 s. No
//     SetAgeing: flushing replaces short ageing. TCNs are sent and
//     acknowledged only towards 802.1D neighbours, which get TC for max
//     age + forward delay, as they expect.
//   - 802.1D fallback per port (port protocol migration, 17.24): a port
//     starts with RST BPDUs; once MigrateTime (3 s) has passed, a config or
//     TCN BPDU makes it send config BPDUs and TCNs instead (PortStatus.
//     Protocol reports stp), with 802.1D's timing on that port (it waits
//     out the forward delay in Discarding and Learning). A Linux bridge
//     drops RST BPDUs, so its port claims the segment and sends config
//     BPDUs, which is what triggers the fallback. An RST BPDU heard later
//     (after MigrateTime) brings the port back to RSTP, as do a link down
//     and up, and MCheck. An 802.1D bridge that takes RST BPDUs as config
//     BPDUs (this package's ProtocolSTP, 802.1D-2004 STP bridges) and
//     whose port on the link is its root port never sends a config BPDU
//     there, and the RSTP port keeps RSTP; that is as the standard has it.
//   - Root guard: a guarded port is never chosen root port; when its
//     information would be the better root path it is an alternate port,
//     discarding, flagged root-inconsistent, until the information ages
//     out (three hellos after the superior bridge falls silent). Proposals
//     on guarded ports are ignored, so a rogue bridge cannot make this
//     bridge's designated ports sync.
//   - A root port towards an 802.1D neighbour sends a TCN only while it
//     announces a topology change (the figure also sends one when the port
//     agrees to a proposal, which 802.1D neighbours never make).
//   - Not implemented: auto-edge, the transmit of MSTP BPDUs (MSTP BPDUs
//     are read as RST BPDUs), ForceVersion (stpVersion on an RSTP bridge:
//     use ProtocolSTP), the 802.1D-2004 per-port ageing time.
//
// # Decisions of the 802.1D machine
//
//   - Port IDs use 802.1D-2004's layout: a 4-bit priority (0 to 240 in steps
//     of 16) and a 12-bit port number; see PortID for Linux's 6/10 split,
//     which gives the same IDs at the default priority.
//   - Path costs are the caller's: ports are point-to-point tunnels whose
//     speed the bridge cannot know. DefaultPathCost is Linux's cost for a
//     port of unknown speed.
//   - Times travel in 1/256 s. Outgoing BPDUs carry values already rounded
//     to that unit, so an Action's BPDU equals what the peer decodes.
//   - Received config BPDUs of any version are config BPDUs, and an RST BPDU
//     is taken as a config BPDU (802.1D-2004 9.3.4); this bridge always
//     sends version 0, the only version a Linux bridge accepts.
//   - As in 802.1D-1998 (and Linux), worse information from a segment's
//     designated bridge is not taken until the stored information ages out,
//     so a failure heals within MaxAge + 2*ForwardDelay (50 s with the
//     defaults), even one seen as link down: the bridge downstream of the
//     break claims to be root, and its neighbours ignore that until their
//     information about the old root ages out. 802.1D-2004's rule (a
//     message from the same designated bridge and port always replaces the
//     stored one) would cut that to 2*ForwardDelay; it belongs with RSTP.
//     One addition: information naming this bridge's own address as root
//     under another priority is never followed (it is stale, from before a
//     priority change).
//   - Timers learned from the root are brought into the 802.1D ranges, so
//     that a broken root cannot make ports forward at once or information
//     age out at every tick.
//   - Every call first fires the timers due at its time (Tick is the call
//     for "time passed, nothing else"); NextTimer tells a caller that would
//     rather sleep than poll when to call Tick.
//   - The message age grows by MessageAgeIncrement (1 s) per hop plus the
//     time the information spent in the bridge; information is aged out
//     after the bridge's max age (learned from the root) minus the message
//     age.
//   - Root guard: a root-guarded port whose information would make it the
//     root port is left out of the election, flagged root-inconsistent and
//     blocked; it keeps the superior information (and so stays blocked) while
//     it is refreshed, and recovers through Listening and Learning once it
//     ages out. Linux's BR_ROOT_BLOCK instead overwrites the information and
//     holds the port in Listening.
//   - While a topology change is in progress the forwarding database ages at
//     the forward delay, as 802.1D-1998 8.3.5 says (Linux uses twice that).
//   - A port that leaves Learning or Forwarding for Blocking or Disabled has
//     its addresses flushed (FlushFDB). Disabling a port is not a topology
//     change by itself, as in 802.1D-1998 and Linux: the port that takes
//     over reports one when it starts forwarding.
package stp
