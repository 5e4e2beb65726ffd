package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// The assertions of the e2e scenarios. Each waits on a real condition with a
// deadline and fails the test with what it saw.

// ping runs ping in VM from with args and the destination last, bounded by
// timeout, and returns its output.
func (tp *topo) ping(from, dst string, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	argv := append(append([]string{"ping", "-n"}, args...), dst)
	out, err := tp.lab.ExecContext(ctx, from, argv...)
	return string(out), err
}

// waitPing waits until one ping from VM from to VM to is answered: the
// overlay is up (handshakes done, ports forwarding).
func (tp *topo) waitPing(from, to string, timeout time.Duration) {
	tp.t.Helper()
	start := time.Now()
	var out string
	ok := poll(timeout, 200*time.Millisecond, func() bool {
		tp.checkAlive()
		var err error
		out, err = tp.ping(from, tp.vms[to].IP, 5*time.Second, "-c", "1", "-W", "1")
		return err == nil
	})
	if !ok {
		tp.t.Fatalf("%s cannot ping %s (%s) within %v; last ping:\n%s", from, to, tp.vms[to].IP, timeout, out)
	}
	tp.t.Logf("%s reaches %s after %v", from, to, time.Since(start).Round(10*time.Millisecond))
}

// neighbour is ip -j neigh's view of one entry.
type neighbour struct {
	Dst    string   `json:"dst"`
	LLAddr string   `json:"lladdr"`
	State  []string `json:"state"`
}

// checkARP checks that from resolves to's address by ARP across the segment:
// after flushing from's neighbour table and one ping, the entry for to holds
// to's MAC and is usable; and a raw ARP request gets to's MAC back.
func (tp *topo) checkARP(from, to string) {
	tp.t.Helper()
	dst := tp.vms[to]
	if _, err := tp.lab.IP(from, "neigh", "flush", "dev", "eth0"); err != nil {
		tp.t.Fatal(err)
	}
	if _, err := tp.ping(from, dst.IP, 10*time.Second, "-c", "1", "-W", "3"); err != nil {
		tp.t.Fatalf("%s: ping %s after flushing the neighbour table: %v", from, dst.IP, err)
	}
	out, err := tp.lab.IP(from, "-j", "neigh", "show", dst.IP, "dev", "eth0")
	if err != nil {
		tp.t.Fatal(err)
	}
	var ns []neighbour
	if err := json.Unmarshal(out, &ns); err != nil {
		tp.t.Fatalf("parse ip -j neigh: %v: %s", err, out)
	}
	if len(ns) != 1 || ns[0].LLAddr != dst.MAC.String() ||
		!slices.ContainsFunc(ns[0].State, func(s string) bool { return s == "REACHABLE" || s == "STALE" || s == "DELAY" }) {
		tp.t.Errorf("%s's neighbour entry for %s = %s; want lladdr %s REACHABLE", from, dst.IP, out, dst.MAC)
	}
	mac, ok := tp.arpProbe(from, dst.IP, 5*time.Second)
	if !ok || !bytes.Equal(mac, dst.MAC) {
		tp.t.Errorf("raw ARP request from %s for %s: answer %v (%v); want %s", from, dst.IP, mac, ok, dst.MAC)
	}
}

// checkFullSizePing checks that ping -M do -s 1472 (IPv4 packets of 1500
// bytes, frames of 1514, don't fragment) from VM from to VM to gets all three
// answers, retrying until timeout.
func (tp *topo) checkFullSizePing(from, to string, timeout time.Duration) {
	tp.t.Helper()
	var out string
	ok := poll(timeout, 200*time.Millisecond, func() bool {
		tp.checkAlive()
		var err error
		out, err = tp.ping(from, tp.vms[to].IP, 15*time.Second, "-M", "do", "-s", "1472", "-c", "3", "-i", "0.2", "-W", "2")
		return err == nil && strings.Contains(out, " 3 received")
	})
	if !ok {
		tp.t.Errorf("full-size ping %s -> %s (%s) did not get 3 of 3 answers within %v; last:\n%s",
			from, to, tp.vms[to].IP, timeout, out)
	}
}

