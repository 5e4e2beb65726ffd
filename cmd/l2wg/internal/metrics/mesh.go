package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/control"
)

// meshDescs are the l2wg_mesh_* metrics, emitted only when the node runs
// the mesh protocol.
type meshDescs struct {
	dbNodes, graphNodes, graphLinks, addresses *prometheus.Desc
	spfRuns, computes, spfSeconds, spfLast     *prometheus.Desc
	lanForwarding, lanNodes                    *prometheus.Desc
	floods, summaries, requests, expired       *prometheus.Desc
	controlDrops, frames, frameDrops, synced   *prometheus.Desc
}

func newMeshDescs(d func(name, help string, labels ...string) *prometheus.Desc) meshDescs {
	return meshDescs{
		dbNodes:       d("mesh_database_nodes", "Link-state records (nodes) in the database."),
		graphNodes:    d("mesh_graph_nodes", "Nodes reachable in the last table computation, this one included."),
		graphLinks:    d("mesh_graph_links", "Two-way confirmed links in the last table computation."),
		addresses:     d("mesh_addresses", "MAC addresses learned behind other nodes."),
		synced:        d("mesh_synced", "1 once the node has learned the database and computes its tables."),
		spfRuns:       d("mesh_spf_runs_total", "Shortest-path-tree computations (each table computation runs 1 + neighbours)."),
		computes:      d("mesh_computations_total", "Table computations."),
		spfSeconds:    d("mesh_spf_seconds_total", "Wall time spent in table computations (absent where the node does not measure it)."),
		spfLast:       d("mesh_spf_last_seconds", "Wall time of the latest table computation (graph, 1 + neighbours SPF runs, table)."),
		lanForwarding: d("mesh_lan_forwarding", "1 while this node is the appointed forwarder of the LAN behind its TAP."),
		lanNodes:      d("mesh_lan_nodes", "l2wg nodes heard on the LAN behind the TAP, this one included."),
		floods:        d("mesh_floods_total", "Link-state records flooded: in (accepted as new or newer), out (sent).", "direction"),
		summaries:     d("mesh_summaries_total", "Database summaries received and sent.", "direction"),
		requests:      d("mesh_requests_total", "Record requests received and sent.", "direction"),
		expired:       d("mesh_records_expired_total", "Records aged out of the database."),
		controlDrops:  d("mesh_control_drops_total", "Mesh control messages or records dropped, by reason: malformed, not-adjacent, absurd-seq, oversized, database-full, id-collision.", "reason"),
		frames:        d("mesh_frames_total", "Frames the mesh port wrote to links (sent), and unicast frames among them it forwarded for other nodes (transit).", "how"),
		frameDrops:    d("mesh_frame_drops_total", "Frames the mesh port dropped, by reason: hop-limit, reverse-path, no-route, no-table, malformed, hop-limit-zero, vlan-filtered, protocol-mismatch.", "reason"),
	}
}

func (m meshDescs) describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		m.dbNodes, m.graphNodes, m.graphLinks, m.addresses, m.synced, m.spfRuns, m.computes, m.spfSeconds, m.spfLast,
		m.lanForwarding, m.lanNodes,
		m.floods, m.summaries, m.requests, m.expired, m.controlDrops, m.frames, m.frameDrops,
	} {
		ch <- d
	}
}

func (m meshDescs) collect(e emitter, src *control.MeshSource) {
	s, p := src.View.Stats, src.Port
	e.gauge(m.dbNodes, float64(len(src.View.Nodes)))
	e.gauge(m.graphNodes, float64(s.Nodes))
	e.gauge(m.graphLinks, float64(s.Edges))
	e.gauge(m.addresses, float64(p.Addresses))
	e.gauge(m.synced, boolValue(src.View.Synced))
	e.counter(m.spfRuns, s.SPFRuns)
	e.counter(m.computes, s.Computes)
	if src.SPFTimed {
		e.ch <- prometheus.MustNewConstMetric(m.spfSeconds, prometheus.CounterValue, src.SPFTime.Seconds())
		e.gauge(m.spfLast, s.LastSPFTime.Seconds())
	}
	if src.LAN != nil {
		e.gauge(m.lanForwarding, boolValue(src.LAN.Forwarding))
		e.gauge(m.lanNodes, float64(len(src.LAN.Nodes)))
	}
	e.counter(m.floods, s.RecordsIn, "in")
	e.counter(m.floods, s.RecordsOut, "out")
	e.counter(m.summaries, s.SummariesIn, "in")
	e.counter(m.summaries, s.SummariesOut, "out")
	e.counter(m.requests, s.RequestsIn, "in")
	e.counter(m.requests, s.RequestsOut, "out")
	e.counter(m.expired, s.Expired)
	for _, d := range control.MeshControlDropCounts(s) {
		e.counter(m.controlDrops, d.N, d.Reason)
	}
	e.counter(m.frames, p.Sent, "sent")
	e.counter(m.frames, p.Transit, "transit")
	for _, d := range control.MeshFrameDropCounts(p) {
		e.counter(m.frameDrops, d.N, d.Reason)
	}
}
