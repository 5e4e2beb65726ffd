package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/netns"
)

// pingInterval is the gap between echo requests of a latency run (root may
// go below ping's 200 ms floor).
const pingInterval = 10 * time.Millisecond

// rtt sums up one ping run.
type rtt struct {
	Mean, P99     float64 // milliseconds, over the replies received
	P10, P50, P90 float64
	Sent          int
	Received      int
}

// parsePingTimes returns the round trip times, in milliseconds, of the
// replies in ping's output ("64 bytes from 192.0.2.1: icmp_seq=1 ttl=64
// time=0.062 ms"), in order. Lines without a time are skipped.
func parsePingTimes(out []byte) []float64 {
	var times []float64
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Bytes()
		i := bytes.Index(line, []byte(" time="))
		if i < 0 || !bytes.Contains(line, []byte("bytes from")) {
			continue
		}
		f := bytes.Fields(line[i+len(" time="):])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(string(f[0]), 64)
		if err != nil || v < 0 {
			continue
		}
		if len(f) > 1 && string(f[1]) == "s" { // ping switches units for very slow replies
			v *= 1000
		}
		times = append(times, v)
	}
	return times
}

// summarizeRTT turns the reply times of count requests into an rtt.
func summarizeRTT(times []float64, count int) rtt {
	nan := math.NaN()
	r := rtt{Mean: nan, P99: nan, P10: nan, P50: nan, P90: nan, Sent: count, Received: len(times)}
	if len(times) > 0 {
		r.Mean = mean(times)
		r.P99 = percentile(times, 99)
		r.P10, r.P50, r.P90 = percentile(times, 10), percentile(times, 50), percentile(times, 90)
	}
	return r
}

// runPing sends count echo requests from namespace from to addr, one every
// interval, and sums up the replies. Losing some is not an error (under
// load it is part of the result); losing all of them is.
func runPing(ctx context.Context, lab *netns.Lab, from, addr string, count int, interval time.Duration) (rtt, error) {
	run := time.Duration(count)*interval + 5*time.Second
	pctx, cancel := context.WithTimeout(ctx, run+10*time.Second)
	defer cancel()
	out, _ := lab.ExecContext(pctx, from, "ping", "-n",
		"-i", strconv.FormatFloat(interval.Seconds(), 'f', -1, 64),
		"-c", strconv.Itoa(count), "-w", strconv.Itoa(int(run.Seconds())), addr)
	// ping exits 1 when some replies are missing: judge by what came back.
	r := summarizeRTT(parsePingTimes(out), count)
	if r.Received == 0 {
		return r, fmt.Errorf("ping %s from %s: no reply to %d requests: %s", addr, from, count, pingDiag(out))
	}
	return r, nil
}

// pingDF sends one echo request of size payload bytes with don't-fragment set
// and reports whether the reply came back within a second.
func pingDF(ctx context.Context, lab *netns.Lab, from, addr string, size int) error {
	out, err := lab.ExecContext(ctx, from, "ping", "-n", "-c", "1", "-W", "1", "-M", "do", "-s", strconv.Itoa(size), addr)
	if err != nil {
		return fmt.Errorf("ping -M do -s %d %s from %s: %s", size, addr, from, pingDiag(out))
	}
	return nil
}

// pingDiag picks the line of ping's output that tells why replies were
// missing: an error ("local error: message too long, mtu=1450") or an ICMP
// answer ("From 192.168.77.11 icmp_seq=1 Frag needed and DF set (mtu =
// 1450)"), else the statistics line, else the last line.
func pingDiag(out []byte) string {
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	for _, l := range lines {
		if bytes.HasPrefix(l, []byte("From ")) || bytes.Contains(l, []byte("error")) {
			return string(bytes.TrimSpace(l))
		}
	}
	for _, l := range lines {
		if bytes.Contains(l, []byte("transmitted")) {
			return string(bytes.TrimSpace(l))
		}
	}
	return string(bytes.TrimSpace(lines[len(lines)-1]))
}
