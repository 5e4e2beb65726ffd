package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/control"
)

// cmdShow prints a running l2wg's state: `l2wg show [-i tap] [--json]
// [fdb | mesh [--dot]]`.
func cmdShow(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("show", "[-i tap] [--json] [fdb | mesh [--dot]]", "print a running l2wg's interface, peers, spanning tree or mesh, ports, (with fdb) forwarding database, (with mesh) link-state mesh")
	tap := fs.String("i", "", "the TAP `name` of the l2wg to show (default: the only one running)")
	asJSON := fs.Bool("json", false, "print JSON (stable field names, see README)")
	asDOT := fs.Bool("dot", false, "with mesh: print the mesh as a Graphviz graph (l2wg show mesh --dot | dot -Tsvg > mesh.svg)")
	if err := parseFlags(fs, args, stdout, stderr, true); err != nil {
		return err
	}
	what := "status"
	if fs.NArg() > 0 {
		what = fs.Arg(0)
		if what != "fdb" && what != "mesh" {
			return &exitError{code: 2, err: fmt.Errorf("show: unknown object %q (want: fdb, mesh)", what)}
		}
		// Flags may follow the object: show mesh --dot.
		if err := parseFlags(fs, fs.Args()[1:], stdout, stderr); err != nil {
			return err
		}
	}
	if *asDOT && what != "mesh" {
		return &exitError{code: 2, err: fmt.Errorf("show: --dot needs mesh")}
	}
	if *asDOT && *asJSON {
		return &exitError{code: 2, err: fmt.Errorf("show: --dot and --json exclude each other")}
	}
	path, err := control.Find(*tap)
	if err != nil {
		return err
	}
	if what == "mesh" {
		m, err := control.QueryMesh(path)
		if err != nil {
			return err
		}
		return showMesh(stdout, m, *asJSON, *asDOT)
	}
	st, err := control.Query(path, what)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if what == "fdb" {
			return enc.Encode(st.FDB)
		}
		return enc.Encode(st)
	}
	if what == "fdb" {
		printFDB(stdout, st.FDB)
		return nil
	}
	printStatus(stdout, st, time.Now())
	return nil
}

// showMesh prints the answer to `l2wg show mesh`.
func showMesh(w io.Writer, m *control.Mesh, asJSON, asDOT bool) error {
	switch {
	case asJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(m)
	case asDOT:
		v, err := m.View()
		if err != nil {
			return err
		}
		return v.WriteDOT(w)
	}
	printMesh(w, m)
	return nil
}

// printMesh prints the mesh: the nodes with their paths, the links with
// cost, RTT and use, and the counters.
func printMesh(w io.Writer, m *control.Mesh) {
	names := make(map[string]string, len(m.Nodes))
	for _, n := range m.Nodes {
		if n.Name != "" {
			names[n.ID] = n.Name
		}
	}
	name := func(id string) string {
		if n := names[id]; n != "" {
			return n
		}
		return id
	}
	s := m.Stats
	fmt.Fprintf(w, "mesh: %s (%s), %s, %d nodes in the database, %d reachable, %d links\n",
		name(m.Self), m.Self, ifElse(m.Synced, "synced", "syncing"), s.DatabaseNodes, s.GraphNodes, s.GraphLinks)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  node\tid\thops\tcost\tpath\tlifetime")
	for _, n := range m.Nodes {
		path := "unreachable"
		if n.Reachable {
			parts := make([]string, len(n.Path))
			for i, id := range n.Path {
				parts[i] = name(id)
			}
			path = strings.Join(parts, " > ")
		}
		hops, cost := "-", "-"
		if n.Reachable {
			hops, cost = fmt.Sprint(n.Hops), fmt.Sprint(n.Cost)
		}
		fmt.Fprintf(tw, "  %s%s\t%s\t%s\t%s\t%s\t%.0fs\n", name(n.ID), ifThen(n.ID == m.Self, " (self)"), n.ID, hops, cost, path, n.Lifetime)
	}
	tw.Flush()
	fmt.Fprintln(w, "links:")
	tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  a\tb\tcost\tlisted a>b\tlisted b>a\tconfirmed\tin use\trtt")
	// in use: on this node's tree; by others: on some other node's only.
	for _, l := range m.Links {
		cost := "-"
		if l.Confirmed {
			cost = fmt.Sprint(l.Cost)
		}
		rtt := "-"
		if l.RTT > 0 {
			rtt = fmt.Sprintf("%.2fms", l.RTT)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name(l.A), name(l.B), cost, listed(l.CostAB), listed(l.CostBA),
			ifElse(l.Confirmed, "yes", "no"), inUse(m, l), rtt)
	}
	tw.Flush()
	tw = tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	if m.LAN != nil {
		fmt.Fprintf(w, "lan: %s\n", lanText(m.LAN, m.Self, name))
	}
	spfTime := ""
	if s.SPFSeconds != nil {
		spfTime = fmt.Sprintf(", %.3fms", *s.SPFSeconds*1e3)
		if s.LastSPFSecs != nil {
			spfTime += fmt.Sprintf(" (latest %.1fµs)", *s.LastSPFSecs*1e6)
		}
	}
	fmt.Fprintf(tw, "  spf:\t%d runs in %d computations%s\n", s.SPFRuns, s.Computes, spfTime)
	fmt.Fprintf(tw, "  floods:\t%d records in, %d out; summaries %d in, %d out; requests %d in, %d out; %d expired\n",
		s.FloodsIn, s.FloodsOut, s.SummariesIn, s.SummariesOut, s.RequestsIn, s.RequestsOut, s.Expired)
	fmt.Fprintf(tw, "  control drops:\t%s\n", dropsText(s.ControlDrops))
	fmt.Fprintf(tw, "  frames:\t%d sent, %d transit, %d addresses behind other nodes\n", s.FramesSent, s.FramesTransit, s.Addresses)
	fmt.Fprintf(tw, "  frame drops:\t%s\n", dropsText(s.FrameDrops))
	tw.Flush()
}

