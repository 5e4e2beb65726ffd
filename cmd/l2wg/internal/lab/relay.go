package lab

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/netns"
)

// The relay is the lab's impaired cable. For every impaired link it holds a
// TAP at each end, each in its own namespace, and moves frames between them
// through a shaper per direction. It runs as its own process
// (l2wg lab relay -config FILE), started by the lab inside the lab's relay
// namespace, so that lab up can return while it keeps running and deleting
// the lab's namespaces ends it.
//
// Per direction a reader goroutine reads a frame, asks the shaper for its
// fate and queues it by due time; a writer goroutine sleeps until the
// earliest due time and writes what is due. Buffers come from a pool; a
// queued frame costs no allocation.

// relayConfig is the relay's config file, written by the lab.
type relayConfig struct {
	Seed  int64       `json:"seed"`
	Links []relayLink `json:"links"`
}

type relayLink struct {
	Name   string     `json:"name"` // "a-b"
	Index  int        `json:"index"`
	Impair Impairment `json:"impair"`
	A      relayEnd   `json:"a"`
	B      relayEnd   `json:"b"`
}

// relayEnd is a TAP in a namespace.
type relayEnd struct {
	NetNS  string `json:"netns"` // path of the namespace, /run/netns/NAME
	Ifname string `json:"ifname"`
}

// relayStats is the relay's stats file: one entry per link direction.
type relayStats struct {
	Time       time.Time                 `json:"time"`
	Directions map[string]directionStats `json:"directions"` // "a-b a>b"
}

type directionStats struct {
	In          uint64 `json:"in"`
	Out         uint64 `json:"out"`
	Bytes       uint64 `json:"bytes"`
	Lost        uint64 `json:"lost"`
	QueueDrops  uint64 `json:"queue_drops"`
	Overflow    uint64 `json:"overflow"`
	Duplicated  uint64 `json:"duplicated"`
	Reordered   uint64 `json:"reordered"`
	WriteErrors uint64 `json:"write_errors"`
}

// Sizes.
const (
	relayBufLen   = 2048  // a frame of the largest link MTU (2000) with header and tag
	relayMaxQueue = 20000 // frames queued per direction before overflow drops
)

var relayBufs = sync.Pool{New: func() any { b := make([]byte, relayBufLen); return &b }}

// A direction moves frames from one TAP to the other.
type direction struct {
	name    string
	in, out *os.File
	shaper  *shaper
	epoch   time.Time

	mu   sync.Mutex // protects q and seq
	q    frameHeap
	seq  uint64
	wake chan struct{}
	done chan struct{}

	nIn, nOut, bytes, lost, queueDrops, overflow, dups, reordered, writeErrs atomic.Uint64
}

func (d *direction) stats() directionStats {
	return directionStats{
		In: d.nIn.Load(), Out: d.nOut.Load(), Bytes: d.bytes.Load(), Lost: d.lost.Load(),
		QueueDrops: d.queueDrops.Load(), Overflow: d.overflow.Load(), Duplicated: d.dups.Load(),
		Reordered: d.reordered.Load(), WriteErrors: d.writeErrs.Load(),
	}
}

// routineReadFrames reads frames from the input TAP and queues them.
func (d *direction) routineReadFrames() {
	for {
		bp := relayBufs.Get().(*[]byte)
		n, err := d.in.Read(*bp)
		if err != nil {
			relayBufs.Put(bp)
			if errors.Is(err, os.ErrClosed) {
				return
			}
			if errors.Is(err, io.EOF) || errors.Is(err, unix.EBADFD) || errors.Is(err, unix.EIO) {
				time.Sleep(10 * time.Millisecond) // detached or down: wait it out
			}
			continue
		}
		d.nIn.Add(1)
		f := d.shaper.decide(time.Since(d.epoch), n)
		switch f.Drop {
		case dropLoss:
			d.lost.Add(1)
			relayBufs.Put(bp)
			continue
		case dropQueue:
			d.queueDrops.Add(1)
			relayBufs.Put(bp)
			continue
		}
		if f.Reordered {
			d.reordered.Add(1)
		}
		var dup *[]byte
		if f.Duplicate {
			d.dups.Add(1)
			dup = relayBufs.Get().(*[]byte)
			copy(*dup, (*bp)[:n])
		}
		d.mu.Lock()
		for _, b := range []*[]byte{bp, dup} {
			if b == nil {
				continue
			}
			if len(d.q) >= relayMaxQueue {
				d.overflow.Add(1)
				relayBufs.Put(b)
				continue
			}
			d.seq++
			d.q.push(queued{due: f.Due, seq: d.seq, buf: b, n: n})
		}
		d.mu.Unlock()
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

// routineWriteFrames writes queued frames to the output TAP when due.
func (d *direction) routineWriteFrames() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var due [64]queued
	for {
		d.mu.Lock()
		now := time.Since(d.epoch)
		n := 0
		for len(d.q) > 0 && d.q[0].due <= now && n < len(due) {
			due[n] = d.q.pop()
			n++
		}
		var wait time.Duration = -1
		if n == 0 && len(d.q) > 0 {
			wait = d.q[0].due - now
		}
		d.mu.Unlock()
		for i := range due[:n] {
			q := &due[i]
			if _, err := d.out.Write((*q.buf)[:q.n]); err != nil {
				d.writeErrs.Add(1)
			} else {
				d.nOut.Add(1)
				d.bytes.Add(uint64(q.n))
			}
			relayBufs.Put(q.buf)
			*q = queued{}
		}
		if n > 0 {
			continue
		}
		if wait >= 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-d.wake:
			case <-d.done:
				return
			}
			continue
		}
		select {
		case <-d.wake:
		case <-d.done:
			return
		}
	}
}

