package capture

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/l2wg/l2wg/bridge"
)

// serveCapture runs a capture for a control connection until its bound, the
// client's hangup or the node's shutdown.
// Ports is the switch as a capture sees it: its ports by name.
type Ports interface{ Ports() []bridge.PortInfo }

// Serve runs a capture for a control connection until its bound, the
// client's hangup or done; request is the JSON of a Request.
func (t *Taps) Serve(c net.Conn, request string, sw Ports, done <-chan struct{}, log *slog.Logger) {
	c.SetDeadline(time.Time{})
	enc := json.NewEncoder(c)
	var req Request
	if err := json.Unmarshal([]byte(request), &req); err != nil {
		enc.Encode(Header{Error: fmt.Sprintf("bad capture request: %v", err)})
		return
	}
	s, ports, err := newSessionFor(req, sw)
	if err != nil {
		enc.Encode(Header{Error: err.Error()})
		return
	}
	t.start(s)
	defer t.stop(s)
	c.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := enc.Encode(Header{Ports: ports}); err != nil {
		return
	}
	log.Info("capture started", "port", orAll(req.Port), "direction", s.dir.String(), "count", req.Count, "duration", req.Duration)

	// The client half-closes its side to stop early (Ctrl-C): it still reads
	// the summary.
	gone := make(chan struct{})
	go func() {
		io.Copy(io.Discard, c)
		close(gone)
	}()
	var timeout <-chan time.Time
	if req.Duration > 0 {
		t := time.NewTimer(req.Duration)
		defer t.Stop()
		timeout = t.C
	}
	w := bufio.NewWriterSize(c, 64<<10)
	sum := Summary{Reason: "count"}
loop:
	for req.Count == 0 || sum.Frames < uint64(req.Count) {
		select {
		case f := <-s.frames:
			s.queued.Add(-int64(len(f.Data)))
			c.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := writeFrame(w, f); err != nil {
				log.Info("capture ended: client gone", "frames", sum.Frames, "err", err)
				return
			}
			sum.Frames++
			if len(s.frames) == 0 {
				if err := w.Flush(); err != nil {
					log.Info("capture ended: client gone", "frames", sum.Frames, "err", err)
					return
				}
			}
		case <-timeout:
			sum.Reason = "duration"
			break loop
		case <-done:
			sum.Reason = "shutdown"
			break loop
		case <-gone:
			sum.Reason = "stopped"
			break loop
		}
	}
	t.stop(s)
	sum.Dropped = s.dropped.Load()
	c.SetWriteDeadline(time.Now().Add(writeTimeout))
	writeEnd(w, sum)
	w.Flush()
	log.Info("capture ended", "frames", sum.Frames, "dropped", sum.Dropped, "reason", sum.Reason)
}

// newSessionFor checks a request and makes its session; ports are the ports
// it captures.
func newSessionFor(req Request, sw Ports) (*session, []HeaderPort, error) {
	dir, err := ParseDir(req.Direction)
	if err != nil {
		return nil, nil, err
	}
	if req.Count < 0 || req.Duration < 0 || (req.Count == 0 && req.Duration == 0) {
		return nil, nil, errors.New("a capture needs a positive count or duration")
	}
	snaplen := req.Snaplen
	if snaplen <= 0 || snaplen > DefaultSnaplen {
		snaplen = DefaultSnaplen
	}
	var id bridge.PortID
	var ports []HeaderPort
	var names []string
	for _, p := range sw.Ports() {
		names = append(names, p.Name)
		if req.Port == "" || req.Port == p.Name {
			ports = append(ports, HeaderPort{ID: int(p.ID), Name: p.Name})
			if req.Port != "" && id == 0 {
				id = p.ID
			}
		}
	}
	if req.Port != "" && id == 0 {
		return nil, nil, fmt.Errorf("no port %q (ports: %s)", req.Port, strings.Join(names, ", "))
	}
	if id != 0 {
		ports = ports[:1]
	}
	return newSession(id, dir, snaplen, req.Count), ports, nil
}

func orAll(port string) string {
	if port == "" {
		return "*"
	}
	return port
}
