package tap

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Runs of UDP datagrams written by WriteFrames reach a socket behind the
// TAP as the datagrams they were, in order, and (with Offload) as few
// superframes; frames that do not make a run go as they are.
func TestWriteFramesUSO(t *testing.T) {
	paths(t, func(t *testing.T, offload bool) {
		for _, v6 := range []bool{false, true} {
			t.Run(fmt.Sprintf("ipv6=%v", v6), func(t *testing.T) {
				ns := newNetns(t)
				ns.enter(t)
				d := mustOpen(t, Config{Name: "l2wgu0", Offload: offload})
				network, laddr, src, dstIP := "udp4", tapIP, peerIP, tapIP
				if v6 {
					ns.ip(t, "addr", "add", "fd00::1/64", "dev", "l2wgu0", "nodad")
					// The local route comes a moment after the address
					// (until then datagrams to it are address errors).
					deadline := time.Now().Add(5 * time.Second)
					for !strings.Contains(ns.ip(t, "-6", "route", "show", "table", "local", "dev", "l2wgu0"), "fd00::1") {
						if time.Now().After(deadline) {
							t.Fatal("no local route for fd00::1 after 5s")
						}
						time.Sleep(10 * time.Millisecond)
					}
					network, laddr, src, dstIP = "udp6", usoDstIP6, usoSrcIP6, usoDstIP6
				} else {
					ns.ip(t, "addr", "add", "10.77.0.1/24", "dev", "l2wgu0")
				}
				conn, err := net.ListenUDP(network, &net.UDPAddr{IP: laddr})
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				port := conn.LocalAddr().(*net.UDPAddr).Port
				mac := d.MAC()

				// 20 of 64 bytes and a short one (one run), then 3 of
				// another flow with an ID gap after the first (IPv4: two
				// runs, a single frame, then a pair; IPv6 has no IDs: one
				// run).
				var frames []testFrame
				var want []string
				add := func(sport int, id uint16, n int) {
					payload := bytes.Repeat([]byte{byte(len(frames))}, n)
					h, f := udpRunFrame(t, v6, net.HardwareAddr(mac[:]), peerMAC, src, dstIP, sport, port, id, payload)
					frames = append(frames, testFrame{h, f})
					want = append(want, string(payload))
				}
				for i := range 20 {
					add(4000, uint16(100+i), 64)
				}
				add(4000, 120, 17)
				add(4001, 7, 512)
				add(4001, 9, 512)
				add(4001, 10, 512)
				if err := WriteFrames(d, frames, viewTestFrame); err != nil {
					t.Fatal(err)
				}
				conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 2048)
				for i, w := range want {
					n, from, err := conn.ReadFromUDP(buf)
					if err != nil {
						t.Fatalf("datagram %d of %d: %v (USO %+v, dropped %d; %s)", i, len(want), err, d.USO(), d.Dropped(), nstat(t, ns))
					}
					if string(buf[:n]) != w || !from.IP.Equal(src) {
						t.Fatalf("datagram %d: %d bytes from %v, want %d bytes from %v", i, n, from, len(w), src)
					}
				}
				st := d.USO()
				wantSF, wantDG := uint64(2), uint64(21+2)
				if v6 {
					wantDG = 21 + 3
				}
				if !offload {
					wantSF, wantDG = 0, 0
				}
				if st.Refused || st.Superframes != wantSF || st.Datagrams != wantDG {
					t.Errorf("USO %+v, want %d superframes of %d datagrams", st, wantSF, wantDG)
				}
				if d.Dropped() != 0 {
					t.Errorf("Dropped %d", d.Dropped())
				}
			})
		}
	})
}

func TestWriteFramesAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts mean nothing under the race detector")
	}
	ns := newNetns(t)
	ns.enter(t)
	d := mustOpen(t, Config{Name: "l2wgu1", Offload: true})
	other := net.HardwareAddr{0x02, 0xbb, 0, 0, 0, 1} // not the TAP: the kernel ignores these
	var frames []testFrame
	for i := range 32 {
		h, f := udpRunFrame(t, false, other, peerMAC, peerIP, tapIP, 1, 2, uint16(i), make([]byte, 64))
		frames = append(frames, testFrame{h, f})
	}
	if a := testing.AllocsPerRun(200, func() {
		if err := WriteFrames(d, frames, viewTestFrame); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("WriteFrames: %v allocations, want 0", a)
	}
	if st := d.USO(); st.Superframes == 0 {
		t.Errorf("USO %+v: no superframe written", st)
	}
}

func BenchmarkWriteFrames(b *testing.B) {
	for _, uso := range []bool{false, true} {
		b.Run(fmt.Sprintf("uso=%v", uso), func(b *testing.B) {
			ns := newNetns(b)
			ns.enter(b)
			d, err := Open(Config{Name: "l2wgu2", Offload: true})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			other := net.HardwareAddr{0x02, 0xbb, 0, 0, 0, 1}
			var frames []testFrame
			for i := range 64 {
				h, f := udpRunFrame(b, false, other, peerMAC, peerIP, tapIP, 1, 2, uint16(i), make([]byte, 64))
				frames = append(frames, testFrame{h, f})
			}
			if !uso {
				d.uso.refused.Store(true)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := WriteFrames(d, frames, viewTestFrame); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(frames))/b.Elapsed().Seconds(), "frames/s")
		})
	}
}

// nstat returns the namespace's non-zero IPv6 and UDP counters, for a
// failure's message.
func nstat(t *testing.T, ns *netns) string {
	out, _ := exec.Command("ip", "netns", "exec", ns.name, "nstat", "-az", "Ip6*", "Udp6*", "Icmp6*").CombinedOutput()
	var b strings.Builder
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[1] != "0" {
			b.WriteString(l + "; ")
		}
	}
	return b.String()
}
