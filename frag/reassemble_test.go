package frag

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// TestAddDrops feeds chunk sequences from one peer and checks what each
// drop is counted as, and what is left in progress.
func TestAddDrops(t *testing.T) {
	const total = 1000
	acct := AccountedBytes(total)
	tests := []struct {
		name       string
		chunks     [][]byte
		want       Stats // counters and gauges after the last chunk
		wantFrames int   // frames delivered
	}{
		{"empty", [][]byte{{}}, Stats{Malformed: 1}, 0},
		{"one byte", [][]byte{{0x10}}, Stats{Malformed: 1}, 0},
		{"version 0", [][]byte{append([]byte{0x00, 0x00}, make([]byte, 60)...)}, Stats{Malformed: 1}, 0},
		{"version 2", [][]byte{append([]byte{0x20, 0x00}, make([]byte, 60)...)}, Stats{Malformed: 1}, 0},
		{"version 15", [][]byte{append([]byte{0xf0, 0x00}, make([]byte, 60)...)}, Stats{Malformed: 1}, 0},
		{"reserved flag 0x4", [][]byte{append([]byte{0x14, 0x00}, make([]byte, 60)...)}, Stats{Malformed: 1}, 0},
		{"reserved flag 0x8", [][]byte{append([]byte{0x18, 0x00}, make([]byte, 60)...)}, Stats{Malformed: 1}, 0},
		{"reserved flag on fragment", [][]byte{func() []byte { b := fragChunk(0, 1, 0, total, 100); b[0] |= 0x8; return b }()}, Stats{Malformed: 1}, 0},
		{"unknown type 1", [][]byte{append([]byte{0x10, 0x01}, make([]byte, 60)...)}, Stats{UnknownType: 1}, 0},
		{"unknown type 255 on fragment", [][]byte{func() []byte { b := fragChunk(0, 1, 0, total, 100); b[1] = 0xff; return b }()}, Stats{UnknownType: 1}, 0},
		{"whole: shortest", [][]byte{wholeChunk(0, MinFrameLen)}, Stats{Whole: 1}, 1},
		{"whole: runt", [][]byte{wholeChunk(0, MinFrameLen-1)}, Stats{Malformed: 1}, 0},
		{"whole: header only", [][]byte{wholeChunk(0, 0)}, Stats{Malformed: 1}, 0},
		{"whole: truncated offload", [][]byte{wholeChunk(FlagOffload, OffloadLen-1)}, Stats{Malformed: 1}, 0},
		{"whole: offload and runt", [][]byte{wholeChunk(FlagOffload, OffloadLen+MinFrameLen-1)}, Stats{Malformed: 1}, 0},
		{"whole: offload and shortest", [][]byte{wholeChunk(FlagOffload, OffloadLen+MinFrameLen)}, Stats{Whole: 1}, 1},
		{"whole: longest", [][]byte{wholeChunk(0, MaxFrameLen)}, Stats{Whole: 1}, 1},
		{"whole: too big", [][]byte{wholeChunk(0, MaxFrameLen+1)}, Stats{TooBig: 1}, 0},
		{"whole: offload, too big", [][]byte{wholeChunk(FlagOffload, MaxStreamLen+1)}, Stats{TooBig: 1}, 0},
		{"fragment: truncated header", [][]byte{fragChunk(0, 1, 0, total, 0)[:FragHeaderLen-1]}, Stats{Malformed: 1}, 0},
		{"fragment: total too big", [][]byte{fragChunk(0, 1, 0, MaxStreamLen+1, 100)}, Stats{Fragments: 1, TooBig: 1}, 0},
		{"fragment: total 2^24-1", [][]byte{fragChunk(0, 1, 0, 1<<24-1, 100)}, Stats{Fragments: 1, TooBig: 1}, 0},
		{"fragment: longest total", [][]byte{fragChunk(FlagOffload, 1, 0, MaxStreamLen, 100)}, Stats{Fragments: 1, InProgress: 1, BytesHeld: AccountedBytes(MaxStreamLen)}, 0},
		{"fragment: total under a frame", [][]byte{fragChunk(0, 1, 0, MinFrameLen-1, MinFrameLen-1)}, Stats{Fragments: 1, Malformed: 1}, 0},
		{"fragment: total under offload and frame", [][]byte{fragChunk(FlagOffload, 1, 0, OffloadLen+MinFrameLen-1, 10)}, Stats{Fragments: 1, Malformed: 1}, 0},
		{"fragment: empty payload", [][]byte{fragChunk(0, 1, 0, total, 0)}, Stats{Fragments: 1, Malformed: 1}, 0},
		{"fragment: empty last payload", [][]byte{fragChunk(0, 1, total, total, 0)}, Stats{Fragments: 1, Malformed: 1}, 0},
		{"fragment: offset beyond total", [][]byte{fragChunk(0, 1, total+1, total, 100)}, Stats{Fragments: 1, Malformed: 1}, 0},
		{"fragment: end beyond total", [][]byte{fragChunk(0, 1, total-99, total, 100)}, Stats{Fragments: 1, Malformed: 1}, 0},
		{"fragment: offset 2^24-1", [][]byte{fragChunk(0, 1, 1<<24-1, total, 100)}, Stats{Fragments: 1, Malformed: 1}, 0},
		{"fragment: tiny non-final", [][]byte{fragChunk(0, 1, 0, total, MinFragmentPayload-1)}, Stats{Fragments: 1, Malformed: 1}, 0},
		{"fragment: tiny final", [][]byte{fragChunk(0, 1, total-1, total, 1)}, Stats{Fragments: 1, InProgress: 1, BytesHeld: acct}, 0},
		{"fragment: least non-final", [][]byte{fragChunk(0, 1, 0, total, MinFragmentPayload)}, Stats{Fragments: 1, InProgress: 1, BytesHeld: acct}, 0},
		{"fragment: whole stream in one", [][]byte{fragChunk(0, 1, 0, total, total)}, Stats{Fragments: 1, Reassembled: 1}, 1},
		{"two halves", [][]byte{fragChunk(0, 1, 0, total, 500), fragChunk(0, 1, 500, total, 500)}, Stats{Fragments: 2, Reassembled: 1}, 1},
		{"duplicate", [][]byte{fragChunk(0, 1, 0, total, 100), fragChunk(0, 1, 0, total, 100)},
			Stats{Fragments: 2, Duplicate: 1, InProgress: 1, BytesHeld: acct}, 0},
		{"duplicate inside", [][]byte{fragChunk(0, 1, 0, total, 300), fragChunk(0, 1, 100, total, 100)},
			Stats{Fragments: 2, Duplicate: 1, InProgress: 1, BytesHeld: acct}, 0},
		{"overlap", [][]byte{fragChunk(0, 1, 0, total, 100), fragChunk(0, 1, 50, total, 100)},
			Stats{Fragments: 2, Overlap: 1}, 0},
		{"overlap covering", [][]byte{fragChunk(0, 1, 100, total, 100), fragChunk(0, 1, 0, total, 300)},
			Stats{Fragments: 2, Overlap: 1}, 0},
		{"overlap then the rest starts anew", [][]byte{fragChunk(0, 1, 0, total, 100), fragChunk(0, 1, 50, total, 100), fragChunk(0, 1, 100, total, 900)},
			Stats{Fragments: 3, Overlap: 1, InProgress: 1, BytesHeld: acct}, 0},
		{"disagreeing totals", [][]byte{fragChunk(0, 1, 0, total, 100), fragChunk(0, 1, 100, 2*total, 100)},
			Stats{Fragments: 2, Malformed: 1}, 0},
		{"disagreeing offload flags", [][]byte{fragChunk(0, 1, 0, total, 100), fragChunk(FlagOffload, 1, 100, total, 100)},
			Stats{Fragments: 2, Malformed: 1}, 0},
		{"different IDs apart", [][]byte{fragChunk(0, 1, 0, total, 500), fragChunk(0, 2, 500, total, 500)},
			Stats{Fragments: 2, InProgress: 2, BytesHeld: 2 * acct}, 0},
		{"too many holes", holes(maxRanges + 1), Stats{Fragments: maxRanges + 1, TooManyHoles: 1}, 0},
		{"as many holes as allowed", holes(maxRanges),
			Stats{Fragments: maxRanges, InProgress: 1, BytesHeld: AccountedBytes(2 * 128 * (maxRanges + 1))}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReassembler(Config{})
			frames := 0
			for _, c := range tt.chunks {
				f, ok := r.Add(1, c, t0)
				if ok {
					frames++
					if len(f.Data) < MinFrameLen || len(f.Data) > MaxFrameLen {
						t.Errorf("delivered a %d-byte frame", len(f.Data))
					}
					r.Release(f)
				}
			}
			if frames != tt.wantFrames {
				t.Errorf("%d frames delivered, want %d", frames, tt.wantFrames)
			}
			if got := r.Stats(); got != tt.want {
				t.Errorf("stats\n got %+v\nwant %+v", got, tt.want)
			}
			checkInvariants(t, r)
		})
	}
}

