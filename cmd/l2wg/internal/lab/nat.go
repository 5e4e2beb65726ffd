package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// applyNAT sets up masquerading on every NAT router.
func (l *Lab) applyNAT(ctx context.Context, _ bool) error {
	for _, n := range l.Plan.Nodes {
		if !n.NAT {
			continue
		}
		var ups []string
		for _, i := range n.Ifaces {
			if l.Plan.isUplink(i) {
				ups = append(ups, fmt.Sprintf("%q", i.Name))
			}
		}
		set := "{ " + strings.Join(ups, ", ") + " }"
		rules := fmt.Sprintf(`table ip l2wglab_nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname %[1]s masquerade random
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		iifname %[1]s ct state new drop
	}
}
`, set)
		path := filepath.Join(l.Dir, "routes", n.Name+".nft")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(rules), 0o644); err != nil {
			return err
		}
		if _, err := exec.LookPath("nft"); err != nil {
			return fmt.Errorf("router %s does NAT, which needs nft (apt-get install nftables)", n.Name)
		}
		if _, err := l.NS.ExecContext(ctx, n.Name, "nft", "-f", path); err != nil {
			return fmt.Errorf("nat on %s: %w", n.Name, err)
		}
	}
	return nil
}

// CheckNAT checks every site behind NAT: its peers' configs have no
// endpoint for it, yet they talk to it at its NAT router's public address.
func (l *Lab) CheckNAT(ctx context.Context) Check {
	start := time.Now()
	c := Check{Name: "nat"}
	st, _ := readState(l.Dir)
	var lines []string
	ok := true
	found := false
	for _, pe := range l.activePeerings() {
		for _, pair := range [][2]*Node{{pe.A, pe.B}, {pe.B, pe.A}} {
			natted, peer := pair[0], pair[1]
			r := natted.BehindNAT
			if r == nil || peer.BehindNAT == r {
				continue
			}
			found = true
			conf, err := os.ReadFile(l.ConfPath(peer.Name))
			if err != nil {
				ok = false
				lines = append(lines, err.Error())
				continue
			}
			if section := peerSection(string(conf), natted.Name); strings.Contains(section, "\nendpoint =") {
				ok = false
				lines = append(lines, fmt.Sprintf("%s's config has an endpoint for %s", peer.Name, natted.Name))
			}
			public := l.publicAddr(st, natted)
			ps, err := l.Status(ctx, peer.Name)
			if err != nil {
				ok = false
				lines = append(lines, err.Error())
				continue
			}
			ep := ps.peerEndpoint(natted.Name)
			ap, perr := netip.ParseAddrPort(ep)
			if perr != nil || ap.Addr() != public {
				ok = false
				lines = append(lines, fmt.Sprintf("%s sees %s at %q, not at %s's public address %s", peer.Name, natted.Name, ep, r.Name, public))
				continue
			}
			lines = append(lines, fmt.Sprintf("%s (no endpoint configured) sees %s at %s, %s's public address", peer.Name, natted.Name, ep, r.Name))
		}
	}
	if !found {
		c.Status, c.Summary = statusSkip, "no site behind NAT"
		return c
	}
	c.Status = verdict(ok)
	c.Summary = "sites behind NAT dial out; their peers learn them at the NAT's address"
	c.Details = lines
	c.Took = time.Since(start)
	return c
}

// peerSection returns the [[peer]] table of node.toml text for peer name.
func peerSection(conf, name string) string {
	parts := strings.Split(conf, "[[peer]]")
	for _, p := range parts[1:] {
		if strings.Contains(p, fmt.Sprintf("name = %q", name)) {
			return p
		}
	}
	return ""
}

// publicAddr is the address site n's traffic carries on the underlay
// outside its NAT: the NAT router's uplink address, or n's own.
func (l *Lab) publicAddr(st *state, n *Node) netip.Addr {
	if r := n.BehindNAT; r != nil {
		for _, i := range r.Ifaces {
			if l.Plan.isUplink(i) {
				return l.currentAddr(st, i)
			}
		}
	}
	if len(n.Ifaces) > 0 {
		return l.currentAddr(st, n.Ifaces[0])
	}
	return netip.Addr{}
}

// currentAddr is i's address now: the plan's, unless roaming changed it.
func (l *Lab) currentAddr(st *state, i *Iface) netip.Addr {
	if st != nil {
		if s, ok := st.Addrs[i.Node.Name+"/"+i.Name]; ok {
			if a, err := netip.ParseAddr(s); err == nil {
				return a
			}
		}
	}
	return i.Addr
}
