package lab

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// run feeds n frames of size bytes, one every gap, through a fresh shaper
// and returns their fates.
func runShaper(im Impairment, seed int64, n, size int, gap time.Duration) []fate {
	s := newShaper(im, seed, 0, 0)
	fates := make([]fate, n)
	for i := range fates {
		fates[i] = s.decide(time.Duration(i)*gap, size)
	}
	return fates
}

func TestShaperSameSeedSameFates(t *testing.T) {
	im := Impairment{Delay: 10 * time.Millisecond, Jitter: 3 * time.Millisecond, Loss: 0.05, Duplicate: 0.02, Reorder: 0.03, ReorderDelay: time.Millisecond}
	a := runShaper(im, 42, 5000, 1000, 100*time.Microsecond)
	b := runShaper(im, 42, 5000, 1000, 100*time.Microsecond)
	c := runShaper(im, 43, 5000, 1000, 100*time.Microsecond)
	same := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("frame %d: seed 42 gave %+v, then %+v", i, a[i], b[i])
		}
		if a[i] == c[i] {
			same++
		}
	}
	if same > len(a)/2 {
		t.Errorf("seeds 42 and 43 agree on %d of %d fates", same, len(a))
	}
	// The directions of a link and the links of a lab draw from streams
	// of their own.
	x, y := newShaper(im, 42, 0, 0), newShaper(im, 42, 0, 1)
	if x.rng.Uint64() == y.rng.Uint64() {
		t.Error("both directions of a link draw the same numbers")
	}
}

func TestShaperFateOfFrameNDoesNotDependOnEarlierFates(t *testing.T) {
	// Frame i draws the same numbers whether or not frame i-1 was lost:
	// with and without loss, the frames that survive have the same jitter.
	base := Impairment{Delay: 10 * time.Millisecond, Jitter: 5 * time.Millisecond}
	lossy := base
	lossy.Loss = 0.3
	a := runShaper(base, 7, 2000, 100, 20*time.Millisecond) // gaps above the jitter: order never binds
	b := runShaper(lossy, 7, 2000, 100, 20*time.Millisecond)
	for i := range a {
		if b[i].Drop == keep && a[i].Due != b[i].Due {
			t.Fatalf("frame %d: due %v without loss, %v with", i, a[i].Due, b[i].Due)
		}
	}
}

func TestShaperRates(t *testing.T) {
	tests := []struct {
		name string
		im   Impairment
		want func(f fate) bool
		p    float64
	}{
		{"loss 1%", Impairment{Loss: 0.01}, func(f fate) bool { return f.Drop == dropLoss }, 0.01},
		{"loss 25%", Impairment{Loss: 0.25}, func(f fate) bool { return f.Drop == dropLoss }, 0.25},
		{"duplicate 2%", Impairment{Duplicate: 0.02}, func(f fate) bool { return f.Duplicate }, 0.02},
		{"reorder 5%", Impairment{Reorder: 0.05, ReorderDelay: time.Millisecond}, func(f fate) bool { return f.Reordered }, 0.05},
		{"nothing", Impairment{}, func(f fate) bool { return f.Drop != keep || f.Duplicate || f.Reordered }, 0},
	}
	const n = 100000
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			count := 0
			for _, f := range runShaper(tt.im, 1, n, 100, time.Millisecond) {
				if tt.want(f) {
					count++
				}
			}
			got := float64(count) / n
			// Four standard deviations of a binomial proportion.
			tol := 4 * math.Sqrt(tt.p*(1-tt.p)/n)
			if math.Abs(got-tt.p) > tol {
				t.Errorf("rate %.4f, want %.4f +- %.4f", got, tt.p, tol)
			}
		})
	}
}