// holes returns n fragments of one frame with a gap after each.
func holes(n int) [][]byte {
	total := 2 * 128 * (maxRanges + 1)
	var out [][]byte
	for i := range n {
		out = append(out, fragChunk(0, 1, 2*128*i, total, 128))
	}
	return out
}

func TestAddWholeAliases(t *testing.T) {
	r := NewReassembler(Config{})
	chunk := wholeChunk(FlagOffload, OffloadLen+100)
	copy(chunk[WholeHeaderLen:], "0123456789")
	f, ok := r.Add(1, chunk, t0)
	if !ok || &f.Data[0] != &chunk[WholeHeaderLen+OffloadLen] || len(f.Data) != 100 {
		t.Fatalf("got %v, %d bytes: not an alias of the chunk", ok, len(f.Data))
	}
	if string(f.Offload[:]) != "0123456789" {
		t.Errorf("offload %q", f.Offload)
	}
	r.Release(f)
	r.Release(Frame{}) // no-op
}

// TestAddCopies: a reassembled frame does not alias the chunks, which the
// caller may reuse as soon as Add returns.
func TestAddCopies(t *testing.T) {
	frame := randomBytes(3, 3000)
	chunks := splitAll(NewSplitter(), nil, frame, 1420)
	r := NewReassembler(Config{})
	var f Frame
	for _, c := range chunks {
		var ok bool
		if f, ok = r.Add(1, c, t0); ok {
			break
		}
		clear(c)
	}
	for _, c := range chunks {
		clear(c)
	}
	if !bytes.Equal(f.Data, frame) {
		t.Error("frame changed with the chunks")
	}
	r.Release(f)
}

