package lab

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"time"
)

// Failover measurements: a ping -D stream between two VMs runs across the
// failure of a site; the replies' timestamps (the kernel's clock, shared by
// every namespace) say when traffic stopped and when it came back.

// An Outage is what a ping stream across a failure shows.
type Outage struct {
	// Resumed is the time from the failure to the reply that ends the
	// longest gap after it (as LongestGap counts gaps): when traffic
	// flowed again.
	Resumed time.Duration
	// LongestGap is the longest time between two consecutive replies
	// that the network answers for (gapBetween: not the time a starved
	// pinger did not send).
	LongestGap time.Duration
	// Replies counts every reply; After those after the stream resumed.
	Replies, After int
}

// pingReply matches a reply line of ping -D: "[1700000000.123456] 64 bytes from …".
var pingReply = regexp.MustCompile(`(?m)^\[(\d+\.\d+)\] \d+ bytes from `)

// MeasureOutage reads the output of a ping -D stream that ran across a
// failure at failed and ended at end (its -w deadline). The stream must have
// resumed: replies after the failure, none of them more than a second apart
// after the longest gap, the last one within a second of end, and at least
// half as many per second as before the failure.
func MeasureOutage(out string, failed, end time.Time) (Outage, error) {
	rs := parseReplies(out)
	ts := make([]time.Time, len(rs))
	for i, r := range rs {
		ts[i] = r.at
	}
	var o Outage
	o.Replies = len(ts)
	before := 0
	resumed := -1 // index of the reply that ends the longest gap after the failure
	var longestAfter time.Duration
	for i, t := range ts {
		if !t.After(failed) {
			before++
		}
		if i == 0 {
			continue
		}
		gap := gapBetween(rs[i-1], rs[i])
		o.LongestGap = max(o.LongestGap, gap)
		if t.After(failed) && gap > longestAfter {
			longestAfter, resumed = gap, i
		}
	}
	if before < 10 {
		return o, fmt.Errorf("%d replies before the failure: the stream was not running", before)
	}
	if resumed < 0 {
		return o, errors.New("no reply after the failure: the stream never resumed")
	}
	o.Resumed = ts[resumed].Sub(failed)
	o.After = len(ts) - resumed
	for i := resumed + 1; i < len(ts); i++ {
		if gap := gapBetween(rs[i-1], rs[i]); gap > time.Second {
			return o, fmt.Errorf("the stream resumed %v after the failure, then stopped again for %v", o.Resumed, gap)
		}
	}
	last := ts[len(ts)-1]
	if end.Sub(last) > time.Second {
		return o, fmt.Errorf("the stream resumed %v after the failure, but its last reply came %v before its end", o.Resumed, end.Sub(last))
	}
	rateBefore := float64(before-1) / ts[before-1].Sub(ts[0]).Seconds()
	if span := last.Sub(ts[resumed]).Seconds(); span > 1 {
		if rate := float64(o.After-1) / span; rate < rateBefore/2 {
			return o, fmt.Errorf("the stream resumed %v after the failure at %.0f replies/s, under half its %.0f before", o.Resumed, rate, rateBefore)
		}
	}
	return o, nil
}

// KillSite kills site's l2wg with SIGKILL, as a crash would, and returns
// when it did (just before the signal) once the process is gone. The lab's
// start action starts it again.
func (l *Lab) KillSite(site string) (time.Time, error) {
	l.mu.Lock()
	p := l.procs["l2wg "+site]
	l.mu.Unlock()
	if p == nil {
		return time.Time{}, fmt.Errorf("kill %s: its l2wg was not started by this process", site)
	}
	at := time.Now()
	if err := p.Signal(os.Kill); err != nil {
		return time.Time{}, fmt.Errorf("kill %s: %w", site, err)
	}
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		return time.Time{}, fmt.Errorf("kill %s: %s still running 10s after SIGKILL", site, p)
	}
	return at, nil
}