// replyFrom matches the sender of an echo reply in ping's output.
var replyFrom = regexp.MustCompile(`bytes from (\d+\.\d+\.\d+\.\d+)`)

// checkBroadcastPing checks that a ping to the subnet's broadcast address
// from VM from is answered by exactly the VMs want, retrying until timeout
// (the first broadcast of a new path can be lost to an ARP race).
func (tp *topo) checkBroadcastPing(from string, timeout time.Duration, want ...string) {
	tp.t.Helper()
	var wantIPs []string
	for _, w := range want {
		wantIPs = append(wantIPs, tp.vms[w].IP)
	}
	slices.Sort(wantIPs)
	var (
		got []string
		out string
	)
	poll(timeout, 200*time.Millisecond, func() bool {
		out, _ = tp.ping(from, "192.168.77.255", 15*time.Second, "-b", "-c", "3", "-i", "0.5", "-W", "2")
		seen := map[string]bool{}
		for _, m := range replyFrom.FindAllStringSubmatch(out, -1) {
			if m[1] != tp.vms[from].IP { // the sender may answer itself
				seen[m[1]] = true
			}
		}
		got = got[:0]
		for ip := range seen {
			got = append(got, ip)
		}
		slices.Sort(got)
		return slices.Equal(got, wantIPs)
	})
	if !slices.Equal(got, wantIPs) {
		tp.t.Errorf("broadcast ping from %s answered by %v; want %v; last output:\n%s", from, got, wantIPs, out)
	}
}

// checkTCPTransfer sends size pseudo-random bytes over TCP from VM from to VM
// to (a Go client and server inside the namespaces) and checks that the
// receiver's SHA-256 and length equal the sender's.
func (tp *topo) checkTCPTransfer(from, to string, size int64, timeout time.Duration) {
	tp.t.Helper()
	dst := tp.vms[to]
	ln, err := tp.lab.Listen(to, "tcp", net.JoinHostPort(dst.IP, "5201"))
	tp.must(err)
	defer ln.Close()
	deadline := time.Now().Add(timeout)

	type result struct {
		n   int64
		sum []byte
		err error
	}
	rx := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			rx <- result{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(deadline)
		h := sha256.New()
		n, err := io.Copy(h, c)
		rx <- result{n: n, sum: h.Sum(nil), err: err}
	}()

	start := time.Now()
	c, err := tp.lab.DialTimeout(from, "tcp", ln.Addr().String(), 10*time.Second)
	tp.must(err)
	defer c.Close()
	c.SetDeadline(deadline)
	h := sha256.New()
	src := io.LimitReader(rand.NewChaCha8([32]byte{'l', '2', 'w', 'g'}), size)
	sent, err := io.Copy(io.MultiWriter(c, h), src)
	if err != nil {
		tp.t.Fatalf("TCP %s -> %s: sending: %v after %d of %d bytes", from, to, err, sent, size)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		tp.t.Fatalf("TCP %s -> %s: close write: %v", from, to, err)
	}
	var r result
	select {
	case r = <-rx:
	case <-time.After(time.Until(deadline) + time.Second):
		tp.t.Fatalf("TCP %s -> %s: receiver still reading after %v", from, to, timeout)
	}
	elapsed := time.Since(start)
	if r.err != nil {
		tp.t.Fatalf("TCP %s -> %s: receiving: %v after %d of %d bytes", from, to, r.err, r.n, size)
	}
	if r.n != size || !bytes.Equal(r.sum, h.Sum(nil)) {
		tp.t.Fatalf("TCP %s -> %s: received %d bytes sha256 %x; sent %d bytes sha256 %x", from, to, r.n, r.sum, size, h.Sum(nil))
	}
	tp.t.Logf("TCP %s -> %s: %d MB, same SHA-256, %.2f s, %.0f Mbit/s",
		from, to, size>>20, elapsed.Seconds(), float64(size)*8/elapsed.Seconds()/1e6)
}