func TestTimeout(t *testing.T) {
	const timeout = 2 * time.Second
	frame := randomBytes(4, 5000)
	chunks := splitAll(NewSplitter(), nil, frame, 1420)
	r := NewReassembler(Config{Timeout: timeout})
	for _, c := range chunks[:len(chunks)-1] { // lose the last
		if _, ok := r.Add(1, c, t0); ok {
			t.Fatal("incomplete frame delivered")
		}
	}
	if st := r.Stats(); st.InProgress != 1 || st.BytesHeld != AccountedBytes(len(frame)) {
		t.Fatalf("in progress: %+v", st)
	}
	r.Expire(t0.Add(timeout))
	if st := r.Stats(); st.InProgress != 1 || st.Timeouts != 0 {
		t.Fatalf("expired at exactly the timeout: %+v", st)
	}
	r.Expire(t0.Add(timeout + time.Nanosecond))
	if st := r.Stats(); st.InProgress != 0 || st.BytesHeld != 0 || st.Timeouts != 1 {
		t.Fatalf("after the timeout: %+v", st)
	}
	checkInvariants(t, r)

	// The lost chunk arriving late starts a frame of its own, which times
	// out too.
	later := t0.Add(3 * timeout)
	if _, ok := r.Add(1, chunks[len(chunks)-1], later); ok {
		t.Fatal("late chunk delivered a frame")
	}
	r.Expire(later.Add(2 * timeout))
	if st := r.Stats(); st.InProgress != 0 || st.BytesHeld != 0 || st.Timeouts != 2 {
		t.Fatalf("late chunk: %+v", st)
	}
	checkInvariants(t, r)
}

// TestTimeoutLazy: Add drops timed-out frames of its shard without Expire,
// and a chunk of a timed-out frame starts it anew.
func TestTimeoutLazy(t *testing.T) {
	frame := randomBytes(5, 5000)
	s := NewSplitter()
	r := NewReassembler(Config{Timeout: time.Second})
	old := splitAll(s, nil, frame, 1420)
	r.Add(1, old[0], t0)
	r.Add(1, old[1], t0)

	later := t0.Add(1500 * time.Millisecond)
	fresh := splitAll(s, nil, frame, 1420)
	r.Add(1, fresh[0], later)
	if st := r.Stats(); st.Timeouts != 1 || st.InProgress != 1 {
		t.Fatalf("lazy expiry: %+v", st)
	}
	// The old frame's chunks now start from scratch and complete.
	for _, c := range old {
		if f, ok := r.Add(1, c, later); ok {
			if !bytes.Equal(f.Data, frame) {
				t.Error("content differs")
			}
			r.Release(f)
		}
	}
	if st := r.Stats(); st.Reassembled != 1 || st.InProgress != 1 {
		t.Fatalf("after restart: %+v", st)
	}
	checkInvariants(t, r)
}

func TestDropPeer(t *testing.T) {
	r := NewReassembler(Config{})
	for peer := uint32(1); peer <= 3; peer++ {
		for id := range uint32(5) {
			r.Add(peer, fragChunk(0, id, 0, 3000, 100), t0)
		}
	}
	r.DropPeer(2)
	r.DropPeer(99) // unknown: no-op
	if st := r.Stats(); st.InProgress != 10 || st.BytesHeld != 10*AccountedBytes(3000) || st.Evicted != 0 {
		t.Errorf("after DropPeer: %+v", st)
	}
	checkInvariants(t, r)
}

