package capture

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/control"
)

// sinkPort is a switch port that counts what it is handed.
type sinkPort struct{ frames atomic.Int64 }

func (p *sinkPort) WriteFrames(frames []bridge.Frame) { p.frames.Add(int64(len(frames))) }

// testFrame is a broadcast ARP-sized frame from src.
func testFrame(src byte, size int) []byte {
	f := make([]byte, size)
	copy(f, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, src, 0x08, 0x06})
	return f
}

// captureRig is a switch with two ports behind capture tap points.
type captureRig struct {
	br     *bridge.Bridge
	taps   *Taps
	a, b   bridge.PortID
	pa, pb *sinkPort
}

func newCaptureRig() *captureRig { return newCaptureRigOn(new(Taps)) }

func newCaptureRigOn(taps *Taps) *captureRig {
	r := &captureRig{br: bridge.New(bridge.Config{Logger: slog.New(slog.DiscardHandler)}), taps: taps, pa: new(sinkPort), pb: new(sinkPort)}
	r.a = r.taps.Wrap(r.br).AddPort("a", r.pa)
	r.b = r.taps.Wrap(r.br).AddPort("b", r.pb)
	return r
}

func (r *captureRig) input(in bridge.PortID, data ...[]byte) {
	frames := make([]bridge.Frame, len(data))
	for i := range data {
		frames[i] = bridge.Frame{Data: data[i]}
	}
	r.taps.Wrap(r.br).Input(in, frames)
}

func drain(s *session) []Frame {
	var got []Frame
	for {
		select {
		case f := <-s.frames:
			got = append(got, f)
		default:
			return got
		}
	}
}

func TestCaptureTapPoints(t *testing.T) {
	cases := []struct {
		name string
		port func(*captureRig) bridge.PortID
		dir  Dir
		want []string // port/direction of each captured frame, in order
	}{
		{"every port, both ways", func(*captureRig) bridge.PortID { return 0 }, InOut, []string{"a/in", "b/out"}},
		{"every port, in", func(*captureRig) bridge.PortID { return 0 }, In, []string{"a/in"}},
		{"port b, both ways", func(r *captureRig) bridge.PortID { return r.b }, InOut, []string{"b/out"}},
		{"port a, out", func(r *captureRig) bridge.PortID { return r.a }, Out, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newCaptureRig()
			names := map[bridge.PortID]string{r.a: "a", r.b: "b"}
			s := newSession(c.port(r), c.dir, DefaultSnaplen, 0)
			r.taps.start(s)
			r.input(r.a, testFrame(1, 60))
			r.taps.stop(s)
			r.input(r.a, testFrame(2, 60)) // after stop: not captured
			var got []string
			for _, f := range drain(s) {
				got = append(got, names[f.Port]+"/"+f.Dir.String())
				if f.Len != 60 || len(f.Data) != 60 || f.Data[11] != 1 {
					t.Errorf("captured %d of %d bytes from %x; want frame 1 whole", len(f.Data), f.Len, f.Data[6:12])
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("captured %v; want %v", got, c.want)
			}
			if r.pb.frames.Load() != 2 {
				t.Errorf("port b got %d frames; want 2 (a capture must not change switching)", r.pb.frames.Load())
			}
			if r.taps.sessions.Load() != nil {
				t.Error("sessions not nil after the last capture stopped")
			}
		})
	}
}

func TestCaptureBoundsAndDrops(t *testing.T) {
	r := newCaptureRig()
	// Snaplen and limit: three frames offered, two taken, cut at 20 bytes.
	s := newSession(r.a, In, 20, 2)
	r.taps.start(s)
	r.input(r.a, testFrame(1, 100), testFrame(2, 100), testFrame(3, 100))
	r.taps.stop(s)
	got := drain(s)
	if len(got) != 2 || len(got[0].Data) != 20 || got[0].Len != 100 || got[1].Data[11] != 2 {
		t.Fatalf("limit 2, snaplen 20: got %d frames (%+v)", len(got), got)
	}

	// A reader that does not keep up loses frames, counted; the switch does
	// not wait.
	s = newSession(0, In, DefaultSnaplen, 0)
	r.taps.start(s)
	defer r.taps.stop(s)
	frames := make([][]byte, 64)
	for i := range frames {
		frames[i] = testFrame(byte(i), 64)
	}
	for range queueFrames/64 + 2 {
		r.input(r.a, frames...)
	}
	if n, d := len(s.frames), s.dropped.Load(); n != queueFrames || d != 128 {
		t.Fatalf("queue %d, dropped %d; want %d queued and 128 dropped", n, d, queueFrames)
	}
}

