package lab

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// pingOutput writes ping -D reply lines every 10 ms from start until end,
// with no reply during the gaps [from, to).
func pingOutput(start, end time.Time, gaps ...[2]time.Time) string {
	var b strings.Builder
	b.WriteString("PING 192.168.77.63 (192.168.77.63) 56(84) bytes of data.\n")
	seq := 1
outer:
	for t := start; t.Before(end); t = t.Add(10 * time.Millisecond) {
		for _, g := range gaps {
			if !t.Before(g[0]) && t.Before(g[1]) {
				seq++
				continue outer
			}
		}
		fmt.Fprintf(&b, "[%d.%06d] 64 bytes from 192.168.77.63: icmp_seq=%d ttl=64 time=0.5 ms\n", t.Unix(), t.Nanosecond()/1000, seq)
		seq++
	}
	b.WriteString("\n--- 192.168.77.63 ping statistics ---\n")
	return b.String()
}

// starvedPingOutput is pingOutput with requests lost in [lostFrom, lostTo)
// and, in [stallFrom, stallTo), none sent (the pinger did not run): no
// sequence number is skipped there.
func starvedPingOutput(start, end, lostFrom, lostTo, stallFrom, stallTo time.Time) string {
	var b strings.Builder
	seq := 1
	for t := start; t.Before(end); t = t.Add(10 * time.Millisecond) {
		switch {
		case !t.Before(stallFrom) && t.Before(stallTo):
			continue
		case !t.Before(lostFrom) && t.Before(lostTo):
			seq++
			continue
		}
		fmt.Fprintf(&b, "[%d.%06d] 64 bytes from 192.168.77.63: icmp_seq=%d ttl=64 time=0.5 ms\n", t.Unix(), t.Nanosecond()/1000, seq)
		seq++
	}
	return b.String()
}

func TestMeasureOutage(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	kill, end := at(2*time.Second), at(6*time.Second)
	for _, tc := range []struct {
		name        string
		out         string
		resumed     time.Duration // 0: an error is expected
		errContains string
	}{
		{
			// Replies in flight at the kill, then 300 ms of silence.
			name:    "resumes",
			out:     pingOutput(t0, end, [2]time.Time{at(2*time.Second + 5*time.Millisecond), at(2*time.Second + 305*time.Millisecond)}),
			resumed: 310 * time.Millisecond, // the first reply on the 10 ms grid after the gap
		},
		{
			// The real gap (300 ms, requests lost), then the pinger
			// starved for 700 ms (it sent nothing: the next reply answers
			// the next request): traffic resumed after the first.
			name:    "pinger starved later",
			out:     starvedPingOutput(t0, end, at(2*time.Second+5*time.Millisecond), at(2*time.Second+305*time.Millisecond), at(3300*time.Millisecond), at(4*time.Second)),
			resumed: 310 * time.Millisecond,
		},
		{
			name:        "never resumes",
			out:         pingOutput(t0, end, [2]time.Time{kill, end}),
			errContains: "never resumed",
		},
		{
			name:        "stops again",
			out:         pingOutput(t0, end, [2]time.Time{kill, at(4 * time.Second)}, [2]time.Time{at(4500 * time.Millisecond), at(5600 * time.Millisecond)}),
			errContains: "stopped again",
		},
		{
			name:        "ends early",
			out:         pingOutput(t0, at(4*time.Second), [2]time.Time{kill, at(3 * time.Second)}),
			errContains: "before its end",
		},
		{
			name:        "not running before",
			out:         pingOutput(at(1950*time.Millisecond), end, [2]time.Time{at(2005 * time.Millisecond), at(2300 * time.Millisecond)}),
			errContains: "not running",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := MeasureOutage(tc.out, kill, end)
			if tc.resumed == 0 {
				if err == nil || !strings.Contains(err.Error(), tc.errContains) {
					t.Fatalf("MeasureOutage = %+v, %v; want an error with %q", o, err, tc.errContains)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := o.Resumed - tc.resumed; d < -time.Millisecond || d > time.Millisecond {
				t.Errorf("resumed %v after the kill, want %v", o.Resumed, tc.resumed)
			}
			if o.LongestGap < 300*time.Millisecond || o.LongestGap > 310*time.Millisecond {
				t.Errorf("longest gap %v, want 300-310ms", o.LongestGap)
			}
		})
	}
}