func TestShaperDelayAndJitterKeepOrder(t *testing.T) {
	im := Impairment{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond}
	gap := 100 * time.Microsecond // much closer than the jitter
	fates := runShaper(im, 3, 10000, 1000, gap)
	var lo, hi time.Duration = time.Hour, 0
	for i, f := range fates {
		sent := time.Duration(i) * gap
		d := f.Due - sent
		lo, hi = min(lo, d), max(hi, d)
		if d < im.Delay-im.Jitter {
			t.Fatalf("frame %d delayed %v, below delay-jitter %v", i, d, im.Delay-im.Jitter)
		}
		if i > 0 && f.Due < fates[i-1].Due {
			t.Fatalf("frame %d due %v before frame %d at %v: jitter alone must not reorder", i, f.Due, i-1, fates[i-1].Due)
		}
	}
	if hi < im.Delay+im.Jitter/2 {
		t.Errorf("delays reach up to %v; want about 25ms", hi)
	}
	// Frames further apart than the jitter spread over the whole range.
	lo, hi = time.Hour, 0
	for i, f := range runShaper(im, 3, 1000, 1000, 20*time.Millisecond) {
		d := f.Due - time.Duration(i)*20*time.Millisecond
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo > im.Delay-im.Jitter*9/10 || hi < im.Delay+im.Jitter*9/10 || lo < im.Delay-im.Jitter || hi > im.Delay+im.Jitter {
		t.Errorf("delays spread over [%v, %v]; want about [15ms, 25ms]", lo, hi)
	}
}

func TestShaperReorderLetsLaterFramesPass(t *testing.T) {
	im := Impairment{Delay: 5 * time.Millisecond, Reorder: 0.1, ReorderDelay: 2 * time.Millisecond}
	gap := 200 * time.Microsecond
	fates := runShaper(im, 9, 5000, 1000, gap)
	overtaken := 0
	for i, f := range fates {
		want := time.Duration(i)*gap + im.Delay
		if f.Reordered {
			want += im.ReorderDelay
			if i+1 < len(fates) && !fates[i+1].Reordered && fates[i+1].Due < f.Due {
				overtaken++
			}
		}
		if f.Due != want {
			t.Fatalf("frame %d (reordered %v) due %v, want %v", i, f.Reordered, f.Due, want)
		}
	}
	if overtaken == 0 {
		t.Error("no held-back frame was overtaken")
	}
}

func TestShaperRateSerializesAndDropsAtQueueLimit(t *testing.T) {
	// 8 Mbit/s: a 1000-byte frame takes 1 ms on the wire.
	im := Impairment{Rate: 8e6, Queue: 10 * time.Millisecond, Delay: 2 * time.Millisecond}
	s := newShaper(im, 1, 0, 0)
	// A burst of 20 frames at once: 11 fit (the 11th starts 10 ms late),
	// the rest meet a full queue.
	var kept []fate
	drops := 0
	for range 20 {
		f := s.decide(0, 1000)
		if f.Drop == dropQueue {
			drops++
			continue
		}
		kept = append(kept, f)
	}
	if len(kept) != 11 || drops != 9 {
		t.Fatalf("kept %d, dropped %d; want 11 and 9", len(kept), drops)
	}
	for i, f := range kept {
		want := time.Duration(i+1)*time.Millisecond + im.Delay
		if f.Due != want {
			t.Errorf("frame %d due %v, want %v (serialized at 1 ms a frame, then 2 ms delay)", i, f.Due, want)
		}
	}
	// Once the queue has drained, frames go again.
	if f := s.decide(50*time.Millisecond, 1000); f.Drop != keep || f.Due != 53*time.Millisecond {
		t.Errorf("after draining: %+v, want kept, due 53ms", f)
	}
}

func TestFrameHeapOrder(t *testing.T) {
	var h frameHeap
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 1000 {
		h.push(queued{due: time.Duration(r.IntN(50)), seq: uint64(i)})
	}
	var prev queued
	for i := 0; len(h) > 0; i++ {
		q := h.pop()
		if i > 0 && (q.due < prev.due || (q.due == prev.due && q.seq < prev.seq)) {
			t.Fatalf("pop %d: (%v, %d) after (%v, %d)", i, q.due, q.seq, prev.due, prev.seq)
		}
		prev = q
	}
}

func BenchmarkShaperDecide(b *testing.B) {
	s := newShaper(Impairment{Delay: 10 * time.Millisecond, Jitter: time.Millisecond, Loss: 0.01, Rate: 1e9, Queue: time.Second}, 1, 0, 0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.decide(time.Duration(i)*time.Microsecond, 1500)
	}
}