// nopSwitch is a switch that does nothing, to measure the tap points alone.
type nopSwitch struct{}

func (nopSwitch) AddPort(string, bridge.Port) bridge.PortID { return 1 }
func (nopSwitch) RemovePort(bridge.PortID)                  {}
func (nopSwitch) Input(bridge.PortID, []bridge.Frame)       {}

// With no capture running, a tap point allocates nothing and copies nothing.
func TestCaptureOffAllocatesNothing(t *testing.T) {
	taps := new(Taps)
	frames := []bridge.Frame{{Data: testFrame(1, 1514)}, {Data: testFrame(2, 60)}}
	sw := taps.Wrap(nopSwitch{})
	if n := testing.AllocsPerRun(100, func() { sw.Input(1, frames) }); n != 0 {
		t.Errorf("Input with no capture: %v allocations; want 0", n)
	}
	port := &port{taps: taps, dev: new(sinkPort)}
	if n := testing.AllocsPerRun(100, func() { port.WriteFrames(frames) }); n != 0 {
		t.Errorf("WriteFrames with no capture: %v allocations; want 0", n)
	}
}

func TestCaptureStreamAndPcap(t *testing.T) {
	at := time.Unix(1_700_000_000, 123456789)
	in := []Frame{
		{At: at, Port: 1, Dir: In, Len: 60, Data: testFrame(1, 60)},
		{At: at.Add(time.Millisecond), Port: 2, Dir: Out, Len: 9000, Data: testFrame(2, 9000)[:100]},
	}
	var stream bytes.Buffer
	for _, f := range in {
		if err := writeFrame(&stream, f); err != nil {
			t.Fatal(err)
		}
	}
	writeEnd(&stream, Summary{Frames: 2, Dropped: 5, Reason: "count"})

	var pcap bytes.Buffer
	sink, err := newPcapSink(&pcap, 100, false)
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(&stream)
	for i := 0; ; i++ {
		f, sum, end, err := readRecord(r)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if end {
			if sum != (Summary{Frames: 2, Dropped: 5, Reason: "count"}) || i != 2 {
				t.Fatalf("summary %+v after %d frames", sum, i)
			}
			break
		}
		if !f.At.Equal(in[i].At) || f.Port != in[i].Port || f.Dir != in[i].Dir || f.Len != in[i].Len || !bytes.Equal(f.Data, in[i].Data) {
			t.Fatalf("record %d: %+v; want %+v", i, f, in[i])
		}
		if err := sink.write(f); err != nil {
			t.Fatal(err)
		}
	}
	sink.flush()

	pr, err := pcapgo.NewReader(&pcap)
	if err != nil {
		t.Fatal(err)
	}
	// (pcapgo's Reader.Resolution has micro and nano swapped: the timestamps
	// below, to the nanosecond, are the check.)
	if pr.LinkType() != layers.LinkTypeEthernet || pr.Snaplen() != 100 {
		t.Fatalf("pcap header: link %v, snaplen %d", pr.LinkType(), pr.Snaplen())
	}
	for i, want := range in {
		data, ci, err := pr.ReadPacketData()
		if err != nil {
			t.Fatalf("pcap packet %d: %v", i, err)
		}
		if !ci.Timestamp.Equal(want.At) || ci.Length != want.Len || !bytes.Equal(data, want.Data) {
			t.Errorf("pcap packet %d: %v %d bytes of %d; want %v %d of %d", i, ci.Timestamp, len(data), ci.Length, want.At, len(want.Data), want.Len)
		}
	}
	if _, _, err := pr.ReadPacketData(); err != io.EOF {
		t.Errorf("after the last packet: %v; want EOF", err)
	}
}

