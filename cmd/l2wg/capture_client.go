package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// The client side of l2wg capture: it asks the daemon for a capture over
// the control socket and writes the frames it streams to a pcap file.

// pcapSink writes frames to a pcap file (nanosecond timestamps, Ethernet).
type pcapSink struct {
	bw     *bufio.Writer
	pw     *pcapgo.Writer
	live   bool // flush after every frame (a pipe to tcpdump -r -)
	frames int
}

func newPcapSink(w io.Writer, snaplen int, live bool) (*pcapSink, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	pw := pcapgo.NewWriterNanos(bw)
	if err := pw.WriteFileHeader(uint32(snaplen), layers.LinkTypeEthernet); err != nil {
		return nil, err
	}
	if live {
		if err := bw.Flush(); err != nil {
			return nil, err
		}
	}
	return &pcapSink{bw: bw, pw: pw, live: live}, nil
}

func (p *pcapSink) write(f capturedFrame) error {
	ci := gopacket.CaptureInfo{Timestamp: f.At, CaptureLength: len(f.Data), Length: f.Len}
	if err := p.pw.WritePacket(ci, f.Data); err != nil {
		return err
	}
	p.frames++
	if p.live {
		return p.bw.Flush()
	}
	return nil
}

func (p *pcapSink) flush() error { return p.bw.Flush() }

const captureUsage = `usage: l2wg capture [-i tap] [--port NAME] [-Q in|out|inout] -w FILE [-c COUNT] [-d DURATION] [-s SNAPLEN]

Writes the frames the switch of a running l2wg passes through a port (every
port without --port) to FILE in pcap format, for tcpdump -r and Wireshark
("-w -" writes to stdout: l2wg capture -w - | tcpdump -n -r -). Frames are
what the switch sees: whole, before fragmentation, GSO superframes as one.
With every port, a switched frame shows once coming in and once per port it
leaves by; -Q in shows each frame once.

A capture stops after COUNT frames or DURATION, whichever comes first; with
neither given it stops after 1000 frames or 60s. Ctrl-C stops it early; the
file is complete either way. Frames the writer cannot keep up with are
dropped and counted, never held back from the switch.

`

// cmdCapture is `l2wg capture`.
func cmdCapture(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("capture", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, captureUsage)
		fs.PrintDefaults()
	}
	tap := fs.String("i", "", "the TAP `name` of the l2wg to capture on (default: the only one running)")
	port := fs.String("port", "", "capture the switch port `NAME` (a peer's name or the TAP's; default: every port)")
	dirFlag := fs.String("Q", "inout", "`direction`: in (entering the switch), out (leaving it) or inout")
	out := fs.String("w", "", "write the pcap to `FILE` (- for stdout); required")
	count := fs.Int("c", defaultCaptureCount, "stop after `COUNT` frames")
	duration := fs.Duration("d", defaultCaptureDuration, "stop after `DURATION`")
	snaplen := fs.Int("s", defaultSnaplen, "keep the first `SNAPLEN` bytes of each frame")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return &exitError{code: 2}
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("capture: unexpected argument %q", fs.Arg(0))}
	}
	if *out == "" {
		return &exitError{code: 2, err: errors.New("capture: -w FILE is required (- for stdout)")}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	req := captureRequest{Port: *port, Direction: *dirFlag, Count: *count, Duration: *duration, Snaplen: *snaplen}
	switch {
	case set["c"] && !set["d"]:
		req.Duration = 0
	case set["d"] && !set["c"]:
		req.Count = 0
	}
	if (set["c"] && *count <= 0) || (set["d"] && *duration <= 0) {
		return &exitError{code: 2, err: errors.New("capture: -c and -d must be positive")}
	}
	if *snaplen < 64 || *snaplen > defaultSnaplen {
		return &exitError{code: 2, err: fmt.Errorf("capture: -s %d: must be between 64 and %d", *snaplen, defaultSnaplen)}
	}
	if _, err := parseCaptureDir(req.Direction); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("capture: -Q: %w", err)}
	}
	addr, err := findControl(*tap)
	if err != nil {
		return err
	}
	return runCapture(addr, req, *out, stdout, stderr)
}

