package frag

import (
	"fmt"
	"testing"
)

// TestZeroAllocs pins zero allocations on the hot paths, once warm.
func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates, and sync.Pool drops items under it")
	}
	offload := &[OffloadLen]byte{1}
	for _, size := range []int{60, 1514, MaxFrameLen} {
		frame := randomBytes(uint64(size), size)
		s := NewSplitter()
		buf := make([]byte, 1392)
		t.Run(fmt.Sprintf("Split+Next/%d", size), func(t *testing.T) {
			allocs := testing.AllocsPerRun(200, func() {
				c := s.Split(offload, frame, 1392)
				for c.Next(buf) > 0 {
				}
			})
			if allocs != 0 {
				t.Errorf("%v allocations per frame", allocs)
			}
		})
		chunks := splitAll(s, offload, frame, 1392)
		r := NewReassembler(Config{})
		t.Run(fmt.Sprintf("Add+Release/%d", size), func(t *testing.T) {
			allocs := testing.AllocsPerRun(200, func() {
				for _, c := range chunks {
					if f, ok := r.Add(1, c, t0); ok {
						r.Release(f)
					}
				}
			})
			if allocs != 0 {
				t.Errorf("%v allocations per frame", allocs)
			}
			if st := r.Stats(); st.InProgress != 0 || st.Reassembled+st.Whole < 200 {
				t.Errorf("frames not delivered: %+v", st)
			}
		})
	}
	t.Run("Add dropped", func(t *testing.T) {
		r := NewReassembler(Config{})
		bad := []byte{0x20, 0, 1, 2}
		allocs := testing.AllocsPerRun(200, func() { r.Add(1, bad, t0) })
		if allocs != 0 {
			t.Errorf("%v allocations per chunk", allocs)
		}
	})
}
