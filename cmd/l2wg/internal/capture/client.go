package capture

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/control"
)

// The client side of l2wg capture: it asks the daemon for a capture over
// the control socket and writes the frames it streams to a pcap file.

// pcapSink writes frames to a pcap file (nanosecond timestamps, Ethernet).
type pcapSink struct {
	bw     *bufio.Writer
	pw     *pcapWriter
	live   bool // flush after every frame (a pipe to tcpdump -r -)
	frames int
}

func newPcapSink(w io.Writer, snaplen int, live bool) (*pcapSink, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	pw := newPcapWriter(bw)
	if err := pw.writeFileHeader(uint32(snaplen)); err != nil {
		return nil, err
	}
	if live {
		if err := bw.Flush(); err != nil {
			return nil, err
		}
	}
	return &pcapSink{bw: bw, pw: pw, live: live}, nil
}

func (p *pcapSink) write(f Frame) error {
	if err := p.pw.writePacket(f.At, f.Data, f.Len); err != nil {
		return err
	}
	p.frames++
	if p.live {
		return p.bw.Flush()
	}
	return nil
}

func (p *pcapSink) flush() error { return p.bw.Flush() }

// Run asks the daemon at addr for a capture and writes it to out.
func Run(addr string, req Request, out string, stdout, stderr io.Writer) error {
	c, r, hdr, err := open(addr, req)
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
		strings.Join(names, ", "), req.Direction, Bounds(req), out)

	interrupted, release := stopOnSignal(c)
	defer release()
	sum, streamErr, err := copyStream(r, sink, interrupted)
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

// open sends the capture request and reads the daemon's header.
func open(addr string, req Request) (net.Conn, *bufio.Reader, Header, error) {
	var hdr Header
	js, _ := json.Marshal(req)
	c, err := control.Dial(addr, "capture "+string(js), 5*time.Second)
	if err != nil {
		return nil, nil, hdr, fmt.Errorf("capture: %w", err)
	}
	r := bufio.NewReaderSize(c, 64<<10)
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

// copyStream writes the stream's frames to sink until its summary. A
// stream that breaks off is streamErr (not when interrupted: the user cut
// it); a failing sink is err.
func copyStream(r *bufio.Reader, sink *pcapSink, interrupted func() bool) (sum Summary, streamErr, err error) {
	for {
		f, s, end, err := readRecord(r)
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

func Bounds(req Request) string {
	switch {
	case req.Count > 0 && req.Duration > 0:
		return fmt.Sprintf("up to %d frames or %s", req.Count, req.Duration)
	case req.Count > 0:
		return fmt.Sprintf("up to %d frames", req.Count)
	default:
		return fmt.Sprintf("for %s", req.Duration)
	}
}