// openTAP attaches to the existing TAP name in the namespace at nsPath. The
// file is non-blocking, so its reads wait in Go's poller and Close ends them.
func openTAP(nsPath, name string) (*os.File, error) {
	var f *os.File
	err := netns.DoPath(nsPath, func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("open /dev/net/tun: %w", err)
		}
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			unix.Close(fd)
			return err
		}
		ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			return fmt.Errorf("TUNSETIFF: %w", err)
		}
		f = os.NewFile(uintptr(fd), name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("attach tap %s in %s: %w", name, nsPath, err)
	}
	return f, nil
}

// A relay runs the directions of a set of links.
type relay struct {
	dirs  []*direction
	files []*os.File
	done  chan struct{}
}

// newRelay attaches to both TAPs of every link and starts moving frames.
func newRelay(cfg relayConfig) (*relay, error) {
	r := &relay{done: make(chan struct{})}
	epoch := time.Now()
	for _, l := range cfg.Links {
		a, err := openTAP(l.A.NetNS, l.A.Ifname)
		if err != nil {
			r.close()
			return nil, fmt.Errorf("relay: link %s: %w", l.Name, err)
		}
		r.files = append(r.files, a)
		b, err := openTAP(l.B.NetNS, l.B.Ifname)
		if err != nil {
			r.close()
			return nil, fmt.Errorf("relay: link %s: %w", l.Name, err)
		}
		r.files = append(r.files, b)
		for i, ends := range [][2]*os.File{{a, b}, {b, a}} {
			arrow := "a>b"
			if i == 1 {
				arrow = "b>a"
			}
			r.dirs = append(r.dirs, &direction{
				name: l.Name + " " + arrow, in: ends[0], out: ends[1],
				shaper: newShaper(l.Impair, cfg.Seed, l.Index, i),
				epoch:  epoch, wake: make(chan struct{}, 1), done: r.done,
			})
		}
	}
	for _, d := range r.dirs {
		go d.routineReadFrames()
		go d.routineWriteFrames()
	}
	return r, nil
}

// stats returns the counters of every direction.
func (r *relay) stats() relayStats {
	st := relayStats{Time: time.Now(), Directions: make(map[string]directionStats)}
	for _, d := range r.dirs {
		st.Directions[d.name] = d.stats()
	}
	return st
}

// close stops the relay: the TAPs are closed, which ends the readers.
func (r *relay) close() {
	select {
	case <-r.done:
		return
	default:
	}
	close(r.done)
	for _, f := range r.files {
		f.Close()
	}
}

// relayMain is l2wg lab relay: it runs until SIGTERM or SIGINT.
func relayMain(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("lab relay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "relay config `file` (written by the lab)")
	statsPath := fs.String("stats", "", "write counters to this `file` every second")
	readyPath := fs.String("ready", "", "create this `file` once every TAP is attached")
	if err := fs.Parse(args); err != nil {
		return &ExitError{Code: 2}
	}
	if *cfgPath == "" {
		return &ExitError{Code: 2, Err: errors.New("lab relay: -config is required (the lab starts the relay itself)")}
	}
	data, err := os.ReadFile(*cfgPath)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	var cfg relayConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("relay: %s: %w", *cfgPath, err)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	r, err := newRelay(cfg)
	if err != nil {
		return err
	}
	defer r.close()
	fmt.Fprintf(stderr, "relay: %d links, seed %d\n", len(cfg.Links), cfg.Seed)
	if *readyPath != "" {
		if err := os.WriteFile(*readyPath, []byte(fmt.Sprintln(os.Getpid())), 0o644); err != nil {
			return fmt.Errorf("relay: %w", err)
		}
	}
	writeStats := func() {
		if *statsPath != "" {
			writeJSONAtomic(*statsPath, r.stats())
		}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			writeStats()
		case sig := <-sigs:
			r.close()
			writeStats()
			fmt.Fprintf(stderr, "relay: %v, exiting\n", sig)
			return nil
		}
	}
}

// writeJSONAtomic writes v as JSON to path through a temporary file, so a
// reader never sees half a file.
func writeJSONAtomic(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