// lanText says who forwards for the LAN behind the TAP, and which l2wg
// nodes are on it: "appointed forwarder a2 (1a2b3c4d); on it: a1 (self),
// a2*".
func lanText(l *control.MeshLANSection, self string, name func(string) string) string {
	fwd := "none (listening)"
	if l.Forwarder != "" {
		fwd = name(l.Forwarder)
		if fwd != l.Forwarder {
			fwd += " (" + l.Forwarder + ")"
		}
		if l.Forwarding {
			fwd += ", this node"
		}
	}
	var on []string
	for _, id := range l.Nodes {
		on = append(on, name(id)+ifThen(id == self, " (self)")+ifThen(id == l.Forwarder, "*"))
	}
	return fmt.Sprintf("appointed forwarder %s; on it: %s", fwd, strings.Join(on, ", "))
}

// inUse says whether a link carries frames: "yes" on this node's tree,
// "by others" on another node's only, "no" on none.
func inUse(m *control.Mesh, l control.MeshLink) string {
	switch {
	case l.InUse:
		return "yes"
	case l.Used:
		return "by others"
	case m.UsedKnown || !l.Confirmed:
		return "no"
	}
	return "-" // not on this node's tree; other trees not computed

}

func listed(c uint32) string {
	if c == 0 {
		return "-"
	}
	return fmt.Sprint(c)
}

