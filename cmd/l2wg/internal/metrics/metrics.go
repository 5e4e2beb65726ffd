// Package metrics serves Prometheus metrics on metrics_listen (off by
// default).
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/control"
	"github.com/l2wg/l2wg/frag"
	"github.com/l2wg/l2wg/stp"
	"github.com/l2wg/l2wg/tunnel"
)

// Prometheus metrics on metrics_listen (off by default). The collector reads
// the snapshots that `l2wg show` reads (switch ports, FDB, spanning tree,
// reassembly, WireGuard peers) when Prometheus scrapes, so metrics cost
// nothing per frame. Every metric is named l2wg_*; the Go runtime's go_* and
// the process's process_* come with them.

// Snapshot is everything /metrics reports, read at scrape time.
type Snapshot struct {
	TAP        string
	Ports      []bridge.PortInfo
	Switch     bridge.Stats
	FDBByVLAN  map[uint16]int // FDB entries per VID (0: untagged)
	Peers      []tunnel.PeerStatus
	Reassembly frag.Stats
	Tunnel     tunnel.Drops
	STP        *control.STP // nil when the spanning tree is off
	// Mesh: the mesh protocol's view and counters (control.MeshSourceOf
	// the node); nil when the node runs rstp or stp, and then no l2wg_mesh_*
	// series appear.
	Mesh *control.MeshSource
	Now  time.Time
}

// portStates are the states l2wg_port_state enumerates, one series each.
var portStates = []stp.PortState{stp.Disabled, stp.Blocking, stp.Discarding, stp.Listening, stp.Learning, stp.Forwarding}

// Collector turns a Snapshot into Prometheus metrics.
type Collector struct {
	version  string
	snapshot func() Snapshot

	info                                     *prometheus.Desc
	portRxFrames, portRxBytes                *prometheus.Desc
	portTxFrames, portTxBytes                *prometheus.Desc
	portDrops, portState                     *prometheus.Desc
	portTxVLANFiltered, fdbVLANEntries       *prometheus.Desc
	switchDrops, fdbEntries, fdbLimit        *prometheus.Desc
	stationMoves                             *prometheus.Desc
	stpRoot, stpRootCost, stpTC, stpTCs      *prometheus.Desc
	stpPortRole, stpPortBPDUsIn              *prometheus.Desc
	stpPortBPDUsOut, stpPortRootInconsistent *prometheus.Desc
	reasmInProgress, reasmBytesHeld          *prometheus.Desc
	reasmFrames, reasmFragments              *prometheus.Desc
	reasmTimeouts, reasmDrops                *prometheus.Desc
	tunnelDrops, stpBPDUDrops                *prometheus.Desc
	peerInfo, peerUp, peerHandshake          *prometheus.Desc
	peerHandshakeAge, peerRxBytes            *prometheus.Desc
	peerTxBytes                              *prometheus.Desc
	mesh                                     meshDescs
}