// taggedFrameSize is the largest frame a VM sends on MTU 1500 with an 802.1Q
// tag: 14 bytes of Ethernet header, 4 of tag, 1500 of payload.
const taggedFrameSize = 1518

// vlanTestVID is the VLAN of the tagged test frames.
const vlanTestVID = 100

// vlanMarker starts the UDP payload of every tagged test frame.
var vlanMarker = []byte("l2wg-e2e-vlan")

// taggedFrame builds a 1518-byte frame from src to dst: Ethernet, 802.1Q VID
// 100, IPv4, UDP, and a payload starting with vlanMarker and seq.
func taggedFrame(src, dst net.HardwareAddr, seq byte) ([]byte, error) {
	eth := &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: layers.EthernetTypeDot1Q}
	tag := &layers.Dot1Q{Priority: 3, VLANIdentifier: vlanTestVID, Type: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{
		Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, Id: uint16(seq),
		SrcIP: net.IPv4(10, 100, 0, 11), DstIP: net.IPv4(10, 100, 0, 21),
	}
	udp := &layers.UDP{SrcPort: 40000, DstPort: 40001}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		return nil, err
	}
	payload := make([]byte, taggedFrameSize-14-4-20-8)
	r := rand.NewChaCha8([32]byte{seq})
	r.Read(payload)
	copy(payload, vlanMarker)
	payload[len(vlanMarker)] = seq
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, eth, tag, ip, udp, gopacket.Payload(payload)); err != nil {
		return nil, err
	}
	if n := len(buf.Bytes()); n != taggedFrameSize {
		return nil, fmt.Errorf("tagged frame is %d bytes; want %d", n, taggedFrameSize)
	}
	return buf.Bytes(), nil
}

// testFrameSeq returns the sequence number of a tagged test frame, or false
// for any other frame.
func testFrameSeq(frame []byte) (byte, bool) {
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.NoCopy)
	udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if udp == nil || udp.DstPort != 40001 || !bytes.HasPrefix(udp.Payload, vlanMarker) || len(udp.Payload) <= len(vlanMarker) {
		return 0, false
	}
	return udp.Payload[len(vlanMarker)], true
}

// checkTaggedFrames sends 1518-byte 802.1Q frames (VID 100) from VM from's
// raw socket, two to VM to's MAC and one to broadcast, and checks that VM to
// receives each, byte for byte, with its tag.
func (tp *topo) checkTaggedFrames(from, to string, timeout time.Duration) {
	tp.t.Helper()
	src, dst := tp.vms[from], tp.vms[to]
	rx, err := tp.lab.OpenPacket(to, "eth0")
	tp.must(err)
	defer rx.Close()
	tx, err := tp.lab.OpenPacket(from, "eth0")
	tp.must(err)
	defer tx.Close()

	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	sent := map[byte][]byte{}
	for seq, d := range []net.HardwareAddr{dst.MAC, dst.MAC, bcast} {
		f, err := taggedFrame(src.MAC, d, byte(seq+1))
		tp.must(err)
		sent[byte(seq+1)] = f
		tp.must(tx.Send(f))
	}

	got := map[byte]bool{}
	deadline := time.Now().Add(timeout)
	for len(got) < len(sent) {
		fr, err := rx.Recv(deadline)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		tp.must(err)
		seq, ok := testFrameSeq(fr.Data)
		if !ok || sent[seq] == nil {
			continue
		}
		got[seq] = true
		if !bytes.Equal(fr.Data, sent[seq]) {
			tp.t.Errorf("tagged frame %d: %s received %d bytes (kernel tag %v, TCI %#04x) that differ from the %d sent by %s; first difference at byte %d",
				seq, to, len(fr.Data), fr.Tagged, fr.TCI, len(sent[seq]), from, firstDiff(fr.Data, sent[seq]))
			continue
		}
		if tag, _ := gopacket.NewPacket(fr.Data, layers.LayerTypeEthernet, gopacket.Default).Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q); tag == nil || tag.VLANIdentifier != vlanTestVID {
			tp.t.Errorf("tagged frame %d arrived without VID %d", seq, vlanTestVID)
		}
	}
	for seq := range sent {
		if !got[seq] {
			tp.t.Errorf("tagged %d-byte frame %d (VID %d, to %s) from %s never reached %s within %v",
				taggedFrameSize, seq, vlanTestVID, net.HardwareAddr(sent[seq][:6]), from, to, timeout)
		}
	}
}