func TestCaptureStreamRejectsGarbage(t *testing.T) {
	cases := map[string][]byte{
		"unknown record": []byte("X"),
		"short frame":    {'F', 0, 0, 0},
		"cap over len":   append([]byte{'F'}, make([]byte, 8+2+1)...), // len 0, then cap 1 below
		"huge summary":   {'E', 0xff, 0xff, 0xff, 0xff},
	}
	cases["cap over len"] = append(cases["cap over len"], 0, 0, 0, 0, 0, 0, 0, 1, 0xaa)
	for name, data := range cases {
		if _, _, _, err := readRecord(bufio.NewReader(bytes.NewReader(data))); err == nil || err == io.EOF {
			t.Errorf("%s: err %v; want a stream error", name, err)
		}
	}
}

// captureHandler is a node's control handler reduced to capture.
type captureHandler struct {
	taps *Taps
	br   *bridge.Bridge
	done chan struct{}
}

func (h *captureHandler) Status(bool) control.Status   { return control.Status{} }
func (h *captureHandler) Reload() control.ReloadResult { return control.ReloadResult{} }
func (h *captureHandler) Capture(c net.Conn, req string) {
	h.taps.Serve(c, req, h.br, h.done, slog.New(slog.DiscardHandler))
}

// TestCaptureOverControlSocket runs the whole path without root: a control
// socket serves a capture while frames cross a switch, and Run writes the
// pcap file.
func TestCaptureOverControlSocket(t *testing.T) {
	taps := new(Taps)
	r := newCaptureRigOn(taps)
	h := &captureHandler{taps: taps, br: r.br, done: make(chan struct{})}
	sw := taps.Wrap(r.br)
	addr := fmt.Sprintf("@l2wg-capture-test/%d/%d", os.Getpid(), time.Now().UnixNano())
	ln, err := net.Listen("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	var served sync.WaitGroup
	defer served.Wait() // after ln.Close below, which ends the accept loop
	defer ln.Close()
	served.Add(1)
	go func() {
		defer served.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			served.Add(1)
			go func() { defer served.Done(); control.ServeConn(c, h) }()
		}
	}()

	// Traffic: frames from a (in) flood to b (out) until the capture ends.
	stop := make(chan struct{})
	var traffic sync.WaitGroup
	traffic.Add(1)
	go func() {
		defer traffic.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			sw.Input(r.a, []bridge.Frame{{Data: testFrame(byte(i), 60)}})
		}
	}()
	defer func() { close(stop); traffic.Wait() }()

	t.Run("port b, 5 frames", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "b.pcap")
		var stderr bytes.Buffer
		err := Run(addr, Request{Port: "b", Direction: "inout", Count: 5, Snaplen: DefaultSnaplen}, out, io.Discard, &stderr)
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, stderr.String())
		}
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		pr, err := pcapgo.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		count := 0
		for {
			data, _, err := pr.ReadPacketData()
			if err != nil {
				break
			}
			count++
			if eth := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default).Layer(layers.LayerTypeEthernet); eth == nil || eth.(*layers.Ethernet).EthernetType != layers.EthernetTypeARP {
				t.Errorf("packet %d does not decode as an Ethernet ARP frame", count)
			}
		}
		if count != 5 {
			t.Errorf("%d frames in the pcap; want 5; stderr:\n%s", count, stderr.String())
		}
		if !bytes.Contains(stderr.Bytes(), []byte("5 frames written")) {
			t.Errorf("stderr does not report the frames written:\n%s", stderr.String())
		}
	})
	t.Run("duration", func(t *testing.T) {
		start := time.Now()
		err := Run(addr, Request{Direction: "in", Duration: 300 * time.Millisecond, Snaplen: 64}, filepath.Join(t.TempDir(), "d.pcap"), io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 300*time.Millisecond || d > 5*time.Second {
			t.Errorf("a 300ms capture took %v", d)
		}
	})
	t.Run("unknown port", func(t *testing.T) {
		err := Run(addr, Request{Port: "nope", Direction: "in", Count: 1, Snaplen: 64}, filepath.Join(t.TempDir(), "x.pcap"), io.Discard, io.Discard)
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(`no port "nope" (ports: a, b)`)) {
			t.Errorf("capture on an unknown port: %v", err)
		}
	})
	if taps.sessions.Load() != nil {
		t.Error("a session is left running after every capture ended")
	}
}
