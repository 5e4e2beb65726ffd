package main

import (
	"strings"
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
	} {
		if got := costShouldMove(c.cur, c.want); got != c.move {
			t.Errorf("costShouldMove(%d, %d) = %v, want %v", c.cur, c.want, got, c.move)
		}
	}
}

func TestPeerCostConfig(t *testing.T) {
	base := "private_key_file = \"node.key\"\n[[peer]]\npublic_key = \"" + testPubA + "\"\n"
	for _, c := range []struct {
		line string
		want uint32
		err  string
	}{
		{"", costAuto, ""},
		{"cost = \"auto\"\n", costAuto, ""},
		{"cost = 250\n", 250, ""},
		{"cost = 0\n", 0, ":4: peer[1].cost: 0: must be \"auto\" or a number between 1 and 200000000"},
		{"cost = \"cheap\"\n", 0, ":4: peer[1].cost: \"cheap\": must be \"auto\""},
	} {
		path := writeConfig(t, base+c.line)
		cfg, err := loadConfig(path)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), path+c.err) {
				t.Errorf("%q: error %v, want %s%s", c.line, err, path, c.err)
			}
		case err != nil:
			t.Errorf("%q: %v", c.line, err)
		case cfg.PeerCosts[0] != c.want:
			t.Errorf("%q: cost %d, want %d", c.line, cfg.PeerCosts[0], c.want)
		}
	}
}
