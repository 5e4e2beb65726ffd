package capture

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/l2wg/l2wg/bridge"
)

// The capture stream on the control socket, after the request line
// "capture <Request as JSON>": one line of Header as JSON, then
// records: 'F' and a frame (frameHeader bytes, then the data), and a
// last 'E' record with a 4-byte length and a Summary as JSON. All
// integers are big-endian.

type Request struct {
	Port      string        `json:"port,omitempty"` // "": every port
	Direction string        `json:"direction"`      // in, out, inout
	Count     int           `json:"count"`          // 0: no bound
	Duration  time.Duration `json:"duration"`       // 0: no bound
	Snaplen   int           `json:"snaplen"`
}

type Header struct {
	Error string       `json:"error,omitempty"`
	Ports []HeaderPort `json:"ports,omitempty"` // the ports captured
}

type HeaderPort struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

type Summary struct {
	Frames  uint64 `json:"frames"`
	Dropped uint64 `json:"dropped"` // lost because the reader fell behind
	Reason  string `json:"reason"`  // count, duration, shutdown
}

// frameHeader: time (unix ns, 8), port (2), direction (1), frame
// length (4), captured length (4).
const frameHeader = 8 + 2 + 1 + 4 + 4

// maxData bounds the captured length a client accepts in a record.
const maxData = 1 << 20

func writeFrame(w io.Writer, f Frame) error {
	var h [1 + frameHeader]byte
	h[0] = 'F'
	binary.BigEndian.PutUint64(h[1:], uint64(f.At.UnixNano()))
	binary.BigEndian.PutUint16(h[9:], uint16(f.Port))
	h[11] = byte(f.Dir)
	binary.BigEndian.PutUint32(h[12:], uint32(f.Len))
	binary.BigEndian.PutUint32(h[16:], uint32(len(f.Data)))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(f.Data)
	return err
}

func writeEnd(w io.Writer, sum Summary) error {
	js, _ := json.Marshal(sum)
	var h [5]byte
	h[0] = 'E'
	binary.BigEndian.PutUint32(h[1:], uint32(len(js)))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(js)
	return err
}

// readRecord reads one record: a frame, or (end true) the summary.
func readRecord(r *bufio.Reader) (f Frame, sum Summary, end bool, err error) {
	kind, err := r.ReadByte()
	if err != nil {
		return f, sum, false, err
	}
	switch kind {
	case 'F':
		var h [frameHeader]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return f, sum, false, noEOF(err)
		}
		f.At = time.Unix(0, int64(binary.BigEndian.Uint64(h[0:])))
		f.Port = bridge.PortID(binary.BigEndian.Uint16(h[8:]))
		f.Dir = Dir(h[10])
		f.Len = int(binary.BigEndian.Uint32(h[11:]))
		capLen := binary.BigEndian.Uint32(h[15:])
		if capLen > maxData || int(capLen) > f.Len {
			return f, sum, false, fmt.Errorf("capture stream: bad frame record (%d of %d bytes)", capLen, f.Len)
		}
		f.Data = make([]byte, capLen)
		if _, err := io.ReadFull(r, f.Data); err != nil {
			return f, sum, false, noEOF(err)
		}
		return f, sum, false, nil
	case 'E':
		var h [4]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return f, sum, false, noEOF(err)
		}
		size := binary.BigEndian.Uint32(h[:])
		if size > 4096 {
			return f, sum, false, errors.New("capture stream: summary too long")
		}
		js := make([]byte, size)
		if _, err := io.ReadFull(r, js); err != nil {
			return f, sum, false, noEOF(err)
		}
		if err := json.Unmarshal(js, &sum); err != nil {
			return f, sum, false, fmt.Errorf("capture stream: summary: %w", err)
		}
		return f, sum, true, nil
	}
	return f, sum, false, fmt.Errorf("capture stream: unknown record %q", kind)
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
