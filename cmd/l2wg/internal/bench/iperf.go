package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/netns"
)

// iperfPort is the port of the iperf3 server in the lab (iperf3's default).
const iperfPort = 5201

// iperfResult is what one iperf3 test delivered, seen by the receiver.
type iperfResult struct {
	Mbps        float64 // receiver goodput, Mbit/s
	Bytes       int64   // bytes the receiver got
	LostPercent float64 // UDP only
}

// iperfJSON is the part of iperf3 -J's output the benchmark reads.
type iperfJSON struct {
	Error string `json:"error"`
	End   struct {
		SumReceived *iperfSum `json:"sum_received"`
		Sum         *iperfSum `json:"sum"`
	} `json:"end"`
}

type iperfSum struct {
	Bytes         int64   `json:"bytes"`
	BitsPerSecond float64 `json:"bits_per_second"`
	LostPercent   float64 `json:"lost_percent"`
	Packets       int64   `json:"packets"`
}

// parseIperf reads the client's iperf3 -J output. Throughput is the
// receiver's (end.sum_received), for TCP and UDP alike; iperf3 3.12 and later
// report it for both.
//
// out may hold iperf3's warnings on stderr too ("warning: UDP block size
// 1472 exceeds TCP MSS 1448"): the JSON document is the first line that
// starts with '{', up to its closing brace.
func parseIperf(out []byte) (iperfResult, error) {
	start := 0
	if !bytes.HasPrefix(out, []byte("{")) {
		i := bytes.Index(out, []byte("\n{"))
		if i < 0 {
			return iperfResult{}, fmt.Errorf("parse iperf3 json: no JSON in %q", firstLine(string(out)))
		}
		start = i + 1
	}
	var j iperfJSON
	if err := json.NewDecoder(bytes.NewReader(out[start:])).Decode(&j); err != nil {
		return iperfResult{}, fmt.Errorf("parse iperf3 json: %w", err)
	}
	if j.Error != "" {
		return iperfResult{}, fmt.Errorf("iperf3: %s", j.Error)
	}
	r := j.End.SumReceived
	if r == nil {
		return iperfResult{}, fmt.Errorf("parse iperf3 json: no end.sum_received")
	}
	if r.Bytes == 0 {
		return iperfResult{}, fmt.Errorf("iperf3: receiver got nothing")
	}
	return iperfResult{Mbps: r.BitsPerSecond / 1e6, Bytes: r.Bytes, LostPercent: r.LostPercent}, nil
}

// iperfServer is an iperf3 server in one lab namespace, restarted when a
// test went wrong (a server left waiting for a dead client refuses the next).
type iperfServer struct {
	lab  *netns.Lab
	ns   string
	proc *netns.Proc
}

// start starts the server and waits until it listens.
func (s *iperfServer) start(ctx context.Context) error {
	p, err := s.lab.Start(s.ns, "iperf3", "-s", "-p", strconv.Itoa(iperfPort))
	if err != nil {
		return err
	}
	s.proc = p
	return waitFor(ctx, 5*time.Second, fmt.Sprintf("iperf3 server in %s to listen", s.ns), func() bool {
		out, err := s.lab.Exec(s.ns, "ss", "-Hltn", fmt.Sprintf("sport = :%d", iperfPort))
		return err == nil && len(out) > 0
	})
}

// restart replaces the server by a fresh one.
func (s *iperfServer) restart(ctx context.Context) error {
	if s.proc != nil {
		s.proc.Stop()
	}
	return s.start(ctx)
}

// iperfTest is one iperf3 client run.
type iperfTest struct {
	Seconds int
	Streams int    // TCP: -P; 0 or 1 means one
	UDPLen  int    // > 0: UDP with datagrams of this length
	UDPRate string // UDP: -b, such as "2G"
}

// args returns iperf3's client arguments for a test against addr.
func (t iperfTest) args(addr string) []string {
	a := []string{"iperf3", "-c", addr, "-p", strconv.Itoa(iperfPort), "-t", strconv.Itoa(t.Seconds), "-J"}
	if t.Streams > 1 {
		a = append(a, "-P", strconv.Itoa(t.Streams))
	}
	if t.UDPLen > 0 {
		a = append(a, "-u", "-l", strconv.Itoa(t.UDPLen), "-b", t.UDPRate)
	}
	return a
}

// runIperf runs test from namespace client to the server at addr. On a
// failure it restarts srv, so the next test finds a server that listens.
func runIperf(ctx context.Context, lab *netns.Lab, srv *iperfServer, client, addr string, test iperfTest) (iperfResult, error) {
	tctx, cancel := context.WithTimeout(ctx, time.Duration(test.Seconds)*time.Second+30*time.Second)
	defer cancel()
	out, err := lab.ExecContext(tctx, client, test.args(addr)...)
	res, perr := parseIperf(out)
	if perr == nil {
		return res, nil
	}
	if err == nil || bytes.Contains(out, []byte(`"error"`)) { // iperf3's own message says more than its exit status
		err = perr
	}
	if ctx.Err() == nil {
		if rerr := srv.restart(ctx); rerr != nil {
			err = fmt.Errorf("%w; restart server: %v", err, rerr)
		}
	}
	return iperfResult{}, err
}
