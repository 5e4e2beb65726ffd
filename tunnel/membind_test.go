package tunnel

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
)

// memNet is an in-memory UDP network of wireguard-go binds that, unlike
// conn/bindtest, allocates nothing per datagram: every node owns a fixed set
// of datagram buffers, a sender copies into one of the receiver's free
// buffers and the receiver copies out and frees it. A sender blocks while
// the receiver has no free buffer (a socket's send buffer), so a benchmark
// loses nothing. A node can be cut off: datagrams to and from it vanish, as
// on an underlay whose cable is pulled.
type memNet struct {
	nodes []*memNode
}

const (
	memDatagramLen = 4096 // > DefaultMTU + WireGuard's overhead
	memBuffers     = 1024 // per node
)

type memDatagram struct {
	buf  *[memDatagramLen]byte
	n    int
	from *memNode
}

type memNode struct {
	net  *memNet
	ep   conn.Endpoint // this node's address, boxed once
	port uint16
	rx   chan memDatagram
	free chan *[memDatagramLen]byte
	cut  atomic.Bool
	// delay holds every datagram to the node this long (ns; 0: none), as
	// a long path would.
	delay atomic.Int64

	mu     sync.Mutex // protects closed
	closed chan struct{}
}

// memEndpoint is a node's address: 127.0.0.1:port, port = index+1.
type memEndpoint struct{ port uint16 }

func (e *memEndpoint) ClearSrc()           {}
func (e *memEndpoint) SrcToString() string { return "" }
func (e *memEndpoint) DstToString() string { return fmt.Sprintf("127.0.0.1:%d", e.port) }
func (e *memEndpoint) DstToBytes() []byte  { return []byte{byte(e.port >> 8), byte(e.port)} }
func (e *memEndpoint) DstIP() netip.Addr   { return netip.AddrFrom4([4]byte{127, 0, 0, 1}) }
func (e *memEndpoint) SrcIP() netip.Addr   { return netip.Addr{} }

// newMemNet makes n nodes; node i listens at 127.0.0.1:i+1.
func newMemNet(n int) *memNet {
	m := &memNet{}
	for i := range n {
		nd := &memNode{
			net:    m,
			port:   uint16(i + 1),
			rx:     make(chan memDatagram, memBuffers),
			free:   make(chan *[memDatagramLen]byte, memBuffers),
			closed: make(chan struct{}),
		}
		nd.ep = &memEndpoint{port: nd.port}
		for range memBuffers {
			nd.free <- new([memDatagramLen]byte)
		}
		m.nodes = append(m.nodes, nd)
	}
	return m
}

// bind returns node i as a conn.Bind.
func (m *memNet) bind(i int) conn.Bind { return m.nodes[i] }

var _ conn.Bind = (*memNode)(nil)

func (nd *memNode) Open(uint16) ([]conn.ReceiveFunc, uint16, error) {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	select {
	case <-nd.closed:
		nd.closed = make(chan struct{})
	default:
	}
	closed := nd.closed
	recv := func(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		var d memDatagram
		select {
		case d = <-nd.rx:
		case <-closed:
			return 0, net.ErrClosed
		}
		n := 0
		for {
			sizes[n] = copy(bufs[n], d.buf[:d.n])
			eps[n] = d.from.ep
			nd.free <- d.buf
			n++
			if n == len(bufs) {
				return n, nil
			}
			select {
			case d = <-nd.rx:
			default:
				return n, nil
			}
		}
	}
	return []conn.ReceiveFunc{recv}, nd.port, nil
}

func (nd *memNode) Close() error {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	select {
	case <-nd.closed:
	default:
		close(nd.closed)
	}
	return nil
}

func (nd *memNode) SetMark(uint32) error { return nil }
func (nd *memNode) BatchSize() int       { return conn.IdealBatchSize }

func (nd *memNode) ParseEndpoint(s string) (conn.Endpoint, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return nil, err
	}
	i := int(ap.Port()) - 1
	if i < 0 || i >= len(nd.net.nodes) {
		return nil, fmt.Errorf("no node at %s", s)
	}
	return nd.net.nodes[i].ep, nil
}

func (nd *memNode) Send(bufs [][]byte, ep conn.Endpoint) error {
	e, ok := ep.(*memEndpoint)
	if !ok || int(e.port) < 1 || int(e.port) > len(nd.net.nodes) {
		return net.ErrClosed
	}
	to := nd.net.nodes[e.port-1]
	nd.mu.Lock()
	closed := nd.closed
	nd.mu.Unlock()
	to.mu.Lock()
	gone := to.closed // a closed receiver frees no more buffers
	to.mu.Unlock()
	if nd.cut.Load() || to.cut.Load() {
		return nil // the underlay eats them
	}
	for _, b := range bufs {
		var buf *[memDatagramLen]byte
		select {
		case buf = <-to.free:
		case <-closed:
			return net.ErrClosed
		case <-gone:
			return nil // sent into the void
		}
		n := copy(buf[:], b)
		d := memDatagram{buf: buf, n: n, from: nd}
		if delay := time.Duration(to.delay.Load()); delay > 0 {
			time.AfterFunc(delay, func() { to.rx <- d })
			continue
		}
		to.rx <- d
	}
	return nil
}

// memTunnels builds n tunnels on one memNet, every one peered with every
// other: tunnel i's peer j is named "j" and reachable at node j.
func memTunnels(t testing.TB, n int, newSwitch func() Switch) (*memNet, []*Tunnel) {
	t.Helper()
	return memTunnelsWith(t, n, newSwitch, nil)
}

// memTunnelsWith is memTunnels with every peer's configuration passed
// through mod first (nil: none).
func memTunnelsWith(t testing.TB, n int, newSwitch func() Switch, mod func(*PeerConfig)) (*memNet, []*Tunnel) {
	t.Helper()
	m := newMemNet(n)
	keys := make([][32]byte, n)
	for i := range keys {
		keys[i] = genKey(t)
	}
	tns := make([]*Tunnel, n)
	for i := range tns {
		tn, err := New(Config{PrivateKey: keys[i], ListenPort: i + 1, Bind: m.bind(i), Logger: quiet}, newSwitch())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tn.Close() })
		tns[i] = tn
	}
	for i, tn := range tns {
		for j := range tns {
			if j == i {
				continue
			}
			pc := PeerConfig{Name: fmt.Sprint(j), PublicKey: PublicKey(keys[j]), Endpoint: fmt.Sprintf("127.0.0.1:%d", j+1)}
			if mod != nil {
				mod(&pc)
			}
			if _, err := tn.AddPeer(pc); err != nil {
				t.Fatal(err)
			}
		}
		if err := tn.Up(); err != nil {
			t.Fatal(err)
		}
	}
	waitSessions(t, tns...)
	return m, tns
}

// waitSessions asks for handshakes until every peer of every tunnel has a
// session: without one, frames are withheld (session.go).
func waitSessions(t testing.TB, tns ...*Tunnel) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		missing := 0
		for _, tn := range tns {
			for _, p := range tn.Peers() {
				if !p.hasSession(time.Now()) {
					missing++
					tn.Nudge(p)
				}
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d peers have no session after 30 s", missing)
		}
		time.Sleep(20 * time.Millisecond) // polling a state with a deadline
	}
}
