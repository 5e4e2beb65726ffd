package control

import (
	"bufio"
	"encoding/json"
	"net"
	"strings"
	"time"
)

// Handler is what the control socket asks of a running node. A node that
// runs the mesh protocol also implements MeshViewer.
type Handler interface {
	// Status is the node's state; withFDB adds the forwarding database.
	Status(withFDB bool) Status
	// Reload applies node.toml anew.
	Reload() ReloadResult
	// Capture streams a capture to c until its bound (package capture);
	// request is the JSON after "capture ".
	Capture(c net.Conn, request string)
}

// requestTimeout bounds reading a request and writing a JSON answer.
const requestTimeout = 5 * time.Second

// Serve answers one request per connection accepted on l until l is
// closed.
func Serve(l net.Listener, h Handler) {
	for {
		c, err := l.Accept()
		if err != nil {
			return // closed
		}
		go ServeConn(c, h)
	}
}

// ServeConn answers the one request of c, then closes it.
func ServeConn(c net.Conn, h Handler) {
	defer c.Close()
	if !PeerAllowed(c) {
		return
	}
	c.SetDeadline(time.Now().Add(requestTimeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return
	}
	line = strings.TrimSpace(line)
	if arg, ok := strings.CutPrefix(line, "capture "); ok {
		h.Capture(c, arg)
		return
	}
	enc := json.NewEncoder(c)
	switch line {
	case "status", "fdb":
		st := h.Status(line == "fdb")
		if st.Mesh == nil {
			st.Mesh = MeshOf(h)
		}
		enc.Encode(st)
	case "mesh":
		if m := MeshOf(h); m != nil {
			enc.Encode(meshAnswer{Mesh: m})
		} else {
			enc.Encode(meshAnswer{Error: NoMesh})
		}
	case "reload":
		c.SetDeadline(time.Now().Add(reloadTimeout))
		enc.Encode(h.Reload())
	default:
		enc.Encode(map[string]string{"error": "unknown request"})
	}
}
