package main

import (
	"math"
	"slices"
	"testing"
)

var nan = math.NaN()

func TestSummarize(t *testing.T) {
	tests := []struct {
		name   string
		values []float64
		want   summary
	}{
		{"odd", []float64{3, 1, 2}, summary{Median: 2, Min: 1, Max: 3, N: 3}},
		{"even", []float64{4, 1, 3, 2}, summary{Median: 2.5, Min: 1, Max: 4, N: 4}},
		{"one", []float64{7}, summary{Median: 7, Min: 7, Max: 7, N: 1}},
		{"NaN skipped", []float64{nan, 5, 1, nan}, summary{Median: 3, Min: 1, Max: 5, N: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := summarize(tt.values); got != tt.want {
				t.Errorf("summarize(%v) = %+v, want %+v", tt.values, got, tt.want)
			}
		})
	}
	if got := summarize([]float64{nan}); got.N != 0 || !math.IsNaN(got.Median) {
		t.Errorf("summarize(NaN) = %+v, want N 0 and NaN median", got)
	}
}

func TestSummarizeLeavesInputAlone(t *testing.T) {
	in := []float64{3, 1, 2}
	summarize(in)
	if !slices.Equal(in, []float64{3, 1, 2}) {
		t.Errorf("summarize reordered its input: %v", in)
	}
}

func TestPairRatios(t *testing.T) {
	tests := []struct {
		name string
		a, b []float64
		want []float64
	}{
		{"pairwise", []float64{200, 300, 400}, []float64{100, 100, 200}, []float64{2, 3, 2}},
		{"missing on either side", []float64{200, nan, 400}, []float64{100, 100, nan}, []float64{2}},
		{"zero baseline", []float64{1, 2}, []float64{0, 1}, []float64{2}},
		{"different lengths", []float64{2, 4, 6}, []float64{1, 2}, []float64{2, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pairRatios(tt.a, tt.b); !slices.Equal(got, tt.want) {
				t.Errorf("pairRatios(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

// The median of the pairwise ratios is not the ratio of the medians: a
// baseline that had a bad repetition next to a bad one of l2wg cancels out.
func TestMedianOfRatiosIsNotRatioOfMedians(t *testing.T) {
	l2, base := []float64{100, 200, 900}, []float64{50, 400, 300}
	got := summarize(pairRatios(l2, base)).Median
	if got != 2 {
		t.Errorf("median of ratios = %v, want 2", got)
	}
	if ratioOfMedians := summarize(l2).Median / summarize(base).Median; ratioOfMedians == got {
		t.Errorf("ratio of medians %v equals median of ratios", ratioOfMedians)
	}
}

func TestPercentile(t *testing.T) {
	var hundred []float64
	for i := 100; i >= 1; i-- {
		hundred = append(hundred, float64(i))
	}
	tests := []struct {
		name   string
		values []float64
		p      float64
		want   float64
	}{
		{"p99 of 1..100", hundred, 99, 99},
		{"p100 is the max", hundred, 100, 100},
		{"p50 of 1..100", hundred, 50, 50},
		{"p99 of few is the max", []float64{1, 5, 2}, 99, 5},
		{"single", []float64{0.3}, 99, 0.3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.values, tt.p); got != tt.want {
				t.Errorf("percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
	if !math.IsNaN(percentile(nil, 99)) {
		t.Error("percentile of nothing is not NaN")
	}
}

func TestFormatSummary(t *testing.T) {
	tests := []struct {
		name string
		s    summary
		d    int
		reps int
		sfx  string
		want string
	}{
		{"range", summary{Median: 1677.4, Min: 1600, Max: 1700.6, N: 3}, 0, 3, "", "1677 (1600–1701)"},
		{"single", summary{Median: 0.1234, Min: 0.1234, Max: 0.1234, N: 1}, 3, 1, "", "0.123"},
		{"missing reps", summary{Median: 2, Min: 1, Max: 3, N: 2}, 2, 3, "×", "2.00× (1.00–3.00) [2 of 3]"},
		{"none", summary{N: 0}, 0, 3, "", "–"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatSummary(tt.s, tt.d, tt.reps, tt.sfx); got != tt.want {
				t.Errorf("formatSummary = %q, want %q", got, tt.want)
			}
		})
	}
}
