package lab

import "fmt"

// Shared LANs: sites whose [[site]] lan names the same LAN have their VM
// bridges joined by veth pairs, one after the other in declaration order, as
// two hypervisors of one site on one switch are (an active/standby pair).
// Their VMs reach each other over that LAN without l2wg, and the LAN closes
// a loop with the mesh whenever the sites are also joined by peerings.

// A PlannedLAN is a LAN shared by the VM bridges of several sites.
type PlannedLAN struct {
	Name  string
	Sites []*Node // in declaration order
}

// joinName is the veth end, in both sites, of the n-th join of the lab.
func joinName(n int) string { return fmt.Sprintf("lan%d", n) }

// planLANs groups the sites by LAN and marks the plan as looped when a LAN
// joins sites that peerings join already.
func (p *Plan) planLANs() {
	byName := make(map[string]*PlannedLAN)
	for _, n := range p.Sites() {
		if n.Site.LAN == "" {
			continue
		}
		lan := byName[n.Site.LAN]
		if lan == nil {
			lan = &PlannedLAN{Name: n.Site.LAN}
			byName[n.Site.LAN] = lan
			p.LANs = append(p.LANs, lan)
		}
		lan.Sites = append(lan.Sites, n)
	}
	joined := make(sets)
	for _, pe := range p.Peerings {
		joined.union(pe.A.Name, pe.B.Name)
	}
	for _, lan := range p.LANs {
		for _, s := range lan.Sites[1:] {
			if !joined.union(lan.Sites[0].Name, s.Name) {
				p.Loop = true
			}
		}
	}
}

// sameLAN reports whether sites a and b share a LAN.
func (p *Plan) sameLAN(a, b string) bool {
	na, nb := p.Node(a), p.Node(b)
	return na != nil && nb != nil && na.Site != nil && nb.Site != nil && na.Site.LAN != "" && na.Site.LAN == nb.Site.LAN
}

// joinLANs joins the VM bridges of every LAN's sites.
func (l *Lab) joinLANs() error {
	n := 0
	for _, lan := range l.Plan.LANs {
		for i := 1; i < len(lan.Sites); i++ {
			a, b := lan.Sites[i-1].Name, lan.Sites[i].Name
			name := joinName(n)
			n++
			if err := l.NS.Veth(a, name, b, name); err != nil {
				return fmt.Errorf("lan %s: %w", lan.Name, err)
			}
			for _, s := range []string{a, b} {
				if err := l.NS.SetMaster(s, name, vmBridge); err != nil {
					return fmt.Errorf("lan %s: %w", lan.Name, err)
				}
			}
		}
	}
	return nil
}