func NewCollector(version string, snapshot func() Snapshot) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("l2wg_"+name, help, labels, nil)
	}
	return &Collector{
		version:  version,
		snapshot: snapshot,
		info:     d("info", "Always 1; labels name the TAP and the l2wg version.", "tap", "version"),

		portRxFrames: d("port_rx_frames_total", "Frames the switch received on the port (dropped ones included).", "port"),
		portRxBytes:  d("port_rx_bytes_total", "Bytes of the frames the switch received on the port.", "port"),
		portTxFrames: d("port_tx_frames_total", "Frames the switch sent out of the port.", "port"),
		portTxBytes:  d("port_tx_bytes_total", "Bytes of the frames the switch sent out of the port.", "port"),
		portDrops:    d("port_drops_total", "Frames dropped on ingress at the port, by reason (fdb-full counts addresses not learned; their frames were still forwarded).", "port", "reason"),
		portState:    d("port_state", "802.1D state of the port: 1 for the current state, 0 for the others.", "port", "state"),

		switchDrops: d("switch_drops_total", "Frames dropped by the switch over all ports, removed ones included, by reason.", "reason"),
		fdbEntries:  d("fdb_entries", "Addresses in the forwarding database."),

		portTxVLANFiltered: d("port_tx_vlan_filtered_total", "Flooded frames not sent out of the port because its VLAN filter does not carry their VLAN (they went to the other ports).", "port"),
		fdbVLANEntries:     d("fdb_vlan_entries", "Addresses in the forwarding database per VLAN (vid 0: untagged); VLANs without any are left out.", "vid"),
		fdbLimit:           d("fdb_limit", "Size limit of the forwarding database (switch.max_fdb_entries)."),
		stationMoves:       d("fdb_station_moves_total", "Addresses learned on one port and then seen on another."),

		stpRoot:                 d("stp_root_bridge", "1 if this node is the root of the spanning tree."),
		stpRootCost:             d("stp_root_path_cost", "Path cost from this node to the root."),
		stpTC:                   d("stp_topology_change", "1 while a topology change is in progress (the FDB ages at the forward delay)."),
		stpTCs:                  d("stp_topology_changes_total", "Topology changes seen."),
		stpPortRole:             d("stp_port_role", "Always 1; the role label is the port's current 802.1D role.", "port", "role"),
		stpPortBPDUsIn:          d("stp_port_bpdus_received_total", "BPDUs received on the port.", "port"),
		stpPortBPDUsOut:         d("stp_port_bpdus_sent_total", "BPDUs sent on the port.", "port"),
		stpPortRootInconsistent: d("stp_port_root_inconsistent", "1 while root guard blocks the port (a better root was offered on it).", "port"),

		reasmInProgress: d("reassembly_in_progress", "Fragmented frames being reassembled."),
		reasmBytesHeld:  d("reassembly_bytes_held", "Memory held by frames being reassembled."),
		reasmFrames:     d("reassembly_frames_total", "Frames delivered by the tunnel, by how they came: whole (one chunk), reassembled (from fragments) or packed (several in one chunk).", "how"),
		reasmFragments:  d("reassembly_fragments_total", "Fragment chunks received."),
		reasmTimeouts:   d("reassembly_timeouts_total", "Incomplete frames dropped after tunnel.reassembly_timeout."),
		reasmDrops:      d("reassembly_drops_total", "Chunks or incomplete frames dropped by reassembly, by reason (timeouts apart).", "reason"),
		tunnelDrops:     d("tunnel_drops_total", "Packets or frames the tunnel dropped, by reason: malformed, unknown-peer, too-big, closed, control-queue-full, unsolicited-probe, foreign-label.", "reason"),
		stpBPDUDrops:    d("stp_bpdus_dropped_total", "BPDUs not fed to the spanning tree, by reason: ignored (wrong group for the port, or an edge TAP), malformed.", "reason"),

		peerInfo:         d("peer_info", "Always 1; labels give the peer's public key.", "peer", "public_key"),
		peerUp:           d("peer_up", "1 while WireGuard has a session with the peer (its port can carry traffic).", "peer"),
		peerHandshake:    d("peer_last_handshake_timestamp_seconds", "Unix time of the latest completed handshake with the peer; 0 if none.", "peer"),
		peerHandshakeAge: d("peer_handshake_age_seconds", "Seconds since the latest completed handshake with the peer; absent if none.", "peer"),
		peerRxBytes:      d("peer_rx_bytes_total", "Bytes WireGuard received from the peer (UDP payload, as wg show counts).", "peer"),
		peerTxBytes:      d("peer_tx_bytes_total", "Bytes WireGuard sent to the peer (UDP payload, as wg show counts).", "peer"),
		mesh:             newMeshDescs(d),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.info, c.portRxFrames, c.portRxBytes, c.portTxFrames, c.portTxBytes, c.portDrops, c.portState,
		c.switchDrops, c.fdbEntries, c.fdbLimit, c.stationMoves, c.portTxVLANFiltered, c.fdbVLANEntries,
		c.stpRoot, c.stpRootCost, c.stpTC, c.stpTCs, c.stpPortRole, c.stpPortBPDUsIn, c.stpPortBPDUsOut, c.stpPortRootInconsistent,
		c.reasmInProgress, c.reasmBytesHeld, c.reasmFrames, c.reasmFragments, c.reasmTimeouts, c.reasmDrops,
		c.tunnelDrops, c.stpBPDUDrops,
		c.peerInfo, c.peerUp, c.peerHandshake, c.peerHandshakeAge, c.peerRxBytes, c.peerTxBytes,
	} {
		ch <- d
	}
	c.mesh.describe(ch)
}

