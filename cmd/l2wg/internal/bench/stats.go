package main

import (
	"math"
	"slices"
)

// summary is a median with the range it comes from.
type summary struct {
	Median, Min, Max float64
	N                int // how many values it summarizes
}

// summarize returns the median, minimum and maximum of values, ignoring NaNs
// (a repetition that did not produce the value). N is 0 when nothing is left.
func summarize(values []float64) summary {
	vs := make([]float64, 0, len(values))
	for _, v := range values {
		if !math.IsNaN(v) {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return summary{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	slices.Sort(vs)
	return summary{Median: median(vs), Min: vs[0], Max: vs[len(vs)-1], N: len(vs)}
}

// median returns the median of sorted, non-empty vs: the middle value, or the
// mean of the two middle values.
func median(vs []float64) float64 {
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2]
	}
	return (vs[n/2-1] + vs[n/2]) / 2
}

// pairRatios divides a[i] by b[i] for every repetition i where both are
// known and b[i] is not zero: repetition i of l2wg against repetition i of a
// baseline, which ran right next to each other and saw the same drift.
func pairRatios(a, b []float64) []float64 {
	n := min(len(a), len(b))
	rs := make([]float64, 0, n)
	for i := range n {
		if math.IsNaN(a[i]) || math.IsNaN(b[i]) || b[i] == 0 {
			continue
		}
		rs = append(rs, a[i]/b[i])
	}
	return rs
}

// percentile returns the p-th percentile (0 < p <= 100) of values by the
// nearest-rank method: the smallest value that at least p % of the values do
// not exceed. NaN for no values.
func percentile(values []float64, p float64) float64 {
	if len(values) == 0 {
		return math.NaN()
	}
	vs := slices.Clone(values)
	slices.Sort(vs)
	rank := int(math.Ceil(p / 100 * float64(len(vs))))
	rank = min(max(rank, 1), len(vs))
	return vs[rank-1]
}

// mean returns the arithmetic mean of values, NaN for none.
func mean(values []float64) float64 {
	if len(values) == 0 {
		return math.NaN()
	}
	var s float64
	for _, v := range values {
		s += v
	}
	return s / float64(len(values))
}
