package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// downLines are the log lines of a peer that went down: the liveness rule's
// verdict, and the port's or the adjacency's change.
var downLines = []string{"liveness: nothing from the peer", "peer port down", "mesh adjacency down"}

// countLines counts the lines of log that contain any of subs.
func countLines(log string, subs ...string) int {
	n := 0
	for _, line := range strings.Split(log, "\n") {
		for _, s := range subs {
			if strings.Contains(line, s) {
				n++
				break
			}
		}
	}
	return n
}

// TestE2ELivenessUnderTCP: TCP streams in both directions fill the tunnel
// between two sites for 10 s; the peers stay up on both sides (no down in
// either log), with the spanning tree and with the mesh. Under load the
// echoes of the probes queue behind the data, but every packet from the
// peer counts as life (cmd/l2wg/internal/node/liveness.go). The streams
// must have moved data, or the test proves nothing.
func TestE2ELivenessUnderTCP(t *testing.T) {
	needRoot(t)
	needTools(t, "iperf3")
	for _, mesh := range []string{"rstp", "shortest-path"} {
		t.Run(mesh, func(t *testing.T) {
			tp := newTwoHypervisorsWith(t, true, nil, nil, mesh)
			tp.waitPing("vm11", "vm21", overlayUpTimeout)
			before := map[string]int{}
			for _, hv := range []string{"hv1", "hv2"} {
				before[hv] = countLines(tp.hvs[hv].Proc.Log(), downLines...)
			}
			srv, err := tp.lab.Start("vm21", "iperf3", "-s")
			tp.must(err)
			defer srv.Stop()
			time.Sleep(300 * time.Millisecond) // let the server listen; a refused client is retried below
			var res struct {
				Error string `json:"error"`
				End   struct {
					SumReceived  struct{ Bytes float64 } `json:"sum_received"`
					SumSentBidir struct{ Bytes float64 } `json:"sum_sent_bidir_reverse"`
				} `json:"end"`
			}
			var out []byte
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for try := 0; try < 10; try++ { // the server may not listen yet
				out, err = tp.lab.ExecContext(ctx, "vm11", "iperf3", "-c", tp.vms["vm21"].IP, "-t", "10", "-P", "2", "--bidir", "-J")
				res.Error = ""
				if jerr := json.Unmarshal(out, &res); jerr != nil && err == nil {
					err = jerr
				}
				if err == nil && res.Error == "" {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if err != nil || res.Error != "" {
				t.Fatalf("iperf3 vm11 -> vm21: %v %s\n%s", err, res.Error, tail(string(out), 20))
			}
			mbit := func(b float64) float64 { return b * 8 / 10 / 1e6 }
			t.Logf("%s: 10 s of TCP both ways: %.0f Mbit/s out, %.0f Mbit/s back", mesh, mbit(res.End.SumReceived.Bytes), mbit(res.End.SumSentBidir.Bytes))
			if res.End.SumReceived.Bytes < 10e6 || res.End.SumSentBidir.Bytes < 10e6 {
				t.Fatalf("the streams moved %.0f and %.0f bytes: too little to load the tunnel", res.End.SumReceived.Bytes, res.End.SumSentBidir.Bytes)
			}
			for _, hv := range []string{"hv1", "hv2"} {
				log := tp.hvs[hv].Proc.Log()
				if n := countLines(log, downLines...) - before[hv]; n != 0 {
					t.Errorf("%s: %d down lines while TCP flowed, want none:\n%s", hv, n, tail(log, 30))
				}
				if n := countLines(log, "heard again after a long silence"); n > 0 {
					t.Logf("%s: %d near misses (a silence over 2/3 of the limit)", hv, n)
				}
			}
		})
	}
}
