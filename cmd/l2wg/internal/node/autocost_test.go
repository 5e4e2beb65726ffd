package node

import (
	"testing"
	"time"
)

func TestCostFromRTT(t *testing.T) {
	for _, c := range []struct {
		rtt  time.Duration
		want uint32
	}{
		{0, 100},
		{300 * time.Microsecond, 103},
		{20 * time.Millisecond, 300},   // Ottawa - US East
		{196 * time.Millisecond, 2060}, // the detour through the UK
		{10 * time.Hour, 200_000_000},  // clamped to 802.1D's largest cost
	} {
		if got := costFromRTT(c.rtt); got != c.want {
			t.Errorf("costFromRTT(%v) = %d, want %d", c.rtt, got, c.want)
		}
	}
}

func TestCostShouldMoveOnlyOnRealChange(t *testing.T) {
	for _, c := range []struct {
		cur, want uint32
		move      bool
	}{
		{100, 103, false},   // LAN jitter
		{100, 125, true},    // 2.5 ms more, a quarter
		{300, 350, false},   // within a fifth
		{300, 2060, true},   // a detour
		{2060, 300, true},   // and back
		{100, 108, false},   // under 1 ms
		{1000, 1150, false}, // 15 % of a long path
		{1150, 1000, true},  // 13 % less: the path's real delay, seen late
		{1000, 960, false},  // 4 % less
		{300, 290, false},   // a twentieth, but 1 ms
	} {
		if got := costShouldMove(c.cur, c.want); got != c.move {
			t.Errorf("costShouldMove(%d, %d) = %v, want %v", c.cur, c.want, got, c.move)
		}
	}
}
