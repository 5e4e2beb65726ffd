package bridge

import (
	"testing"
	"time"
)

func TestStormControlLimitsFloodingOnly(t *testing.T) {
	tb := newTestBridge(t, 3, Config{})
	tb.SetStormLimit(tb.ids[0], 100)
	src := []byte{2, 0, 0, 0, 0, 1}
	bcast := append(append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, src...), 0x08, 0x00)
	// Teach the switch where 02:00:00:00:00:02 is, for the known-unicast part.
	tb.send(1, append(append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 2, 0, 0, 0, 0, 2), 0x08, 0x00))
	tb.ports[0].take()
	tb.ports[2].take()
	known := append(append([]byte{2, 0, 0, 0, 0, 2}, src...), 0x08, 0x00)

	burst := func(data []byte, n int) {
		frames := make([]Frame, n)
		for i := range frames {
			frames[i] = Frame{Data: data}
		}
		tb.Input(tb.ids[0], frames)
	}
	cases := []struct {
		name      string
		advance   time.Duration
		data      []byte
		send      int
		delivered int // to port 1
	}{
		{"burst of broadcasts: one second's worth passes", 0, bcast, 1000, 100},
		{"bucket empty", 0, bcast, 10, 0},
		{"known unicast is never limited", 0, known, 500, 500},
		{"half a second refills half", 500 * time.Millisecond, bcast, 1000, 50},
		{"a long pause refills no more than the burst", time.Hour, bcast, 1000, 100},
	}
	for _, c := range cases {
		tb.clock.Advance(c.advance)
		before := tb.Stats().Drops[DropStorm]
		burst(c.data, c.send)
		got := len(tb.ports[1].takeFrames())
		tb.ports[2].take()
		if got != c.delivered {
			t.Errorf("%s: %d of %d frames delivered, want %d", c.name, got, c.send, c.delivered)
		}
		if drops := tb.Stats().Drops[DropStorm] - before; int(drops) != c.send-c.delivered {
			t.Errorf("%s: %d storm drops counted, want %d", c.name, drops, c.send-c.delivered)
		}
	}
	tb.SetStormLimit(tb.ids[0], 0)
	burst(bcast, 1000)
	if got := len(tb.ports[1].takeFrames()); got != 1000 {
		t.Errorf("with the limit off, %d of 1000 broadcasts delivered", got)
	}
}
