package metrics

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/bridge/mesh"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/control"
	"github.com/l2wg/l2wg/frag"
	"github.com/l2wg/l2wg/stp"
	"github.com/l2wg/l2wg/tunnel"
)

// fakeSnapshot is a node with a TAP, two peers (hv2 live, hv3 never seen)
// and a spanning tree; every call adds rxStep frames to hv2's port.
type fakeSnapshot struct {
	now    time.Time
	rxStep uint64
	calls  atomic.Uint64
}

func (f *fakeSnapshot) snapshot() Snapshot {
	k := f.calls.Add(1)
	var tapDrops bridge.Drops
	tapDrops[bridge.DropRunt] = 3
	tapDrops[bridge.DropFilteredSource] = 7
	tapDrops[bridge.DropVLANFiltered] = 5
	return Snapshot{
		TAP: "l2wg0",
		Ports: []bridge.PortInfo{
			{ID: 1, Name: "l2wg0", State: stp.Forwarding, Counters: bridge.Counters{RxFrames: 10, RxBytes: 1000, TxFrames: 20, TxBytes: 2000, Drops: tapDrops}},
			{ID: 2, Name: "hv2", State: stp.Forwarding, Counters: bridge.Counters{RxFrames: 100 + k*f.rxStep, RxBytes: 1e5, TxFrames: 5, TxBytes: 500, TxVLANFiltered: 8}},
			{ID: 3, Name: "hv3", State: stp.Blocking},
		},
		Switch:     bridge.Stats{FDBEntries: 4, FDBLimit: 32768, StationMoves: 1, Drops: tapDrops},
		FDBByVLAN:  map[uint16]int{0: 1, 100: 2, 4094: 1},
		Reassembly: frag.Stats{Whole: 50, Reassembled: 6, Fragments: 12, Timeouts: 2, Evicted: 1, InProgress: 1, BytesHeld: 3000},
		Tunnel:     tunnel.Drops{Malformed: 4, UnknownPeer: 2},
		STP: &control.STP{IsRoot: true, TopologyChanges: 3, BPDUsIgnored: 6, Ports: []control.STPPort{
			{Name: "l2wg0", Role: "designated", BPDUsOut: 40},
			{Name: "hv2", Role: "designated", BPDUsIn: 2, BPDUsOut: 41},
			{Name: "hv3", Role: "alternate", BPDUsIn: 39},
		}},
		Peers: []tunnel.PeerStatus{
			{Name: "hv2", PublicKey: "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=", LastHandshake: f.now.Add(-5 * time.Second), RxBytes: 777, TxBytes: 888},
			{Name: "hv3", PublicKey: "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0="},
		},
		Mesh: &control.MeshSource{
			View: mesh.View{Synced: true, Nodes: make([]mesh.NodeView, 5),
				Stats: mesh.Stats{Nodes: 4, Edges: 6, SPFRuns: 30, Computes: 10, RecordsIn: 40 + k, RecordsOut: 17,
					SummariesIn: 8, SummariesOut: 9, RequestsIn: 1, RequestsOut: 2, Expired: 1, AbsurdSeq: 3, Oversized: 2,
					LastSPFTime: 250 * time.Microsecond}},
			Port:    bridge.MeshStats{Sent: 500, Transit: 70, HopLimit: 4, ReversePath: 6, Addresses: 3},
			SPFTime: 1500 * time.Microsecond, SPFTimed: true,
			LAN: &control.MeshLAN{Forwarding: true, Forwarder: 1, Nodes: []mesh.NodeID{1, 2}},
		},
		Now: f.now,
	}
}

