package mesh

import (
	"testing"
	"time"
)

// TestSPFTimedByStopwatch: with Config.Stopwatch, every table computation
// is timed by it (a fake that moves 3 ms per reading: each computation
// reads it twice); without one, nothing is timed.
func TestSPFTimedByStopwatch(t *testing.T) {
	for _, tc := range []struct {
		name  string
		timed bool
	}{{"stopwatch", true}, {"none", false}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Key: labKey(1)}
			clock := labEpoch
			if tc.timed {
				cfg.Stopwatch = func() time.Time { clock = clock.Add(3 * time.Millisecond); return clock }
			}
			a := mustNew(t, cfg)
			kb := labKey(2)
			a.AdjacencyUp(1, kb, 10, labEpoch)
			a.Receive(1, encRecord(t, Record{Origin: kb, Seq: 1, Lifetime: 60, Links: []Link{{IDFromKey(labKey(1)), 10}}}), labEpoch)
			settleMachine(a, labEpoch.Add(DefaultSyncTimeout))
			s := a.Stats()
			if s.Computes == 0 {
				t.Fatal("no table computed")
			}
			want, last := time.Duration(s.Computes)*3*time.Millisecond, 3*time.Millisecond
			if !tc.timed {
				want, last = 0, 0
			}
			if s.SPFTime != want || s.LastSPFTime != last {
				t.Errorf("%d computations: SPF time %v, last %v; want %v, %v", s.Computes, s.SPFTime, s.LastSPFTime, want, last)
			}
		})
	}
}