func ifElse(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

func printStatus(w io.Writer, st control.Status, now time.Time) {
	in := st.Interface
	fmt.Fprintf(w, "interface: %s\n", in.TAP)
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	fmt.Fprintf(tw, "  public key:\t%s\n", in.PublicKey)
	fmt.Fprintf(tw, "  listening port:\t%d\n", in.ListenPort)
	fmt.Fprintf(tw, "  tap:\tmtu %d, offload %s, bridge %s%s\n", in.MTU, onOff(in.Offload), orNone(in.Bridge), ifThen(in.Persistent, ", persistent"))
	fmt.Fprintf(tw, "  tunnel:\tmtu %d, label %s\n", in.TunnelMTU, in.Label)
	fmt.Fprintf(tw, "  host isolation:\t%s\n", onOff(in.IsolateHost))
	fmt.Fprintf(tw, "  switch:\t%d/%d fdb entries, ageing %s\n", st.Switch.FDBEntries, st.Switch.FDBLimit, secs(st.Switch.AgeingTime))
	if len(st.Tunnel.Drops) > 0 {
		fmt.Fprintf(tw, "  tunnel drops:\t%s\n", dropsText(st.Tunnel.Drops))
	}
	tw.Flush()

	ports := make(map[int]control.Port, len(st.Ports))
	for _, p := range st.Ports {
		ports[p.ID] = p
	}
	for _, p := range st.Peers {
		fmt.Fprintf(w, "\npeer: %s\n", p.Name)
		tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
		fmt.Fprintf(tw, "  public key:\t%s\n", p.PublicKey)
		if p.Endpoint != "" {
			fmt.Fprintf(tw, "  endpoint:\t%s\n", p.Endpoint)
		}
		if p.LatestHandshake != nil {
			fmt.Fprintf(tw, "  latest handshake:\t%s ago\n", now.Sub(*p.LatestHandshake).Round(time.Second))
		} else {
			fmt.Fprintf(tw, "  latest handshake:\tnever\n")
		}
		fmt.Fprintf(tw, "  transfer:\t%s received, %s sent\n", bytesHuman(p.RxBytes), bytesHuman(p.TxBytes))
		if p.PersistentKeepalive > 0 {
			fmt.Fprintf(tw, "  persistent keepalive:\tevery %d seconds\n", p.PersistentKeepalive)
		}
		if sp, ok := ports[p.Port]; ok {
			fmt.Fprintf(tw, "  port:\t%d, %s, %d frames received, %d sent\n", sp.ID, sp.State, sp.RxFrames, sp.TxFrames)
		}
		tw.Flush()
	}
	if st.STP != nil {
		fmt.Fprintln(w)
		printSTP(w, st)
	}
	if st.Mesh != nil {
		fmt.Fprintln(w)
		printMesh(w, st.Mesh)
	}
	fmt.Fprintln(w, "\nports:")
	tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  id\tname\tstate\tvlans\trx frames\trx bytes\ttx frames\ttx bytes\tdrops")
	for _, p := range st.Ports {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", p.ID, p.Name, p.State, vlansText(p), p.RxFrames, p.RxBytes, p.TxFrames, p.TxBytes, dropsText(p.Drops))
	}
	tw.Flush()
}

func printFDB(w io.Writer, fdb []control.FDBEntry) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "vlan\tmac\tport\tage")
	for _, e := range fdb {
		vlan := "-" // untagged
		if e.VID != 0 {
			vlan = fmt.Sprint(e.VID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s (%d)\t%s\n", vlan, e.MAC, e.Name, e.Port, secs(e.Age))
	}
	tw.Flush()
}

// printSTP prints the tree the way brctl showstp does.
func printSTP(w io.Writer, st control.Status) {
	t := st.STP
	fmt.Fprintf(w, "spanning tree: %s\n", st.Interface.TAP)
	row := func(k1 string, v1 any, k2 string, v2 any) {
		fmt.Fprintf(w, " %-22s %-18v %-22s %v\n", k1, v1, k2, v2)
	}
	fmt.Fprintf(w, " %-22s %s\n", "bridge id", t.BridgeID)
	fmt.Fprintf(w, " %-22s %s%s\n", "designated root", t.DesignatedRoot, ifThen(t.IsRoot, " (this bridge)"))
	row("root port", orNone(t.RootPort), "path cost", t.RootPathCost)
	row("max age", secs(t.MaxAge), "bridge max age", secs(t.BridgeMaxAge))
	row("hello time", secs(t.HelloTime), "bridge hello time", secs(t.BridgeHelloTime))
	row("forward delay", secs(t.ForwardDelay), "bridge forward delay", secs(t.BridgeForwardDelay))
	row("protocol", t.Protocol, "tap mode", t.TAPMode)
	row("topology changes", t.TopologyChanges, "bpdus dropped", t.BPDUsIgnored+t.BPDUsMalformed)
	var flags []string
	if t.TopologyChange {
		flags = append(flags, "TOPOLOGY_CHANGE")
	}
	if t.TopologyChangeDetected {
		flags = append(flags, "TOPOLOGY_CHANGE_DETECTED")
	}
	fmt.Fprintf(w, " %-22s %s\n", "flags", strings.Join(flags, " "))
	for _, p := range t.Ports {
		fmt.Fprintf(w, "\n%s (%d)\n", p.Name, p.No)
		row("port id", p.PortID, "state", p.State)
		row("role", p.Role, "path cost", p.PathCost)
		row("designated root", p.DesignatedRoot, "designated cost", p.DesignatedCost)
		row("designated bridge", p.DesignatedBridge, "designated port", p.DesignatedPort)
		row("bpdus in", p.BPDUsIn, "bpdus out", p.BPDUsOut)
		row("protocol", p.Protocol, "point-to-point", p.PointToPoint)
		if p.RTT > 0 {
			row("round trip", fmt.Sprintf("%.2fms", p.RTT), "", "")
		}
		var pf []string
		if p.RootGuard {
			pf = append(pf, "ROOT_GUARD")
		}
		if p.RootInconsistent {
			pf = append(pf, "ROOT_INCONSISTENT")
		}
		fmt.Fprintf(w, " %-22s %s\n", "flags", strings.Join(pf, " "))
	}
}

// vlansText is what a port carries: "all", "100-102,300", with
// "+untagged" when it carries untagged frames too ("all+untagged" is the
// default).
func vlansText(p control.Port) string {
	if p.Untagged {
		return p.VLANs + "+untagged"
	}
	return p.VLANs
}

func dropsText(d map[string]uint64) string {
	if len(d) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, d[k])
	}
	return strings.Join(parts, ",")
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func ifThen(b bool, s string) string {
	if b {
		return s
	}
	return ""
}

func secs(s float64) string { return fmt.Sprintf("%.2fs", s) }

func bytesHuman(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.2f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// cmdReload asks a running l2wg to reload its config: `l2wg reload [-i tap]`.
func cmdReload(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("reload", "[-i tap]", "re-read node.toml and apply the difference live, all or nothing (as SIGHUP)")
	tap := fs.String("i", "", "the TAP `name` of the l2wg to reload (default: the only one running)")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	addr, err := control.Find(*tap)
	if err != nil {
		return err
	}
	res, err := control.Reload(addr)
	if err != nil {
		return err
	}
	for _, ch := range res.Changes {
		fmt.Fprintln(stdout, ch)
	}
	if !res.OK {
		return errors.New(res.Error)
	}
	if len(res.Changes) == 0 {
		fmt.Fprintln(stdout, "nothing changed")
	}
	return nil
}
