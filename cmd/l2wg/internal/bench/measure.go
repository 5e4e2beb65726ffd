package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/netns"
)

// params are the test parameters of a run.
type params struct {
	Seconds     int    // length of each iperf3 test
	UDPRate     string // iperf3 -b for the UDP tests
	IdlePings   int    // echo requests of the idle latency run
	IdleSeconds int    // how long the node with idlePeers peers idles
	// IdleInterval is the gap between the idle run's echo requests.
	IdleInterval time.Duration
	RTTOnly      bool // only the idle latency run
}

// The datagram lengths (iperf3 -l) of the frame-rate tests: 64 and 512
// bytes of UDP payload, frames of 106 and 554 bytes.
const (
	smallUDP  = 64
	mediumUDP = 512
)

// An idleMeasurer can also start one more node of itself with idlePeers
// configured peers that never answer, and report its peak RSS after it has
// idled for a while: the memory a hypervisor gives a mesh that is quiet.
type idleMeasurer interface {
	idleRSS(ctx context.Context, lab *netns.Lab, dir string, seconds int) (int64, error)
}

// idlePeers is how many peers the idle node has.
const idlePeers = 50

// readyTimeout bounds the wait for a contestant's full-size DF ping to pass
// (l2wg's spanning tree alone takes 8 s to let frames through).
const readyTimeout = 40 * time.Second

// measure runs every test against contestant c on a fresh lab whose files
// live in dir, and removes the lab again.
func measure(ctx context.Context, log *slog.Logger, p params, c contestant, dir string) *sample {
	s := newSample()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		s.Err = err
		return s
	}
	lab, err := netns.New(labBase, filepath.Join(dir, "logs"))
	if err != nil {
		s.Err = err
		return s
	}
	defer func() {
		if err := lab.Close(); err != nil {
			log.Warn("remove lab", "err", err)
		}
	}()
	if err := buildTopology(lab); err != nil {
		s.Err = fmt.Errorf("build topology: %w", err)
		return s
	}
	started := time.Now()
	procs, err := c.Start(ctx, lab, dir)
	if err != nil {
		s.Err = fmt.Errorf("start: %w", err)
		return s
	}
	pids := make([]int, len(procs))
	for i, p := range procs {
		pids[i] = p.PID
	}
	path := c.Path()
	if err := waitReady(ctx, lab, path, procs); err != nil {
		s.Err = err
		return s
	}
	// From the first daemon's start, so that what a contestant does before
	// (keys, configs) does not count; the whole Start if that is unknown.
	if since, err := sinceFirstStart(pids); err == nil {
		s.Values[mFirstFrame] = since
	} else {
		s.Values[mFirstFrame] = time.Since(started).Seconds()
		s.problem("first frame: daemon start time", err)
	}
	srv := &iperfServer{lab: lab, ns: path.Server}
	if err := srv.start(ctx); err != nil {
		s.Err = err
		return s
	}

	if r, err := runPing(ctx, lab, path.Client, path.Addr, p.IdlePings, cmp.Or(p.IdleInterval, pingInterval)); err != nil {
		s.problem("ping idle", err)
	} else {
		s.Values[mRTTIdleMean], s.Values[mRTTIdleP99] = r.Mean, r.P99
		s.Values[mRTTIdleP10], s.Values[mRTTIdleP50], s.Values[mRTTIdleP90] = r.P10, r.P50, r.P90
	}
	if p.RTTOnly {
		return s
	}
	measureTCP1(ctx, lab, p, srv, path, pids, s)
	measureTCP4(ctx, lab, p, srv, path, s)
	measureRSS(pids, mRSSTCP, s)

	udp := iperfTest{Seconds: p.Seconds, UDPLen: path.UDPLen, UDPRate: p.UDPRate}
	if r, err := runIperf(ctx, lab, srv, path.Client, path.Addr, udp); err != nil {
		s.problem("iperf3 UDP", err)
	} else {
		s.Values[mUDP], s.Values[mUDPLoss] = r.Mbps, r.LostPercent
	}
	for _, t := range []struct {
		len int
		m   metric
	}{{smallUDP, mPPS64}, {mediumUDP, mPPS512}} {
		udp := iperfTest{Seconds: p.Seconds, UDPLen: t.len, UDPRate: p.UDPRate}
		if r, err := runIperf(ctx, lab, srv, path.Client, path.Addr, udp); err != nil {
			s.problem(fmt.Sprintf("iperf3 UDP %d bytes", t.len), err)
		} else {
			s.Values[t.m] = r.Mbps * 1e6 / 8 / float64(t.len) / 1e3
		}
	}

	measureRSS(pids, mRSSAll, s)
	if im, ok := c.(idleMeasurer); ok {
		if rss, err := im.idleRSS(ctx, lab, dir, p.IdleSeconds); err != nil {
			s.problem(fmt.Sprintf("idle with %d peers", idlePeers), err)
		} else {
			s.Values[mRSSIdle50] = float64(rss) / 1e6
		}
	}
	for _, p := range procs {
		if err := exited(p); err != nil {
			s.problem("during the tests", err)
		}
	}
	return s
}