// firstDiff returns the index of the first byte where a and b differ.
func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// arpProbe broadcasts ARP requests for target from VM from's raw socket, one
// every 500ms, and returns the hardware address of the first reply, or false
// if none came within wait.
func (tp *topo) arpProbe(from, target string, wait time.Duration) (net.HardwareAddr, bool) {
	tp.t.Helper()
	src := tp.vms[from]
	s, err := tp.lab.OpenPacket(from, "eth0")
	tp.must(err)
	defer s.Close()
	targetIP := net.ParseIP(target).To4()
	eth := &layers.Ethernet{SrcMAC: src.MAC, DstMAC: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, EthernetType: layers.EthernetTypeARP}
	arp := &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest,
		SourceHwAddress: src.MAC, SourceProtAddress: net.ParseIP(src.IP).To4(),
		DstHwAddress: make([]byte, 6), DstProtAddress: targetIP,
	}
	buf := gopacket.NewSerializeBuffer()
	tp.must(gopacket.SerializeLayers(buf, gopacket.SerializeOptions{}, eth, arp))
	request := buf.Bytes()

	end := time.Now().Add(wait)
	for time.Now().Before(end) {
		tp.must(s.Send(request))
		next := time.Now().Add(500 * time.Millisecond)
		if next.After(end) {
			next = end
		}
		for {
			fr, err := s.Recv(next)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			tp.must(err)
			p := gopacket.NewPacket(fr.Data, layers.LayerTypeEthernet, gopacket.Default)
			a, _ := p.Layer(layers.LayerTypeARP).(*layers.ARP)
			if a != nil && a.Operation == layers.ARPReply && bytes.Equal(a.SourceProtAddress, targetIP) {
				return net.HardwareAddr(a.SourceHwAddress), true
			}
		}
	}
	return nil, false
}

// checkHypervisorsOffSegment checks that the hypervisors stay off the VM
// segment: no hypervisor has a route into it, and VM from can neither ping
// nor resolve by ARP any underlay address in underlay. Address resolution is
// what a hypervisor's kernel would answer (arp_ignore=0 answers for every
// local address on every interface, br0 included) if l2wg carried its
// frames.
func (tp *topo) checkHypervisorsOffSegment(from string, underlay map[string]string) {
	tp.t.Helper()
	for _, hv := range tp.order {
		if out, err := tp.lab.IP(hv, "route", "get", tp.vms[from].IP); err == nil {
			tp.t.Errorf("%s has a route into the VM segment: %s", hv, out)
		}
		for _, dev := range []string{"br0", "l2wg0"} {
			out, err := tp.lab.IP(hv, "-o", "addr", "show", "dev", dev, "scope", "global")
			if err == nil && strings.TrimSpace(string(out)) != "" {
				tp.t.Errorf("%s: %s has an address: %s", hv, dev, out)
			}
		}
	}
	for hv, ip := range underlay {
		if out, err := tp.ping(from, ip, 10*time.Second, "-c", "2", "-W", "1"); err == nil {
			tp.t.Errorf("%s pings %s's underlay address %s:\n%s", from, hv, ip, out)
		}
	}
	for hv, ip := range underlay {
		if tp.vms[from].HV == hv {
			continue // the local bridge is the host's own business, not l2wg's
		}
		if mac, ok := tp.arpProbe(from, ip, 3*time.Second); ok {
			tp.t.Errorf("%s's ARP request for %s's underlay address %s was answered by %s: the hypervisor is on the VM segment",
				from, hv, ip, mac)
		}
	}
}
