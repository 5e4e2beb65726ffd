package frag

import (
	"slices"
	"testing"
)

func TestRangeSetInsert(t *testing.T) {
	tests := []struct {
		name  string
		have  []span
		lo    uint32
		hi    uint32
		want  insertResult
		after []span
	}{
		{"into empty", nil, 10, 20, inserted, []span{{10, 20}}},
		{"before", []span{{30, 40}}, 10, 20, inserted, []span{{10, 20}, {30, 40}}},
		{"after", []span{{10, 20}}, 30, 40, inserted, []span{{10, 20}, {30, 40}}},
		{"between", []span{{0, 10}, {40, 50}}, 20, 30, inserted, []span{{0, 10}, {20, 30}, {40, 50}}},
		{"joins left", []span{{0, 10}}, 10, 20, inserted, []span{{0, 20}}},
		{"joins right", []span{{20, 30}}, 10, 20, inserted, []span{{10, 30}}},
		{"fills hole", []span{{0, 10}, {20, 30}, {40, 50}}, 10, 20, inserted, []span{{0, 30}, {40, 50}}},
		{"duplicate exact", []span{{10, 20}}, 10, 20, duplicate, []span{{10, 20}}},
		{"duplicate inside", []span{{0, 100}}, 10, 20, duplicate, []span{{0, 100}}},
		{"duplicate at end", []span{{0, 10}, {20, 100}}, 90, 100, duplicate, []span{{0, 10}, {20, 100}}},
		{"overlaps start", []span{{10, 20}}, 5, 15, overlapping, []span{{10, 20}}},
		{"overlaps end", []span{{10, 20}}, 15, 25, overlapping, []span{{10, 20}}},
		{"covers", []span{{10, 20}}, 5, 25, overlapping, []span{{10, 20}}},
		{"covers two", []span{{10, 20}, {30, 40}}, 10, 40, overlapping, []span{{10, 20}, {30, 40}}},
		{"touches left overlaps right", []span{{0, 10}, {15, 20}}, 10, 16, overlapping, []span{{0, 10}, {15, 20}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rs rangeSet
			for _, s := range tt.have {
				if got := rs.insert(s.lo, s.hi); got != inserted {
					t.Fatalf("setting up %v: %d", s, got)
				}
			}
			if got := rs.insert(tt.lo, tt.hi); got != tt.want {
				t.Errorf("insert [%d,%d) = %d, want %d", tt.lo, tt.hi, got, tt.want)
			}
			if got := rs.spans[:rs.n]; !slices.Equal(got, tt.after) {
				t.Errorf("after: %v, want %v", got, tt.after)
			}
		})
	}
}

func TestRangeSetFull(t *testing.T) {
	var rs rangeSet
	for i := range uint32(maxRanges) {
		if got := rs.insert(i*10, i*10+5); got != inserted {
			t.Fatalf("range %d: %d", i, got)
		}
	}
	if got := rs.insert(1000, 1005); got != full {
		t.Errorf("range %d: %d, want full", maxRanges+1, got)
	}
	// Filling a hole still works when full: it merges.
	if got := rs.insert(5, 10); got != inserted || rs.n != maxRanges-1 {
		t.Errorf("filling a hole: %d, %d ranges", got, rs.n)
	}
}