// TestDuplicateAfterCompletion: whole frames and fragments carry no memory
// of delivered frames; a late duplicate fragment starts a frame that times
// out.
func TestDuplicateAfterCompletion(t *testing.T) {
	r := NewReassembler(Config{})
	chunks := splitAll(NewSplitter(), nil, randomBytes(6, 3000), 1420)
	for _, c := range chunks {
		if f, ok := r.Add(1, c, t0); ok {
			r.Release(f)
		}
	}
	if _, ok := r.Add(1, chunks[0], t0); ok {
		t.Fatal("late duplicate delivered a frame")
	}
	if st := r.Stats(); st.Reassembled != 1 || st.InProgress != 1 {
		t.Errorf("stats %+v", st)
	}
	r.Expire(t0.Add(time.Hour))
	if st := r.Stats(); st.InProgress != 0 || st.BytesHeld != 0 || st.Timeouts != 1 {
		t.Errorf("after expiry %+v", st)
	}
}

func TestSamePeerIDsApart(t *testing.T) {
	r := NewReassembler(Config{})
	a := fragChunk(0, 9, 0, 1000, 500)
	b := fragChunk(0, 9, 500, 1000, 500)
	r.Add(1, a, t0)
	if _, ok := r.Add(2, b, t0); ok {
		t.Fatal("fragments of two peers glued together")
	}
	if _, ok := r.Add(1, b, t0); !ok {
		t.Fatal("frame not delivered")
	}
}

func TestConfigDefaults(t *testing.T) {
	least := AccountedBytes(MaxStreamLen)
	tests := []struct {
		name string
		in   Config
		want Config
	}{
		{"zero", Config{}, Config{DefaultTimeout, DefaultMaxBytesPerPeer, DefaultMaxBytesTotal}},
		{"negative", Config{-1, -1, -1}, Config{DefaultTimeout, DefaultMaxBytesPerPeer, DefaultMaxBytesTotal}},
		{"tiny caps", Config{time.Second, 1, 1}, Config{time.Second, least, least}},
		{"per peer over total", Config{time.Second, 10 << 20, 5 << 20}, Config{time.Second, 5 << 20, 5 << 20}},
		{"kept", Config{time.Minute, 1 << 20, 2 << 20}, Config{time.Minute, 1 << 20, 2 << 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NewReassembler(tt.in).Config(); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestAccountedBytes(t *testing.T) {
	tests := []struct{ total, buf int }{
		{-1, 0}, {0, 0}, {1, 1024}, {1024, 1024}, {1025, 1536}, {1524, 1536},
		{9010, 12288}, {49152, 49152}, {49153, MaxStreamLen}, {MaxStreamLen, MaxStreamLen}, {MaxStreamLen + 1, 0},
	}
	for _, tt := range tests {
		want := tt.buf
		if want != 0 {
			want += partialOverhead
		}
		if got := AccountedBytes(tt.total); got != want {
			t.Errorf("AccountedBytes(%d) = %d, want %d", tt.total, got, want)
		}
	}
}

// TestConcurrentPeers reassembles on several goroutines at once, one peer
// each plus one peer shared by two, with shuffled chunks; run with -race.
func TestConcurrentPeers(t *testing.T) {
	r := NewReassembler(Config{})
	s := NewSplitter()
	const workers = 8
	frames := 200
	if testing.Short() || raceEnabled {
		frames = 50
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			peer := uint32(w)
			if w >= workers-2 {
				peer = 1000 // two goroutines share a peer
			}
			rt := &roundTripper{t: t, s: s, r: r, maxChunk: 1392}
			rt.rng = newRand(uint64(w))
			for i := range frames {
				size := MinFrameLen + (i*7919+w*104729)%(MaxFrameLen-MinFrameLen)
				frame := randomBytes(uint64(i), size)
				chunks := splitAll(s, nil, frame, 1392)
				rt.order(len(chunks), shuffled)
				for k, j := range rt.seq {
					f, ok := r.Add(peer, chunks[j], t0)
					if ok != (k == len(chunks)-1) {
						t.Errorf("worker %d frame %d: chunk %d of %d completed: %v", w, i, k, len(chunks), ok)
						return
					}
					if ok {
						if !bytes.Equal(f.Data, frame) {
							t.Errorf("worker %d frame %d: content differs", w, i)
						}
						r.Release(f)
					}
				}
			}
		}()
	}
	wg.Wait()
	if st := r.Stats(); st.InProgress != 0 || st.BytesHeld != 0 || st.Reassembled+st.Whole != uint64(workers*frames) {
		t.Errorf("stats %+v", st)
	}
	checkInvariants(t, r)
}
