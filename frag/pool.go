package frag

import "sync"

// classSizes are the capacities of reassembly buffers: steps of 1.5 and 2
// from 1 KiB up to the longest stream, so a buffer is never more than 1.5
// times the stream it holds (above 1 KiB). A 1514-byte frame with its offload
// header takes 1536 bytes, a 9000-byte jumbo frame 12 KiB.
var classSizes = [...]int{
	1 << 10, 3 << 9, 1 << 11, 3 << 10, 1 << 12, 3 << 11, 1 << 13, 3 << 12,
	1 << 14, 3 << 13, 1 << 15, 3 << 14, MaxStreamLen,
}

// classOf returns the index of the smallest class that holds n bytes, or -1.
func classOf(n int) int {
	for i, size := range classSizes {
		if n <= size {
			return i
		}
	}
	return -1
}

// bufPools holds reassembly buffers by size class. Buffers travel as
// *[]byte so that putting one back allocates nothing.
type bufPools [len(classSizes)]sync.Pool

// get returns a buffer of the class that holds n bytes, n <= MaxStreamLen,
// with its length set to its capacity.
func (p *bufPools) get(n int) *[]byte {
	c := classOf(n)
	if b, ok := p[c].Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, classSizes[c])
	return &b
}

// put returns a buffer from get; others are left to the garbage collector.
func (p *bufPools) put(b *[]byte) {
	c := classOf(cap(*b))
	if c < 0 || classSizes[c] != cap(*b) {
		return
	}
	*b = (*b)[:cap(*b)]
	p[c].Put(b)
}
