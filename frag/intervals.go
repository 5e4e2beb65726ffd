package frag

// maxRanges bounds the disjoint byte ranges one frame in progress may have
// received. 64 covers a fully shuffled superframe at a 576-byte chunk size
// (117 fragments make at most 59 ranges); a frame that needs more is dropped.
const maxRanges = 64

// span is the received byte range [lo, hi) of a stream.
type span struct{ lo, hi uint32 }

// rangeSet holds the received ranges of one stream: sorted, disjoint and not
// adjacent (touching ranges are merged), in a fixed array.
type rangeSet struct {
	n     int
	spans [maxRanges]span
}

// insertResult tells what rangeSet.insert did with a range.
type insertResult uint8

const (
	inserted    insertResult = iota // new bytes, now recorded
	duplicate                       // wholly inside received bytes; nothing changed
	overlapping                     // partly inside received bytes; nothing changed
	full                            // would need more than maxRanges ranges; nothing changed
)

func (rs *rangeSet) reset() { rs.n = 0 }

// insert records [lo, hi), lo < hi.
func (rs *rangeSet) insert(lo, hi uint32) insertResult {
	// j is the first range that ends after lo; the ones before it end at or
	// before lo.
	j, k := 0, rs.n
	for j < k {
		m := int(uint(j+k) >> 1)
		if rs.spans[m].hi <= lo {
			j = m + 1
		} else {
			k = m
		}
	}
	if j < rs.n && rs.spans[j].lo < hi {
		if rs.spans[j].lo <= lo && hi <= rs.spans[j].hi {
			return duplicate
		}
		return overlapping
	}
	joinsLeft := j > 0 && rs.spans[j-1].hi == lo
	joinsRight := j < rs.n && rs.spans[j].lo == hi
	switch {
	case joinsLeft && joinsRight:
		rs.spans[j-1].hi = rs.spans[j].hi
		copy(rs.spans[j:rs.n-1], rs.spans[j+1:rs.n])
		rs.n--
	case joinsLeft:
		rs.spans[j-1].hi = hi
	case joinsRight:
		rs.spans[j].lo = lo
	default:
		if rs.n == maxRanges {
			return full
		}
		copy(rs.spans[j+1:rs.n+1], rs.spans[j:rs.n])
		rs.spans[j] = span{lo, hi}
		rs.n++
	}
	return inserted
}