// waitReady waits until a DF ping of the path's full size passes. On a
// timeout it tells whether a small ping passes, which tells an MTU problem
// from a dead tunnel.
func waitReady(ctx context.Context, lab *netns.Lab, path trafficPath, procs []*netns.Proc) error {
	var last error
	err := waitFor(ctx, readyTimeout, "a full-size DF ping", func() bool {
		for _, p := range procs {
			if exited(p) != nil {
				return true // reported below
			}
		}
		last = pingDF(ctx, lab, path.Client, path.Addr, path.DFSize)
		return last == nil
	})
	for _, p := range procs {
		if xerr := exited(p); xerr != nil {
			return xerr
		}
	}
	if err == nil || ctx.Err() != nil {
		return err
	}
	small := "a small ping passes"
	if serr := pingDF(ctx, lab, path.Client, path.Addr, 56); serr != nil {
		small = "a small ping fails too"
	}
	return fmt.Errorf("check failed: %v (%s)", last, small)
}

// measureTCP1 runs the one-stream TCP test and the CPU time the VPN spent
// on it.
func measureTCP1(ctx context.Context, lab *netns.Lab, p params, srv *iperfServer, path trafficPath, pids []int, s *sample) {
	before, err := cpuSeconds(pids)
	if err != nil {
		s.problem("cpu", err)
	}
	r, err := runIperf(ctx, lab, srv, path.Client, path.Addr, iperfTest{Seconds: p.Seconds, Streams: 1})
	if err != nil {
		s.problem("iperf3 TCP 1 stream", err)
		return
	}
	s.Values[mTCP1] = r.Mbps
	after, err := cpuSeconds(pids)
	if err != nil {
		s.problem("cpu", err)
		return
	}
	s.Values[mCPUPerGB] = (after - before) / (float64(r.Bytes) / 1e9)
}

// measureTCP4 runs the four-stream TCP test with a latency run in its middle.
func measureTCP4(ctx context.Context, lab *netns.Lab, p params, srv *iperfServer, path trafficPath, s *sample) {
	type pingResult struct {
		r   rtt
		err error
	}
	pingc := make(chan pingResult, 1)
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Ping from 1 s after the start until 1 s before the end.
	count := max(50, (p.Seconds-2)*int(time.Second/pingInterval))
	go func() {
		select {
		case <-pctx.Done():
			pingc <- pingResult{err: pctx.Err()}
			return
		case <-time.After(time.Second):
		}
		r, err := runPing(pctx, lab, path.Client, path.Addr, count, pingInterval)
		pingc <- pingResult{r, err}
	}()
	r, err := runIperf(ctx, lab, srv, path.Client, path.Addr, iperfTest{Seconds: p.Seconds, Streams: 4})
	if err != nil {
		s.problem("iperf3 TCP 4 streams", err)
		cancel()
	} else {
		s.Values[mTCP4] = r.Mbps
	}
	pr := <-pingc
	if err != nil {
		return // the latency of a failed load means nothing
	}
	if pr.err != nil {
		s.problem("ping under load", pr.err)
		return
	}
	s.Values[mRTTLoadMean], s.Values[mRTTLoadP99] = pr.r.Mean, pr.r.P99
}

// measureRSS records the peak RSS of the VPN processes so far as metric m.
func measureRSS(pids []int, m metric, s *sample) {
	rss, err := peakRSS(pids)
	if err != nil {
		s.problem("peak RSS", err)
		return
	}
	s.Values[m] = float64(rss) / 1e6
}
