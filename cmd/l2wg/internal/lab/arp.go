package lab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/netns"
)

// CheckHypervisorsInvisible sends ARP requests from one VM at each running
// site for every underlay address of every hypervisor: none may answer (its
// own hypervisor keeps off the VM bridge, l2wg keeps the others' out). As a
// control, the same probe asks for another VM, which must answer.
func (l *Lab) CheckHypervisorsInvisible(ctx context.Context) Check {
	start := time.Now()
	c := Check{Name: "hypervisors invisible"}
	var targets []netip.Addr
	owner := make(map[netip.Addr]string)
	for _, n := range l.Plan.Sites() {
		for _, i := range n.Ifaces {
			targets = append(targets, i.Addr)
			owner[i.Addr] = n.Name
		}
	}
	vms, reach := l.reachableVMs()
	var probes []*PlannedVM
	seenSite := make(map[*Node]bool)
	for _, v := range vms {
		if !seenSite[v.Site] {
			seenSite[v.Site] = true
			probes = append(probes, v)
		}
	}
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		answered []string
		controls []string
		errs     []string
	)
	for _, v := range probes {
		var control netip.Addr
		for _, o := range vms {
			if o != v && reach(v, o) {
				control = o.Addr.Addr()
				break
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ask := append([]netip.Addr(nil), targets...)
			if control.IsValid() {
				ask = append(ask, control)
			}
			got, err := l.arpProbe(v, ask, 2*time.Second)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err.Error())
				return
			}
			for _, a := range targets {
				if mac, ok := got[a]; ok {
					answered = append(answered, fmt.Sprintf("%s's %s answered %s (from %s)", owner[a], a, v.Name, mac))
				}
			}
			if control.IsValid() {
				if _, ok := got[control]; !ok {
					controls = append(controls, fmt.Sprintf("%s got no ARP answer from VM %s either: the probe proves nothing", v.Name, control))
				}
			}
		}()
	}
	wg.Wait()
	var names []string
	for _, v := range probes {
		names = append(names, v.Name)
	}
	c.Details = append(append(append(c.Details, answered...), controls...), errs...)
	c.Status = verdict(len(answered) == 0 && len(controls) == 0 && len(errs) == 0)
	c.Summary = fmt.Sprintf("ARP from %s for the %d underlay addresses of the hypervisors: %d answers", strings.Join(names, ", "), len(targets), len(answered))
	if len(probes) == 0 {
		c.Status, c.Summary = statusSkip, "no VM to probe from"
	}
	c.Took = time.Since(start)
	return c
}

// arpProbe broadcasts an ARP request for each address from VM v's eth0 and
// collects the answers that arrive within wait.
func (l *Lab) arpProbe(v *PlannedVM, addrs []netip.Addr, wait time.Duration) (map[netip.Addr]net.HardwareAddr, error) {
	ifi, err := l.NS.Interface(v.Name, "eth0")
	if err != nil {
		return nil, err
	}
	sock, err := l.NS.OpenPacket(v.Name, "eth0")
	if err != nil {
		return nil, err
	}
	defer sock.Close()
	src := v.Addr.Addr().As4()
	for _, a := range addrs {
		if err := sock.Send(arpRequest(ifi.HardwareAddr, src, a.As4())); err != nil {
			return nil, err
		}
	}
	got := make(map[netip.Addr]net.HardwareAddr)
	deadline := time.Now().Add(wait)
	for {
		f, err := sock.Recv(deadline)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		if ip, mac, ok := arpReply(f); ok {
			got[ip] = mac
		}
	}
}

// arpRequest builds a broadcast ARP who-has for target.
func arpRequest(mac net.HardwareAddr, src, target [4]byte) []byte {
	b := make([]byte, 42)
	copy(b[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(b[6:12], mac)
	binary.BigEndian.PutUint16(b[12:], 0x0806)
	binary.BigEndian.PutUint16(b[14:], 1)      // Ethernet
	binary.BigEndian.PutUint16(b[16:], 0x0800) // IPv4
	b[18], b[19] = 6, 4
	binary.BigEndian.PutUint16(b[20:], 1) // request
	copy(b[22:28], mac)
	copy(b[28:32], src[:])
	copy(b[38:42], target[:])
	return b
}

// arpReply decodes an ARP reply: the sender's address and MAC.
func arpReply(f netns.Frame) (netip.Addr, net.HardwareAddr, bool) {
	d := f.Data
	if len(d) < 42 || binary.BigEndian.Uint16(d[12:]) != 0x0806 || binary.BigEndian.Uint16(d[20:]) != 2 {
		return netip.Addr{}, nil, false
	}
	return netip.AddrFrom4([4]byte(d[28:32])), net.HardwareAddr(append([]byte(nil), d[22:28]...)), true
}
