package frag

import (
	"fmt"
	"sync/atomic"
	"testing"
)

const benchChunk = 1392

var benchSizes = []int{1514, 65535}

func BenchmarkSplit(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			frame := randomBytes(1, size)
			s := NewSplitter()
			buf := make([]byte, benchChunk)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				c := s.Split(nil, frame, benchChunk)
				for c.Next(buf) > 0 {
				}
			}
		})
	}
}

func BenchmarkReassemble(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			chunks := splitAll(NewSplitter(), nil, randomBytes(1, size), benchChunk)
			r := NewReassembler(Config{})
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				for _, c := range chunks {
					if f, ok := r.Add(1, c, t0); ok {
						r.Release(f)
					}
				}
			}
		})
	}
}

// BenchmarkReassembleParallel reassembles on every P at once, a peer each.
func BenchmarkReassembleParallel(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			chunks := splitAll(NewSplitter(), nil, randomBytes(1, size), benchChunk)
			r := NewReassembler(Config{})
			var peers atomic.Uint32
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				peer := peers.Add(1)
				for pb.Next() {
					for _, c := range chunks {
						if f, ok := r.Add(peer, c, t0); ok {
							r.Release(f)
						}
					}
				}
			})
		})
	}
}
