package config

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/bridge/spanning"
	"github.com/l2wg/l2wg/frag"
	"github.com/l2wg/l2wg/stp"
	"github.com/l2wg/l2wg/tap"
	"github.com/l2wg/l2wg/tunnel"
	"github.com/l2wg/l2wg/tunnel/resolve"
)

// Key is one setting of node.toml: its path, its default, its range and
// whether a running node applies a change to it (Live) or refuses it until
// a restart. Parse takes defaults and ranges from here, Diff the values to
// compare, and the README's table is generated from it (Markdown).
type Key struct {
	Path string // TOML path: "tunnel.mtu"; a peer's keys: "peer.name"
	// Default is the value when the key is absent, of the setting's Go type
	// (int, bool, string, time.Duration, uint32); nil: none.
	Default any
	// DefaultText is shown instead of Default in the README ("required").
	DefaultText string
	// Min and Max bound an int or a duration (the type of Default); nil: no
	// range checked from the table.
	Min, Max any
	Live     bool   // l2wg reload applies a change; otherwise it takes a restart
	Doc      string // what it means, for the README
	// value is the setting in a Config, for Diff; nil for a peer's keys.
	value func(*Config) any
	// peerValue is a peer's key in a Peer, for Diff (peer.* rows). Peers
	// are matched by public key; one whose name changed is removed and
	// added again.
	peerValue func(*Peer) any
}

// defaultSTPPriority is one 802.1D-2004 step (4096) better than the 32768 of
// kernel bridges and most switches: the root of a mesh is an l2wg node, and
// the root guard on the TAP port does not trip on an ordinary host bridge
// that runs STP with its defaults.
const defaultSTPPriority = 28672

// DefaultTAPName is the TAP's name when [tap] name is absent.
const DefaultTAPName = "l2wg0"

// DefaultListenPort is WireGuard's usual port.
const DefaultListenPort = 51820

