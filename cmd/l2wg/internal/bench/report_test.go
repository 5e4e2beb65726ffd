package main

import (
	"context"
	"strings"
	"testing"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/netns"
)

// fakeContestant is a contestant for report tests; it never starts.
type fakeContestant struct{ key, name string }

func (f fakeContestant) Key() string       { return f.key }
func (f fakeContestant) Name() string      { return f.name }
func (f fakeContestant) Path() trafficPath { return vmPath }
func (fakeContestant) Start(context.Context, *netns.Lab, string) ([]*netns.Proc, error) {
	return nil, nil
}

func TestReportRatios(t *testing.T) {
	mk := func(tcp1 float64) *sample {
		s := newSample()
		s.Values[mTCP1] = tcp1
		return s
	}
	failed := newSample()
	failed.Err = errString("check failed: no reply")
	res := &results{
		Contestants: []contestant{fakeContestant{"tinc", "tinc"}, fakeContestant{"l2wg", "l2wg"}},
		Samples: [][]*sample{
			{mk(100), mk(300)},
			{mk(200), mk(500)},
			{failed, mk(900)},
		},
	}
	var b strings.Builder
	(&report{Params: params{Seconds: 10, UDPRate: "2G", IdlePings: 300}, Results: res}).write(&b)
	out := b.String()
	for _, want := range []string{
		"| TCP, 1 stream (Mbit/s) | 150 (100–200) [2 of 3] | 500 (300–900) |",
		"| TCP, 1 stream (Mbit/s) | 2.75× (2.50–3.00) [2 of 3] |",
		"- repetition 3, tinc: failed: check failed: no reply",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }
