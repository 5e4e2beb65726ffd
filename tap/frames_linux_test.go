package tap

import (
	"bytes"
	"errors"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"
)

// A frame read by a test reader, copied out of the batch.
type readFrame struct {
	hdr   VNetHdr
	frame []byte
}

// startReader reads d in batches until d is closed and sends copies of the
// frames on the returned channel.
func startReader(t *testing.T, d *Device) <-chan readFrame {
	ch := make(chan readFrame, 1024)
	bufs, hdrs, sizes := newBatch(d, 8)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			n, err := d.ReadFrames(bufs, hdrs, sizes)
			if err != nil {
				if !errors.Is(err, os.ErrClosed) {
					t.Errorf("ReadFrames: %v", err)
				}
				return
			}
			for i := range n {
				select {
				case ch <- readFrame{hdrs[i], bytes.Clone(bufs[i][:sizes[i]])}:
				default: // a test that stopped listening
				}
			}
		}
	}()
	t.Cleanup(func() {
		d.Close()
		<-done
	})
	return ch
}

func newBatch(d *Device, n int) ([][]byte, []VNetHdr, []int) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, d.BufLen())
	}
	return bufs, make([]VNetHdr, n), make([]int, n)
}

// waitFrame returns the first frame from ch that match accepts.
func waitFrame(t *testing.T, ch <-chan readFrame, what string, match func(p gopacket.Packet, f readFrame) bool) (gopacket.Packet, readFrame) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case f := <-ch:
			p := gopacket.NewPacket(f.frame, layers.LayerTypeEthernet, gopacket.Default)
			if match(p, f) {
				return p, f
			}
		case <-timeout:
			t.Fatalf("no %s read from the TAP within 5s", what)
		}
	}
}

func TestKernelFrames(t *testing.T) {
	paths(t, func(t *testing.T, offload bool) {
		ns := newNetns(t)
		ns.enter(t)
		d := mustOpen(t, Config{Name: "l2wgf0", Offload: offload})
		ns.ip(t, "addr", "add", "10.77.0.1/24", "dev", "l2wgf0")
		frames := startReader(t, d)
		mac := d.MAC()
		tapMAC := net.HardwareAddr(mac[:])

		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: tapIP})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		port := conn.LocalAddr().(*net.UDPAddr).Port

		// The kernel asks for the peer's address: ARP request out.
		if _, err := conn.WriteToUDP([]byte("hello"), &net.UDPAddr{IP: peerIP, Port: 7777}); err != nil {
			t.Fatal(err)
		}
		waitFrame(t, frames, "ARP request for 10.77.0.3", func(p gopacket.Packet, _ readFrame) bool {
			a, ok := p.Layer(layers.LayerTypeARP).(*layers.ARP)
			return ok && a.Operation == layers.ARPRequest && net.IP(a.DstProtAddress).Equal(peerIP)
		})

		// ARP reply in: the kernel learns the peer and sends the datagram.
		reply := serialize(t,
			&layers.Ethernet{SrcMAC: peerMAC, DstMAC: tapMAC, EthernetType: layers.EthernetTypeARP},
			&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
				Operation: layers.ARPReply, SourceHwAddress: peerMAC, SourceProtAddress: peerIP,
				DstHwAddress: tapMAC, DstProtAddress: tapIP})
		if err := d.WriteFrame(nil, reply); err != nil {
			t.Fatal(err)
		}
		p, f := waitFrame(t, frames, "UDP datagram to 10.77.0.3:7777", func(p gopacket.Packet, _ readFrame) bool {
			u, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
			return ok && u.DstPort == 7777
		})
		if eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet); !bytes.Equal(eth.DstMAC, peerMAC) {
			t.Errorf("datagram to %s, want the MAC of the ARP reply %s", eth.DstMAC, peerMAC)
		}
		if app := p.ApplicationLayer(); app == nil || string(app.Payload()) != "hello" {
			t.Errorf("datagram payload %v, want hello", app)
		}
		if f.hdr.NeedsCsum() && (f.hdr.CsumStart() != 34 || f.hdr.CsumOffset() != 6) {
			t.Errorf("partial checksum at %d+%d, want 34+6", f.hdr.CsumStart(), f.hdr.CsumOffset())
		}
		if !offload && f.hdr != (VNetHdr{}) {
			t.Errorf("plain TAP header %x, want zero", f.hdr)
		}

		// Datagrams in. A bad checksum is dropped by the kernel, a partial
		// one is completed (by the kernel, or in software on a plain TAP).
		bad := udpFrame(t, tapMAC, peerMAC, peerIP, tapIP, 7777, port, []byte("bad"))
		bad[40] ^= 0xff // the UDP checksum
		good := udpFrame(t, tapMAC, peerMAC, peerIP, tapIP, 7777, port, []byte("good"))
		partial := udpFrame(t, tapMAC, peerMAC, peerIP, tapIP, 7777, port, []byte("partial"))
		hdr := partialUDP(partial)
		partialCopy := bytes.Clone(partial)
		for _, w := range []struct {
			hdr   *VNetHdr
			frame []byte
		}{{nil, bad}, {nil, good}, {&hdr, partial}} {
			if err := d.WriteFrame(w.hdr, w.frame); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(partial, partialCopy) {
			t.Error("WriteFrame modified the caller's frame")
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 100)
		for _, want := range []string{"good", "partial"} {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				t.Fatalf("waiting for %q: %v", want, err)
			}
			if string(buf[:n]) != want || !from.IP.Equal(peerIP) || from.Port != 7777 {
				t.Errorf("received %q from %v, want %q from 10.77.0.3:7777", buf[:n], from, want)
			}
		}
	})
}

func TestReadAfterCloseAndShortBuffers(t *testing.T) {
	paths(t, func(t *testing.T, offload bool) {
		ns := newNetns(t)
		ns.enter(t)
		d := mustOpen(t, Config{Name: "l2wgf0", Offload: offload})
		bufs, hdrs, sizes := newBatch(d, 2)
		if _, err := d.ReadFrames(bufs, hdrs[:1], sizes); err == nil {
			t.Error("ReadFrames with fewer headers than buffers: no error")
		}
		if _, err := d.ReadFrames([][]byte{make([]byte, 100)}, hdrs, sizes); err == nil {
			t.Error("ReadFrames with a short buffer: no error")
		}
		errc := make(chan error)
		go func() {
			for { // the kernel may send IPv6 router solicitations
				if _, err := d.ReadFrames(bufs, hdrs, sizes); err != nil {
					errc <- err
					return
				}
			}
		}()
		waitBlockedInRead(t)
		d.Close()
		select {
		case err := <-errc:
			if !errors.Is(err, os.ErrClosed) {
				t.Errorf("blocked ReadFrames after Close = %v, want os.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not unblock ReadFrames")
		}
		if err := d.WriteFrame(nil, make([]byte, 60)); !errors.Is(err, os.ErrClosed) {
			t.Errorf("WriteFrame after Close = %v, want os.ErrClosed", err)
		}
	})
}

func TestInterruptWakesAWaitingRead(t *testing.T) {
	paths(t, func(t *testing.T, offload bool) {
		ns := newNetns(t)
		ns.enter(t)
		d := mustOpen(t, Config{Name: "l2wgi0", Offload: offload})
		bufs, hdrs, sizes := newBatch(d, 2)
		type result struct {
			n   int
			err error
		}
		res := make(chan result, 1)
		go func() {
			for { // the kernel may send IPv6 router solicitations
				n, err := d.ReadFrames(bufs, hdrs, sizes)
				if n == 0 || err != nil {
					res <- result{n, err}
					return
				}
			}
		}()
		waitBlockedInRead(t)
		d.Interrupt()
		select {
		case r := <-res:
			if r.n != 0 || r.err != nil {
				t.Errorf("interrupted ReadFrames = %d, %v; want 0, nil", r.n, r.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Interrupt did not wake the waiting ReadFrames")
		}
	})
}

func TestWriteDropsMalformed(t *testing.T) {
	paths(t, func(t *testing.T, offload bool) {
		ns := newNetns(t)
		ns.enter(t)
		d := mustOpen(t, Config{Name: "l2wgf0", Offload: offload})
		var gso VNetHdr
		gso.SetGSOType(GSOTCPv4)
		gso.SetGSOSize(1448)
		for _, w := range []struct {
			name  string
			hdr   *VNetHdr
			frame []byte
		}{
			{"empty", nil, nil},
			{"runt", nil, make([]byte, 6)},
			{"gso on a non-tcp frame", &gso, udpFrame(t, peerMAC, peerMAC, peerIP, tapIP, 1, 2, make([]byte, 3000))},
		} {
			if offload && w.hdr != nil {
				continue // the kernel takes it, and drops it when it segments
			}
			before := d.Dropped()
			if err := d.WriteFrame(w.hdr, w.frame); err != nil {
				t.Errorf("%s: WriteFrame = %v, want nil (dropped)", w.name, err)
			}
			if d.Dropped() != before+1 {
				t.Errorf("%s: Dropped %d -> %d, want +1", w.name, before, d.Dropped())
			}
		}
	})
}

func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts mean nothing under the race detector")
	}
	paths(t, func(t *testing.T, offload bool) {
		ns := newNetns(t)
		ns.enter(t)
		d := mustOpen(t, Config{Name: "l2wga0", Offload: offload})
		ns.ip(t, "addr", "add", "10.77.0.1/24", "dev", "l2wga0")
		ns.ip(t, "neigh", "add", "10.77.0.2", "lladdr", peerMAC.String(), "dev", "l2wga0", "nud", "permanent")

		other := net.HardwareAddr{0x02, 0xbb, 0, 0, 0, 1} // not the TAP: the kernel ignores these
		frame := udpFrame(t, other, peerMAC, peerIP, staticIP, 1, 2, make([]byte, 1000))
		partial := bytes.Clone(frame)
		hdr := partialUDP(partial)
		superHdr, super := tcpSuperframe4(t, 20000, 1448)
		copy(super[0:6], other)
		for _, w := range []struct {
			name  string
			hdr   *VNetHdr
			frame []byte
		}{
			{"plain frame", nil, frame},
			{"partial checksum", &hdr, partial},
			{"tcp superframe", &superHdr, super},
		} {
			if a := testing.AllocsPerRun(200, func() {
				if err := d.WriteFrame(w.hdr, w.frame); err != nil {
					t.Fatal(err)
				}
			}); a != 0 {
				t.Errorf("WriteFrame(%s): %v allocations, want 0", w.name, a)
			}
		}
		if d.Dropped() != 0 {
			t.Errorf("Dropped = %d", d.Dropped())
		}

		// Steady-state reads: every run has the kernel send one datagram.
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: [4]byte(staticIP), Port: 9}); err != nil {
			t.Fatal(err)
		}
		bufs, hdrs, sizes := newBatch(d, 4)
		payload := make([]byte, 100)
		if a := testing.AllocsPerRun(200, func() {
			if _, err := unix.Write(fd, payload); err != nil {
				t.Fatal(err)
			}
			if n, err := d.ReadFrames(bufs, hdrs, sizes); n == 0 || err != nil {
				t.Fatal(n, err)
			}
		}); a != 0 {
			t.Errorf("ReadFrames: %v allocations, want 0", a)
		}

		// An interrupted wait returns no frames and no error.
		if a := testing.AllocsPerRun(200, func() {
			d.Interrupt()
			if n, err := d.ReadFrames(bufs, hdrs, sizes); n != 0 || err != nil {
				t.Fatal(n, err)
			}
		}); a != 0 {
			t.Errorf("Interrupt and ReadFrames: %v allocations, want 0", a)
		}
	})
}

// waitBlockedInRead waits until a goroutine is parked in the netpoller
// inside ReadFrames: what a Close must then unblock.
func waitBlockedInRead(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(5 * time.Second); ; {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if strings.Contains(g, "[IO wait") && strings.Contains(g, "tap.(*Device).ReadFrames(") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("ReadFrames did not block in the netpoller within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
