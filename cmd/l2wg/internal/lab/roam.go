package lab

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"
)

// roam gives site s a new underlay address on its first link, and, when it
// is behind NAT, its NAT router a new public address: its traffic then
// reaches its peers from a new address and port, as a laptop's does when it
// moves to another network. Nothing in any peer's config changes.
func (l *Lab) roam(site string) (string, error) {
	n := l.Plan.Node(site)
	if len(n.Ifaces) == 0 {
		return "", fmt.Errorf("roam %s: it has no underlay link", site)
	}
	move := []*Iface{n.Ifaces[0]}
	if r := n.BehindNAT; r != nil {
		for _, i := range r.Ifaces {
			if l.Plan.isUplink(i) {
				move = []*Iface{i, n.Ifaces[0]} // the public address first
				break
			}
		}
	}
	var did []string
	for _, i := range move {
		d, err := l.moveAddr(i)
		if err != nil {
			return "", fmt.Errorf("roam %s: %w", site, err)
		}
		did = append(did, d)
	}
	return "new underlay addresses: " + strings.Join(did, ", "), nil
}

// moveAddr gives interface i the lowest free address of its link's subnet
// in place of its current one, and reinstalls its node's routes.
func (l *Lab) moveAddr(i *Iface) (string, error) {
	var old, addr netip.Addr
	err := updateState(l.Dir, func(st *state) error {
		old = l.currentAddr(st, i)
		used := map[netip.Addr]bool{old: true, l.currentAddr(st, i.Peer): true, i.Addr: true, i.Peer.Addr: true}
		addr = nextFree(i.Link.Subnet, used)
		if !addr.IsValid() {
			return fmt.Errorf("no free address left in %s", i.Link.Subnet)
		}
		if st.Addrs == nil {
			st.Addrs = make(map[string]string)
		}
		st.Addrs[i.Node.Name+"/"+i.Name] = addr.String()
		return nil
	})
	if err != nil {
		return "", err
	}
	bits := i.Link.Subnet.Bits()
	if err := l.NS.Addr(i.Node.Name, i.Name, netip.PrefixFrom(addr, bits).String()); err != nil {
		return "", err
	}
	// With promote_secondaries (set in every lab namespace) the new address
	// takes over the subnet when the old one goes. Deleting the address the
	// NAT masquerades to flushes its conntrack entries: the next packet
	// gets a new mapping.
	if _, err := l.NS.IP(i.Node.Name, "addr", "del", netip.PrefixFrom(old, bits).String(), "dev", i.Name); err != nil {
		return "", err
	}
	if err := l.applyRoutes(i.Node); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s/%s %s -> %s", i.Node.Name, i.Name, old, addr), nil
}

// nextFree returns the lowest host address of p that is not in used.
func nextFree(p netip.Prefix, used map[netip.Addr]bool) netip.Addr {
	size := 1 << (32 - p.Bits())
	for k := 1; k < size-1; k++ {
		if a := hostN(p, k); !used[a] {
			return a
		}
	}
	return netip.Addr{}
}

// roamSnapshot is what the peers of a roaming site know before it moves.
type roamSnapshot struct {
	endpoints map[string]string // peer -> endpoint it uses for the site
	confs     map[string]string // peer -> hash of its node.toml
}

func (l *Lab) snapshotRoam(ctx context.Context, site string) roamSnapshot {
	s := roamSnapshot{endpoints: map[string]string{}, confs: map[string]string{}}
	for _, pe := range l.activePeerings() {
		if pe.A.Name != site && pe.B.Name != site {
			continue
		}
		peer, _, _ := pe.Other(l.Plan.Node(site))
		s.confs[peer.Name] = fileHash(l.ConfPath(peer.Name))
		if st, err := l.Status(ctx, peer.Name); err == nil {
			s.endpoints[peer.Name] = st.peerEndpoint(site)
		}
	}
	return s
}

// checkRoamed checks that the peers of a site that roamed talk to it at its
// new public address, with their configs untouched.
func (l *Lab) checkRoamed(ctx context.Context, site string, before roamSnapshot) Check {
	start := time.Now()
	c := Check{Name: "roaming"}
	st, _ := readState(l.Dir)
	public := l.publicAddr(st, l.Plan.Node(site))
	ok := len(before.confs) > 0
	for _, peer := range sortedKeys(before.confs) {
		ok = ok && fileHash(l.ConfPath(peer)) == before.confs[peer]
		var now string
		deadline := time.Now().Add(20 * time.Second)
		for {
			if ps, err := l.Status(ctx, peer); err == nil {
				now = ps.peerEndpoint(site)
			}
			if strings.HasPrefix(now, public.String()+":") || time.Now().After(deadline) || !l.Show {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		moved := strings.HasPrefix(now, public.String()+":") && now != before.endpoints[peer]
		if !l.Show {
			c.Details = append(c.Details, "no l2wg show: endpoints not observed")
			continue
		}
		ok = ok && moved
		conf := "node.toml unchanged"
		if fileHash(l.ConfPath(peer)) != before.confs[peer] {
			conf = "node.toml CHANGED"
		}
		c.Details = append(c.Details, fmt.Sprintf("%s sees %s at %s (was %s), %s", peer, site, orDefault(now, "?"), orDefault(before.endpoints[peer], "?"), conf))
	}
	c.Status = verdict(ok)
	c.Summary = fmt.Sprintf("%s's traffic comes from %s now; its peers followed without a config change", site, public)
	c.Took = time.Since(start)
	return c
}

// fileHash is the SHA-256 of a file, for "unchanged" checks.
func fileHash(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(data)
	return fmt.Sprintf("%x", sum[:8])
}