func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	fams, err := Parse(rec.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

func TestMetricsCollector(t *testing.T) {
	f := &fakeSnapshot{now: time.Unix(1_700_000_000, 0), rxStep: 10}
	h := NewHandler(NewCollector(testVersion, f.snapshot), slog.New(slog.DiscardHandler))
	fams := scrape(t, h)

	want := []struct {
		name   string
		labels []string
		value  float64
	}{
		{"l2wg_info", []string{"tap", "l2wg0", "version", testVersion}, 1},
		{"l2wg_port_rx_frames_total", []string{"port", "hv2"}, 110},
		{"l2wg_port_rx_bytes_total", []string{"port", "l2wg0"}, 1000},
		{"l2wg_port_tx_frames_total", []string{"port", "l2wg0"}, 20},
		{"l2wg_port_tx_bytes_total", []string{"port", "hv2"}, 500},
		{"l2wg_port_drops_total", []string{"port", "l2wg0", "reason", "runt"}, 3},
		{"l2wg_port_drops_total", []string{"port", "l2wg0", "reason", "filtered-source"}, 7},
		{"l2wg_port_drops_total", []string{"port", "hv2", "reason", "runt"}, 0},
		{"l2wg_port_state", []string{"port", "hv2", "state", "forwarding"}, 1},
		{"l2wg_tunnel_drops_total", []string{"reason", "malformed"}, 4},
		{"l2wg_tunnel_drops_total", []string{"reason", "unknown-peer"}, 2},
		{"l2wg_stp_bpdus_dropped_total", []string{"reason", "ignored"}, 6},
		{"l2wg_port_state", []string{"port", "hv3", "state", "forwarding"}, 0},
		{"l2wg_port_state", []string{"port", "hv3", "state", "blocking"}, 1},
		{"l2wg_switch_drops_total", []string{"reason", "filtered-source"}, 7},
		{"l2wg_fdb_entries", nil, 4},
		{"l2wg_fdb_vlan_entries", []string{"vid", "0"}, 1},
		{"l2wg_fdb_vlan_entries", []string{"vid", "100"}, 2},
		{"l2wg_fdb_vlan_entries", []string{"vid", "4094"}, 1},
		{"l2wg_port_tx_vlan_filtered_total", []string{"port", "hv2"}, 8},
		{"l2wg_port_drops_total", []string{"port", "l2wg0", "reason", "vlan-filtered"}, 5},
		{"l2wg_fdb_limit", nil, 32768},
		{"l2wg_fdb_station_moves_total", nil, 1},
		{"l2wg_stp_root_bridge", nil, 1},
		{"l2wg_stp_topology_changes_total", nil, 3},
		{"l2wg_stp_port_role", []string{"port", "hv3", "role", "alternate"}, 1},
		{"l2wg_stp_port_bpdus_received_total", []string{"port", "hv3"}, 39},
		{"l2wg_stp_port_bpdus_sent_total", []string{"port", "hv2"}, 41},
		{"l2wg_stp_port_root_inconsistent", []string{"port", "l2wg0"}, 0},
		{"l2wg_reassembly_in_progress", nil, 1},
		{"l2wg_reassembly_bytes_held", nil, 3000},
		{"l2wg_reassembly_timeouts_total", nil, 2},
		{"l2wg_reassembly_drops_total", []string{"reason", "evicted"}, 1},
		{"l2wg_reassembly_frames_total", []string{"how", "reassembled"}, 6},
		{"l2wg_reassembly_fragments_total", nil, 12},
		{"l2wg_peer_info", []string{"peer", "hv2", "public_key", "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="}, 1},
		{"l2wg_peer_up", []string{"peer", "hv2"}, 1},
		{"l2wg_peer_up", []string{"peer", "hv3"}, 0},
		{"l2wg_peer_handshake_age_seconds", []string{"peer", "hv2"}, 5},
		{"l2wg_peer_last_handshake_timestamp_seconds", []string{"peer", "hv2"}, 1_700_000_000 - 5},
		{"l2wg_peer_last_handshake_timestamp_seconds", []string{"peer", "hv3"}, 0},
		{"l2wg_peer_rx_bytes_total", []string{"peer", "hv2"}, 777},
		{"l2wg_peer_tx_bytes_total", []string{"peer", "hv2"}, 888},
		{"l2wg_mesh_database_nodes", nil, 5},
		{"l2wg_mesh_graph_nodes", nil, 4},
		{"l2wg_mesh_graph_links", nil, 6},
		{"l2wg_mesh_synced", nil, 1},
		{"l2wg_mesh_addresses", nil, 3},
		{"l2wg_mesh_spf_runs_total", nil, 30},
		{"l2wg_mesh_computations_total", nil, 10},
		{"l2wg_mesh_spf_seconds_total", nil, 0.0015},
		{"l2wg_mesh_spf_last_seconds", nil, 0.00025},
		{"l2wg_mesh_lan_forwarding", nil, 1},
		{"l2wg_mesh_lan_nodes", nil, 2},
		{"l2wg_mesh_floods_total", []string{"direction", "in"}, 41},
		{"l2wg_mesh_floods_total", []string{"direction", "out"}, 17},
		{"l2wg_mesh_summaries_total", []string{"direction", "out"}, 9},
		{"l2wg_mesh_requests_total", []string{"direction", "in"}, 1},
		{"l2wg_mesh_records_expired_total", nil, 1},
		{"l2wg_mesh_control_drops_total", []string{"reason", "absurd-seq"}, 3},
		{"l2wg_mesh_control_drops_total", []string{"reason", "oversized"}, 2},
		{"l2wg_mesh_control_drops_total", []string{"reason", "malformed"}, 0},
		{"l2wg_mesh_frames_total", []string{"how", "transit"}, 70},
		{"l2wg_mesh_frame_drops_total", []string{"reason", "hop-limit"}, 4},
		{"l2wg_mesh_frame_drops_total", []string{"reason", "reverse-path"}, 6},
		{"l2wg_mesh_frame_drops_total", []string{"reason", "no-table"}, 0},
	}
	for _, w := range want {
		got, ok := Value(fams, w.name, w.labels...)
		if !ok {
			t.Errorf("%s%v: missing", w.name, w.labels)
			continue
		}
		if got != w.value {
			t.Errorf("%s%v = %v; want %v", w.name, w.labels, got, w.value)
		}
	}
	if _, ok := Value(fams, "l2wg_peer_handshake_age_seconds", "peer", "hv3"); ok {
		t.Error("l2wg_peer_handshake_age_seconds{peer=hv3} present for a peer that never completed a handshake")
	}
	for _, name := range []string{"go_goroutines", "process_open_fds"} {
		if fams[name] == nil {
			t.Errorf("%s missing: the Go and process collectors should be registered", name)
		}
	}
	for name, fam := range fams {
		if strings.HasPrefix(name, "l2wg_") && strings.HasSuffix(name, "_total") && fam.GetType() != dto.MetricType_COUNTER {
			t.Errorf("%s is a %v; a _total must be a counter", name, fam.GetType())
		}
	}

	// The collector reads the snapshot at each scrape: the counter moves.
	again := scrape(t, h)
	if v, _ := Value(again, "l2wg_port_rx_frames_total", "port", "hv2"); v != 120 {
		t.Errorf("second scrape: l2wg_port_rx_frames_total{port=hv2} = %v; want 120", v)
	}
}

// A node that runs the spanning tree has no l2wg_mesh_* series.
func TestMetricsNoMesh(t *testing.T) {
	f := &fakeSnapshot{now: time.Now()}
	snap := func() Snapshot { s := f.snapshot(); s.Mesh = nil; return s }
	fams := scrape(t, NewHandler(NewCollector(testVersion, snap), slog.New(slog.DiscardHandler)))
	for name := range fams {
		if strings.HasPrefix(name, "l2wg_mesh_") {
			t.Errorf("%s present without a mesh", name)
		}
	}
	if fams["l2wg_stp_root_bridge"] == nil {
		t.Error("the spanning tree's metrics are missing")
	}
}

// A peer named like the TAP must not make two series with the same labels
// (the registry would fail the whole scrape).
func TestMetricsDuplicatePortNames(t *testing.T) {
	snap := func() Snapshot {
		return Snapshot{TAP: "l2wg0", Ports: []bridge.PortInfo{{ID: 1, Name: "l2wg0"}, {ID: 2, Name: "l2wg0", Counters: bridge.Counters{RxFrames: 9}}}}
	}
	fams := scrape(t, NewHandler(NewCollector(testVersion, snap), slog.New(slog.DiscardHandler)))
	if v, ok := Value(fams, "l2wg_port_rx_frames_total", "port", "l2wg0#2"); !ok || v != 9 {
		t.Fatalf("second port named l2wg0: %v, %v; want it as l2wg0#2 = 9", v, ok)
	}
}

// Every metric the collector describes has help text and is collected by a
// full snapshot, so that a dashboard built on the README finds all of them.
func TestMetricsDescribedAreCollected(t *testing.T) {
	f := &fakeSnapshot{now: time.Now()}
	c := NewCollector(testVersion, f.snapshot)
	ch := make(chan *prometheus.Desc, 100)
	c.Describe(ch)
	close(ch)
	fams := scrape(t, NewHandler(c, slog.New(slog.DiscardHandler)))
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	var missing []string
	for d := range ch {
		m := fqName.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read the name of %v", d)
		}
		if fams[m[1]] == nil {
			missing = append(missing, m[1])
		} else if fams[m[1]].GetHelp() == "" {
			t.Errorf("%s has no help", m[1])
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("described but not collected: %v", missing)
	}
}

const testVersion = "v1.2.3-test"