// Keys is every key of node.toml, in the README's order.
var Keys = []*Key{
	{Path: "private_key_file", DefaultText: "required", value: func(c *Config) any { return c.PrivateKey },
		Doc: "file with this node's base64 private key (`l2wg genkey`); relative paths are relative to the config file. The config itself holds no secret."},
	{Path: "listen_port", Default: DefaultListenPort, Min: 0, Max: 65535, Live: true, value: func(c *Config) any { return c.ListenPort },
		Doc: "UDP port of WireGuard; `0` picks a random one"},
	{Path: "isolate_host", Default: true, Live: true, value: func(c *Config) any { return c.IsolateHost },
		Doc: "drop frames the hypervisor's own stack sends into the VM bridge (source MAC of the host bridge or of the TAP); see *Hypervisor isolation*"},
	{Path: "log_level", Default: "info", Live: true, value: func(c *Config) any { return c.LogLevel },
		Doc: "`debug`, `info`, `warn`, `error`"},
	{Path: "metrics_listen", DefaultText: "off", value: func(c *Config) any { return c.MetricsListen },
		Doc: "`host:port` to serve Prometheus metrics on (see *Metrics*)"},

	{Path: "tap.name", Default: DefaultTAPName, value: func(c *Config) any { return c.TAPName },
		Doc: fmt.Sprintf("TAP interface name (≤ %d bytes)", tap.MaxNameLen)},
	{Path: "tap.mtu", Default: tap.DefaultMTU, Min: 576, Max: 65535 - 18, value: func(c *Config) any { return c.TAPMTU },
		Doc: "TAP MTU"},
	{Path: "tap.bridge", DefaultText: "none", value: func(c *Config) any { return c.TAPBridge },
		Doc: "existing Linux bridge to attach the TAP to"},
	{Path: "tap.persistent", Default: false, value: func(c *Config) any { return c.TAPPersistent },
		Doc: "keep the TAP when l2wg exits, and reuse it on start (VM bridges keep their port across restarts)"},
	{Path: "tap.offload", Default: true, value: func(c *Config) any { return c.TAPOffload },
		Doc: "open the TAP with virtio-net headers and TSO/checksum offload (64 KiB superframes); `false` uses a plain TAP"},
	{Path: "tap.vlans", Default: "all", Live: true, value: func(c *Config) any { return c.TAPVLANs.VIDs.String() },
		Doc: "the VLANs the TAP port carries: VIDs and ranges such as `\"100-199,300\"`, `\"all\"` (1–4094) or `\"none\"`; tagged frames of other VLANs are neither learned from it nor sent to it, and are counted (`vlan-filtered`). See *VLAN trunks*"},
	{Path: "tap.untagged", Default: true, Live: true, value: func(c *Config) any { return c.TAPVLANs.Untagged },
		Doc: "the TAP port carries untagged (and priority-tagged) frames; `false` drops them there"},

	{Path: "tunnel.mtu", Default: tunnel.DefaultMTU, Min: tunnel.MinMTU, Max: 9000, value: func(c *Config) any { return c.TunnelMTU },
		Doc: "largest inner packet WireGuard carries"},
	{Path: "tunnel.probe_interval", Default: tunnel.DefaultProbeInterval, Min: 10 * time.Millisecond, Max: 10 * time.Second, value: func(c *Config) any { return c.ProbeInterval },
		Doc: "liveness probes to every peer; they also measure the round trip"},
	{Path: "tunnel.probe_loss", Default: 3, Min: 2, Max: 100, value: func(c *Config) any { return c.ProbeLoss },
		Doc: "a peer's port goes down after probe_loss × probe_interval with nothing received from it (twice that when no other peer is heard either, or without an echo of its probes)"},
	{Path: "tunnel.reassembly_timeout", Default: frag.DefaultTimeout, Min: 100 * time.Millisecond, Max: time.Minute, value: func(c *Config) any { return c.ReassemblyTimeout },
		Doc: "incomplete fragmented frames are dropped after this"},
	{Path: "tunnel.reassembly_peer_bytes", Default: frag.DefaultMaxBytesPerPeer, Min: 256 << 10, Max: 1 << 30, value: func(c *Config) any { return c.ReassemblyPeerBytes },
		Doc: "reassembly memory one peer may hold"},
	// The same bound on every architecture (4 GiB does not fit a 32-bit int):
	// one node.toml validates on every machine of a fleet.
	{Path: "tunnel.reassembly_total_bytes", Default: frag.DefaultMaxBytesTotal, Min: 256 << 10, Max: math.MaxInt32, value: func(c *Config) any { return c.ReassemblyTotalBytes },
		Doc: "reassembly memory over all peers"},
	{Path: "tunnel.reresolve_after", Default: resolve.DefaultStale, Min: time.Second, Max: time.Hour, value: func(c *Config) any { return c.ReresolveAfter },
		Doc: "a peer whose `endpoint` is a DNS name and whose latest handshake is older than this (or who has none) has the name resolved again, every 30 s (a quarter of this if shorter), as wireguard-tools' reresolve-dns.sh; a changed answer becomes the endpoint at once, logged at info. `l2wg reload` resolves every name again. Shorter values are for tests"},

	{Path: "switch.ageing_time", Default: bridge.DefaultAgeingTime, Min: 10 * time.Second, Max: 1000000 * time.Second, Live: true, value: func(c *Config) any { return c.AgeingTime },
		Doc: "forwarding-database ageing"},
	{Path: "switch.max_fdb_entries", Default: bridge.DefaultMaxEntries, Min: 16, Max: 1 << 22, value: func(c *Config) any { return c.MaxFDBEntries },
		Doc: "forwarding-database size limit; when full, new addresses are not learned (their frames are flooded) and known hosts keep their entries"},
	{Path: "switch.storm_limit", Default: 0, DefaultText: "`0` (off)", Min: 0, Max: 10_000_000, Live: true, value: func(c *Config) any { return c.StormLimit },
		Doc: "storm control: broadcast, multicast and unknown-unicast frames accepted per second on each port; the excess is dropped and counted (`storm`)"},

	{Path: "stp.enabled", Default: true, value: func(c *Config) any { return c.STP.Enabled },
		Doc: "run the spanning tree; `false` makes every port forward at once (only for loop-free topologies)"},
	{Path: "stp.protocol", Default: stp.ProtocolRSTP.String(), value: func(c *Config) any { return c.STP.Protocol },
		Doc: "`rstp` (IEEE 802.1D-2004 rapid spanning tree; a port that hears an 802.1D bridge, such as a kernel bridge, falls back to 802.1D) or `stp` (IEEE 802.1D-1998 only)"},
	{Path: "stp.priority", Default: defaultSTPPriority, Min: 0, Max: 65535, Live: true, value: func(c *Config) any { return c.STP.Priority },
		Doc: "bridge priority (lower wins the root election). One 802.1D-2004 step better than the 32768 of kernel bridges and switches, so the root is an l2wg node and the TAP's root guard does not trip on an ordinary host bridge"},
	{Path: "stp.hello_time", Default: stp.DefaultHelloTime, Min: stp.MinHelloTime, Max: stp.MaxHelloTime, Live: true, value: func(c *Config) any { return c.STP.HelloTime },
		Doc: "interval of the root's BPDUs"},
	{Path: "stp.max_age", Default: stp.DefaultMaxAge, Min: stp.MinMaxAge, Max: stp.MaxMaxAge, Live: true, value: func(c *Config) any { return c.STP.MaxAge },
		Doc: "and 2·(hello_time+1 s) ≤ max_age ≤ 2·(forward_delay−1 s) (802.1D 8.10.2)"},
	{Path: "stp.forward_delay", Default: stp.DefaultForwardDelay, Min: stp.MinForwardDelay, Max: stp.MaxForwardDelay, Live: true, value: func(c *Config) any { return c.STP.ForwardDelay },
		Doc: "time in listening and in learning (802.1D), and RSTP's fallback"},
	{Path: "stp.tap", Default: spanning.TAPAuto, value: func(c *Config) any { return c.STP.TAPMode },
		Doc: "how the TAP port takes part: `stp` (standard BPDUs: one tree with a host bridge that runs kernel STP), `private` (l2wg's messages to the group address 03:6c:32:77:67:00, which switches forward as plain multicast: loops through a LAN between l2wg nodes are still found, and no BPDU reaches a switch with BPDU guard), `edge` (no spanning-tree messages; the TAP always forwards). `auto` picks `stp` when the host bridge's `stp_state` is not 0, else `private`"},
	{Path: "stp.tap_cost", Default: stp.DefaultPathCost, Min: uint32(1), Max: stp.MaxPathCost, Live: true, value: func(c *Config) any { return c.STP.TAPCost },
		Doc: "path cost of the TAP port"},
	{Path: "stp.bpdu_guard", Default: false, Live: true, value: func(c *Config) any { return c.STP.BPDUGuard },
		Doc: "any spanning-tree message from the VM side disables the TAP port for 30 s (logged); for sites where no bridge may sit behind the TAP. Do not combine with `tap = \"stp\"`"},

	{Path: "mesh.protocol", Default: MeshShortestPath, value: func(c *Config) any { return c.MeshProtocol },
		Doc: "how frames cross the mesh of peerings: `shortest-path` (the default; `spanning-tree` before it), `spanning-tree` (one tree, as `[stp]` configures it), `rstp` or `stp` (that tree with that `[stp] protocol`). `shortest-path` is a link-state protocol (every frame takes a shortest path from its ingress node, multi-destination frames its ingress node's tree with a reverse-path check, no blocked peering; costs are the peers' `cost`, `auto` following the RTT; at the TAP, `[stp] tap` decides: `private` (and `auto` on a host bridge without STP) runs no spanning tree, the TAP forwards 0.3 s after start and l2wg nodes whose TAPs share a LAN elect one appointed forwarder for it; `stp` (and `auto` on a host bridge that runs kernel STP) adds 802.1D BPDUs in which the whole mesh is one root bridge on every TAP, `[stp] priority` (keep it the same on every node) with 02:6c and the lowest node ID, root path cost 0, a port ID per node, so that kernel bridges joined by a LAN block the loop themselves; a bridge behind a TAP that claims a better root blocks that TAP (root guard, logged); the TAP forwards after 2 × `forward_delay`; `edge` forwards at once and sends nothing)"},

	{Path: "peer.cost", Default: "auto", Live: true, peerValue: func(p *Peer) any { return p.Cost },
		Doc: "path cost of the peer's port: `\"auto\"` follows the least round trip of the last 10–20 s — the path's delay, not the queues that traffic fills (100 + 1 per 100 µs, changed only when it moves by more than 10 and up by more than a fifth or down by more than a twentieth, so jitter does not flap the tree), or a fixed 1–200000000; lower is preferred"},
	{Path: "peer.name", DefaultText: "first 8 characters of the key", Live: true, peerValue: func(p *Peer) any { return p.Name },
		Doc: "port name in logs; a renamed peer is removed and added again"},
	{Path: "peer.public_key", DefaultText: "required", Live: true, peerValue: func(p *Peer) any { return p.PublicKey },
		Doc: "the peer's base64 public key"},
	{Path: "peer.endpoint", DefaultText: "none", Live: true, peerValue: func(p *Peer) any { return p.Endpoint },
		Doc: "`host:port`: IPv4, `[IPv6]` or a DNS name (resolved at start, retried in the background until it resolves, and resolved again while the peer's handshake is stale and on `l2wg reload`: see `[tunnel] reresolve_after`). Without it the peer must dial us."},
	{Path: "peer.persistent_keepalive", Default: 0, DefaultText: "`0` (off)", Min: 0, Max: 65535, Live: true, peerValue: func(p *Peer) any { return p.PersistentKeepalive },
		Doc: "seconds, as in WireGuard; set it on a node behind NAT"},
	{Path: "peer.vlans", Default: "all", Live: true, peerValue: func(p *Peer) any { return p.VLANs.VIDs.String() },
		Doc: "the VLANs the peer's port carries, as `[tap] vlans`"},
	{Path: "peer.untagged", Default: true, Live: true, peerValue: func(p *Peer) any { return p.VLANs.Untagged },
		Doc: "the peer's port carries untagged frames, as `[tap] untagged`"},
}

