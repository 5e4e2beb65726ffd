package node

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/l2wg/l2wg/bridge"
)

type rttFake struct {
	id  bridge.PortID
	rtt time.Duration
}

func (p rttFake) PortID() bridge.PortID { return p.id }
func (p rttFake) Name() string          { return "hv2" }
func (p rttFake) MinRTT() time.Duration { return p.rtt }

// The bug read in the old code: a reload that turned a peer's cost from
// auto to fixed set the cost first and cleared the auto mark after, so the
// auto-cost loop, running in between, could put its cost over the fixed
// one. Here the loop runs exactly then: from inside the tree's SetPortCost
// of the fixed cost, given up to a second to finish.
func TestFixedCostWinsOverAutoLoop(t *testing.T) {
	const id, fixed = bridge.PortID(2), 700
	var a autoCosts
	a.mark(id, true)
	var mu sync.Mutex
	var applied []uint32
	var loop sync.WaitGroup
	port := []rttPort{rttFake{id, 20 * time.Millisecond}} // auto: 100 + 200
	var apply setCost
	apply = func(_ bridge.PortID, cost uint32) error {
		mu.Lock()
		applied = append(applied, cost)
		mu.Unlock()
		if cost != fixed {
			return nil
		}
		loop.Add(1)
		finished := make(chan struct{})
		go func() {
			defer loop.Done()
			defer close(finished)
			a.update(port, apply, slog.New(slog.DiscardHandler))
		}()
		select {
		case <-finished: // the loop got in between
		case <-time.After(time.Second): // it waits for the cost change to end
		}
		return nil
	}
	if err := a.set(id, fixed, apply); err != nil {
		t.Fatal(err)
	}
	loop.Wait()
	mu.Lock()
	defer mu.Unlock()
	if last := applied[len(applied)-1]; last != fixed {
		t.Errorf("costs applied %v: the auto loop overwrote the fixed cost %d", applied, fixed)
	}
	a.update(port, apply, slog.New(slog.DiscardHandler))
	if last := applied[len(applied)-1]; last != fixed {
		t.Errorf("costs applied %v: a later auto round moved the fixed cost", applied)
	}
}