// Collect implements prometheus.Collector: one snapshot per scrape.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	e := emitter{ch}
	e.gauge(c.info, 1, s.TAP, c.version)
	c.collectSwitch(e, s)
	if s.STP != nil {
		c.collectSTP(e, s.STP)
	}
	c.collectReassembly(e, s.Reassembly)
	for _, d := range control.TunnelDropCounts(s.Tunnel) {
		e.counter(c.tunnelDrops, d.N, d.Reason)
	}
	if s.STP != nil {
		e.counter(c.stpBPDUDrops, s.STP.BPDUsIgnored, "ignored")
		e.counter(c.stpBPDUDrops, s.STP.BPDUsMalformed, "malformed")
	}
	c.collectPeers(e, s.Peers, s.Now)
	if s.Mesh != nil {
		c.mesh.collect(e, s.Mesh)
	}
}

// emitter sends constant metrics made from snapshot values.
type emitter struct{ ch chan<- prometheus.Metric }

func (e emitter) counter(d *prometheus.Desc, v uint64, labels ...string) {
	e.ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func (e emitter) gauge(d *prometheus.Desc, v float64, labels ...string) {
	e.ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func (c *Collector) collectSwitch(e emitter, s Snapshot) {
	names := portLabels(s.Ports)
	for i, p := range s.Ports {
		name := names[i]
		e.counter(c.portRxFrames, p.Counters.RxFrames, name)
		e.counter(c.portRxBytes, p.Counters.RxBytes, name)
		e.counter(c.portTxFrames, p.Counters.TxFrames, name)
		e.counter(c.portTxBytes, p.Counters.TxBytes, name)
		e.counter(c.portTxVLANFiltered, p.Counters.TxVLANFiltered, name)
		for r, v := range p.Counters.Drops {
			e.counter(c.portDrops, v, name, bridge.DropReason(r).String())
		}
		for _, st := range portStates {
			e.gauge(c.portState, boolValue(p.State == st), name, st.String())
		}
	}
	for r, v := range s.Switch.Drops {
		e.counter(c.switchDrops, v, bridge.DropReason(r).String())
	}
	e.gauge(c.fdbEntries, float64(s.Switch.FDBEntries))
	for vid, n := range s.FDBByVLAN {
		e.gauge(c.fdbVLANEntries, float64(n), strconv.Itoa(int(vid)))
	}
	e.gauge(c.fdbLimit, float64(s.Switch.FDBLimit))
	e.counter(c.stationMoves, s.Switch.StationMoves)
}

func (c *Collector) collectSTP(e emitter, t *control.STP) {
	e.gauge(c.stpRoot, boolValue(t.IsRoot))
	e.gauge(c.stpRootCost, float64(t.RootPathCost))
	e.gauge(c.stpTC, boolValue(t.TopologyChange))
	e.counter(c.stpTCs, t.TopologyChanges)
	seen := make(map[string]bool)
	for _, p := range t.Ports {
		if seen[p.Name] {
			continue
		}
		seen[p.Name] = true
		e.gauge(c.stpPortRole, 1, p.Name, p.Role)
		e.counter(c.stpPortBPDUsIn, p.BPDUsIn, p.Name)
		e.counter(c.stpPortBPDUsOut, p.BPDUsOut, p.Name)
		e.gauge(c.stpPortRootInconsistent, boolValue(p.RootInconsistent), p.Name)
	}
}

func (c *Collector) collectReassembly(e emitter, r frag.Stats) {
	e.gauge(c.reasmInProgress, float64(r.InProgress))
	e.gauge(c.reasmBytesHeld, float64(r.BytesHeld))
	e.counter(c.reasmFrames, r.Whole, "whole")
	e.counter(c.reasmFrames, r.Reassembled, "reassembled")
	e.counter(c.reasmFrames, r.PackedFrames, "packed")
	e.counter(c.reasmFragments, r.Fragments)
	e.counter(c.reasmTimeouts, r.Timeouts)
	for _, d := range []struct {
		reason string
		n      uint64
	}{
		{"evicted", r.Evicted}, {"malformed", r.Malformed}, {"duplicate", r.Duplicate}, {"overlap", r.Overlap},
		{"too-big", r.TooBig}, {"unknown-type", r.UnknownType}, {"too-many-holes", r.TooManyHoles},
	} {
		e.counter(c.reasmDrops, d.n, d.reason)
	}
}

func (c *Collector) collectPeers(e emitter, peers []tunnel.PeerStatus, now time.Time) {
	for _, p := range peers {
		e.gauge(c.peerInfo, 1, p.Name, p.PublicKey)
		e.gauge(c.peerUp, boolValue(p.Live(now)), p.Name)
		if p.LastHandshake.IsZero() {
			e.gauge(c.peerHandshake, 0, p.Name)
		} else {
			e.gauge(c.peerHandshake, float64(p.LastHandshake.UnixNano())/1e9, p.Name)
			e.gauge(c.peerHandshakeAge, max(now.Sub(p.LastHandshake).Seconds(), 0), p.Name)
		}
		e.counter(c.peerRxBytes, p.RxBytes, p.Name)
		e.counter(c.peerTxBytes, p.TxBytes, p.Name)
	}
}

// portLabels names each port for the port label: its name, or, should two
// ports share one (a peer named like the TAP), name#id for the later ones, so
// that no two series collide.
func portLabels(ports []bridge.PortInfo) []string {
	labels := make([]string, len(ports))
	seen := make(map[string]bool, len(ports))
	for i, p := range ports {
		labels[i] = p.Name
		if seen[p.Name] {
			labels[i] = p.Name + "#" + strconv.Itoa(int(p.ID))
		}
		seen[p.Name] = true
	}
	return labels
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Server is the HTTP server of /metrics.
type Server struct {
	srv  *http.Server
	addr net.Addr
	done chan struct{} // closed when Serve has returned
}

// NewHandler serves the collector at /metrics (with the Go runtime
// and process collectors) and a pointer to it at /.
func NewHandler(c prometheus.Collector, log *slog.Logger) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
		Timeout:       10 * time.Second,
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "l2wg: Prometheus metrics at /metrics")
	})
	return mux
}

// Start serves the collector of snapshot on addr. A metrics_listen that
// cannot be bound fails the start: the operator asked for it, and a
// silently missing target would page nobody.
func Start(addr, version string, snapshot func() Snapshot, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics_listen %s: %w", addr, err)
	}
	m := &Server{
		srv: &http.Server{
			Handler:           NewHandler(NewCollector(version, snapshot), log),
			ReadHeaderTimeout: 10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
		addr: ln.Addr(),
		done: make(chan struct{}),
	}
	go func() {
		defer close(m.done)
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "listen", m.addr.String(), "err", err)
		}
	}()
	log.Info("metrics: Prometheus text at /metrics", "listen", m.addr.String())
	return m, nil
}

// Addr is the address the server listens on.
func (m *Server) Addr() net.Addr { return m.addr }

// Close stops the server, letting a scrape under way finish for a moment.
func (m *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := m.srv.Shutdown(ctx); err != nil {
		m.srv.Close()
	}
	<-m.done
}
