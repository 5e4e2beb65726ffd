package tunnel

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// UAPIRefused is the errno a refused "set" operation is answered with
// (EPERM): wg(8) prints "Unable to modify interface: Operation not
// permitted".
const UAPIRefused = unix.EPERM

// maxUAPILine bounds one line of a UAPI request. The longest legitimate line
// is an endpoint with a long IPv6 address; 4 KiB is far beyond it.
const maxUAPILine = 4096

// ServeUAPI speaks wireguard-go's configuration protocol (the one wg(8) uses
// on /var/run/wireguard/<name>.sock) on one connection, until the peer closes
// it or sends something that is not the protocol.
//
// "get=1" is answered with the device's state, as wireguard-go answers it, so
// wg show and wg showconf work. "set=1" is read to its end and refused with
// UAPIRefused, with nothing of it applied: every WireGuard peer is a switch
// port whose life (spanning tree, forwarding database, reassembly) follows
// node.toml, and a change that bypasses it would be half-applied behind the
// switch's back. refused, if not nil, is called for each refused set with the
// distinct keys it carried (never their values, which may be private keys).
func (t *Tunnel) ServeUAPI(rw io.ReadWriter, refused func(keys []string)) error {
	r := bufio.NewReaderSize(rw, maxUAPILine)
	w := bufio.NewWriter(rw)
	for {
		op, err := readUAPILine(r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		switch op {
		case "get=1":
			// The request ends with an empty line.
			if line, err := readUAPILine(r); err != nil {
				return err
			} else if line != "" {
				return fmt.Errorf("uapi get: unexpected %q after get=1", line)
			}
			if err := t.dev.IpcGetOperation(w); err != nil {
				fmt.Fprintf(w, "errno=%d\n\n", -int64(unix.EIO))
			} else {
				fmt.Fprint(w, "errno=0\n\n")
			}
		case "set=1":
			var keys []string
			for {
				line, err := readUAPILine(r)
				if err != nil {
					return err
				}
				if line == "" {
					break
				}
				key, _, _ := strings.Cut(line, "=")
				if !slices.Contains(keys, key) && len(keys) < 32 {
					keys = append(keys, key)
				}
			}
			if refused != nil {
				refused(keys)
			}
			fmt.Fprintf(w, "errno=%d\n\n", -int64(UAPIRefused))
		default:
			return fmt.Errorf("uapi: unknown operation %q", op)
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
}

// readUAPILine reads one line without its newline. A line longer than
// maxUAPILine is an error.
func readUAPILine(r *bufio.Reader) (string, error) {
	line, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", errors.New("uapi: line too long")
	}
	if err != nil {
		if len(line) > 0 && errors.Is(err, io.EOF) {
			return "", io.ErrUnexpectedEOF
		}
		return "", err
	}
	return string(line[:len(line)-1]), nil
}