// runCapture asks the daemon at addr for a capture and writes it to out.
func runCapture(addr string, req captureRequest, out string, stdout, stderr io.Writer) error {
	c, r, hdr, err := openCapture(addr, req)
	if err != nil {
		return err
	}
	defer c.Close()

	var w io.Writer = stdout
	var file *os.File
	if out != "-" {
		if file, err = os.Create(out); err != nil {
			return fmt.Errorf("capture: %w", err)
		}
		defer file.Close()
		w = file
	}
	sink, err := newPcapSink(w, req.Snaplen, out == "-")
	if err != nil {
		return fmt.Errorf("capture: write %s: %w", out, err)
	}
	names := make([]string, len(hdr.Ports))
	for i, p := range hdr.Ports {
		names[i] = p.Name
	}
	fmt.Fprintf(stderr, "l2wg capture: port %s, direction %s, %s; writing %s\n",
		strings.Join(names, ", "), req.Direction, captureBounds(req), out)

	interrupted, release := stopOnSignal(c)
	defer release()
	sum, streamErr, err := copyCapture(r, sink, interrupted)
	if err == nil {
		err = sink.flush()
	}
	if err == nil && file != nil {
		err = file.Close()
	}
	if err != nil {
		return fmt.Errorf("capture: write %s: %w", out, err)
	}
	reason := sum.Reason
	if interrupted() {
		reason = "interrupted"
	}
	fmt.Fprintf(stderr, "l2wg capture: %d frames written to %s (%s); %d dropped because the capture could not keep up\n",
		sink.frames, out, reason, sum.Dropped)
	if streamErr != nil {
		return fmt.Errorf("capture: l2wg stopped streaming: %w (the %d frames written are in %s)", streamErr, sink.frames, out)
	}
	return nil
}

// openCapture sends the capture request and reads the daemon's header.
func openCapture(addr string, req captureRequest) (net.Conn, *bufio.Reader, captureHeader, error) {
	var hdr captureHeader
	c, err := net.DialTimeout("unix", addr, 2*time.Second)
	if err != nil {
		return nil, nil, hdr, fmt.Errorf("no l2wg answers at %s in this network namespace: %w", addr, err)
	}
	js, _ := json.Marshal(req)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReaderSize(c, 64<<10)
	if _, err := fmt.Fprintf(c, "capture %s\n", js); err != nil {
		c.Close()
		return nil, nil, hdr, fmt.Errorf("capture: %w", err)
	}
	line, err := r.ReadBytes('\n')
	if err != nil {
		c.Close()
		return nil, nil, hdr, fmt.Errorf("capture: no answer from l2wg (are you root?): %w", err)
	}
	if err := json.Unmarshal(line, &hdr); err != nil {
		c.Close()
		return nil, nil, hdr, fmt.Errorf("capture: l2wg's answer %q: %w (is it older than l2wg capture?)", bytes.TrimSpace(line), err)
	}
	if hdr.Error != "" {
		c.Close()
		return nil, nil, hdr, fmt.Errorf("capture: %s", hdr.Error)
	}
	c.SetDeadline(time.Time{})
	return c, r, hdr, nil
}

// stopOnSignal makes SIGINT and SIGTERM end the capture: the first
// half-closes the connection, so that the daemon stops and sends its
// summary; a second one, or a daemon that does not answer within 3s, ends it.
func stopOnSignal(c net.Conn) (interrupted func() bool, release func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	var stopped atomic.Bool
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
		case <-done:
			return
		}
		stopped.Store(true)
		if uc, ok := c.(*net.UnixConn); ok {
			uc.CloseWrite()
		}
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		select {
		case <-sigs:
			c.Close()
		case <-done:
		}
	}()
	return stopped.Load, func() {
		signal.Stop(sigs)
		close(done)
	}
}

// copyCapture writes the stream's frames to sink until its summary. A
// stream that breaks off is streamErr (not when interrupted: the user cut
// it); a failing sink is err.
func copyCapture(r *bufio.Reader, sink *pcapSink, interrupted func() bool) (sum captureSummary, streamErr, err error) {
	for {
		f, s, end, err := readCaptureRecord(r)
		if err != nil {
			if !interrupted() {
				streamErr = err
			}
			return sum, streamErr, nil
		}
		if end {
			return s, nil, nil
		}
		if err := sink.write(f); err != nil {
			return sum, nil, err
		}
	}
}

func captureBounds(req captureRequest) string {
	switch {
	case req.Count > 0 && req.Duration > 0:
		return fmt.Sprintf("up to %d frames or %s", req.Count, req.Duration)
	case req.Count > 0:
		return fmt.Sprintf("up to %d frames", req.Count)
	default:
		return fmt.Sprintf("for %s", req.Duration)
	}
}
