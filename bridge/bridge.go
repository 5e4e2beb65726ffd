package bridge

import (
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/l2wg/l2wg/frag"
)

// Defaults for Config fields left zero.
const (
	DefaultAgeingTime = 300 * time.Second // 802.1D's recommended ageing time
	DefaultMaxEntries = 32768
)

// Frame is one Ethernet frame with its offload metadata.
type Frame struct {
	// Offload is opaque offload metadata carried unchanged, as frag carries
	// it through the tunnel; zero when none. The switch never interprets it:
	// its layout is tap.VNetHdr's.
	Offload [frag.OffloadLen]byte
	// Data is the Ethernet frame from the destination MAC on, without FCS.
	Data []byte
	// Head, when not empty, goes in front of Data on the way out: the mesh
	// port's data header, which it hands its links apart from the frame
	// so that it copies no frame (MeshPort.AddLink). A port that sends a
	// frame on sends Head and then Data. Frames from the switch to its
	// other ports (the TAP) and frames into the switch have none.
	Head []byte
}

// Clock tells the time. The FDB ages by it; tests inject a fake.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Config configures a Bridge. The zero value is usable.
type Config struct {
	AgeingTime time.Duration // FDB entry lifetime; zero or less: DefaultAgeingTime
	MaxEntries int           // FDB size limit; zero or less: DefaultMaxEntries
	Clock      Clock         // nil: the system clock
	Logger     *slog.Logger  // nil: slog.Default()
	// Protocol names the protocol this node's peers should speak, for the
	// log line of a peer that speaks another ("rstp", "stp"; "":
	// "spanning-tree"). A node with a MeshPort speaks "shortest-path".
	Protocol string
}

// Bridge is a learning switch. All its methods are safe for concurrent use.
type Bridge struct {
	log      *slog.Logger
	clock    Clock
	epoch    time.Time // FDB timestamps are nanoseconds since epoch
	protocol string    // Config.Protocol

	portsMu sync.Mutex                // serializes AddPort and RemovePort
	ports   atomic.Pointer[portTable] // read lock-free; replaced under portsMu

	fdb          fdb
	vlanFiltered atomic.Int32 // ports with a VLAN filter; changed under portsMu

	controlMu    sync.Mutex             // serializes control address updates
	controlAddrs atomic.Pointer[macSet] // replaced under controlMu
	control      atomic.Pointer[func(in PortID, f Frame)]

	mesh atomic.Pointer[MeshPort] // set by AttachMesh

	drops dropCounters
}

// New returns a bridge with no ports.
func New(cfg Config) *Bridge {
	if cfg.AgeingTime <= 0 {
		cfg.AgeingTime = DefaultAgeingTime
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.Clock == nil {
		cfg.Clock = systemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Protocol == "" {
		cfg.Protocol = "spanning-tree"
	}
	b := &Bridge{
		log:      cfg.Logger,
		clock:    cfg.Clock,
		protocol: cfg.Protocol,
	}
	b.epoch = b.clock.Now()
	b.ports.Store(&portTable{})
	b.fdb.init(cfg.MaxEntries, cfg.AgeingTime)
	return b
}

// now reads the clock: nanoseconds since the bridge's epoch.
func (b *Bridge) now() int64 { return int64(b.clock.Now().Sub(b.epoch)) }

// SetAgeingTime sets the FDB entry lifetime, for example to the forward delay
// while a spanning tree topology change is in progress. It applies at once to
// every entry, the ones learned before included. Zero or less makes every
// entry expire at once: the bridge floods everything, like a hub.
func (b *Bridge) SetAgeingTime(d time.Duration) {
	b.fdb.ageing.Store(int64(max(d, 0)))
}

// AgeingTime returns the FDB entry lifetime.
func (b *Bridge) AgeingTime() time.Duration { return time.Duration(b.fdb.ageing.Load()) }

// SetControlHandler sets the function that receives control frames: frames to
// the 802.1D reserved group addresses 01:80:C2:00:00:00 to 01:80:C2:00:00:0F
// (BPDUs and the like) and to every address added with AddControlAddress.
// Control frames are never forwarded as data; they go to h whatever the state
// of the port they came in on. Without a handler (h nil) they are dropped and
// counted.
//
// h runs on the goroutine that called Input, after Input has delivered the
// data frames of the same call. It must not retain f.Data after it returns.
func (b *Bridge) SetControlHandler(h func(in PortID, f Frame)) {
	if h == nil {
		b.control.Store(nil)
		return
	}
	b.control.Store(&h)
}

// AddControlAddress makes m a control address (see SetControlHandler), for
// example the private group address that carries l2wg's spanning tree where
// the host bridge runs none.
func (b *Bridge) AddControlAddress(m MAC) {
	b.controlMu.Lock()
	defer b.controlMu.Unlock()
	var list []MAC
	if s := b.controlAddrs.Load(); s != nil {
		if s.contains(m) {
			return
		}
		list = s.list
	}
	b.controlAddrs.Store(newMACSet(append(slices.Clip(list), m)))
}

// RemoveControlAddress undoes AddControlAddress. The 802.1D reserved group
// addresses stay control addresses.
func (b *Bridge) RemoveControlAddress(m MAC) {
	b.controlMu.Lock()
	defer b.controlMu.Unlock()
	s := b.controlAddrs.Load()
	if !s.contains(m) {
		return
	}
	b.controlAddrs.Store(newMACSet(slices.DeleteFunc(slices.Clone(s.list), func(x MAC) bool { return x == m })))
}

// isControl reports whether frames to dst go to the control handler.
func isControl(dst MAC, extra *macSet) bool {
	return dst.isReservedGroup() || extra.contains(dst)
}

// Stats returns a bridge-wide snapshot.
func (b *Bridge) Stats() Stats {
	return Stats{
		FDBEntries:   b.fdb.len(),
		FDBLimit:     b.fdb.limit,
		StationMoves: b.fdb.moves.Load(),
		Drops:        b.drops.load(),
	}
}