// KeyOf returns the row of path ("peer[2].cost" is "peer.cost"); it panics
// for a path without one, which a test of the table rules out.
func KeyOf(path string) *Key {
	if strings.HasPrefix(path, "peer[") {
		if i := strings.Index(path, "]."); i > 0 {
			path = "peer" + path[i+1:]
		}
	}
	for _, k := range Keys {
		if k.Path == path {
			return k
		}
	}
	panic("config: no key " + path)
}

// Markdown is the README's table of keys.
func Markdown() string {
	var b strings.Builder
	b.WriteString("| key | default | range | reload | meaning |\n|---|---|---|---|---|\n")
	for _, k := range Keys {
		name := "`" + k.Path + "`"
		if table, key, ok := strings.Cut(k.Path, "."); ok {
			if table == "peer" {
				table = "[peer]"
			}
			name = "`[" + table + "] " + key + "`"
		}
		def := k.DefaultText
		if def == "" {
			def = "`" + valueText(k.Default) + "`"
		}
		rng := ""
		if k.Min != nil {
			rng = rangeText(k.Min) + " – " + rangeText(k.Max)
		}
		live := "restart"
		if k.Live {
			live = "live"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", name, def, rng, live, k.Doc)
	}
	return b.String()
}

// valueText writes a value as node.toml would.
func valueText(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("%q", v)
	case time.Duration:
		return fmt.Sprintf("%q", durationText(v))
	}
	return fmt.Sprint(v)
}

func durationText(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}

func rangeText(v any) string {
	if d, ok := v.(time.Duration); ok {
		return durationText(d)
	}
	return fmt.Sprint(v)
}
