package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// do carries out an action on the running lab and says what it did.
func (l *Lab) do(ctx context.Context, a action) (string, error) {
	switch a.Verb {
	case "cut":
		return l.cut(ctx, a.A, a.B)
	case "heal":
		return l.heal(ctx, a.A, a.B)
	case "stop":
		if err := l.stopSite(a.A); err != nil {
			return "", err
		}
		return fmt.Sprintf("stopped %s's l2wg", a.A), nil
	case "start":
		st, err := readState(l.Dir)
		if err != nil {
			return "", err
		}
		if r := st.Procs["l2wg "+a.A]; r.alive() {
			return "", fmt.Errorf("start %s: its l2wg is running (pid %d)", a.A, r.PID)
		}
		if err := l.startSite(ctx, a.A, st.Detached); err != nil {
			return "", err
		}
		return fmt.Sprintf("started %s's l2wg", a.A), nil
	case "roam":
		return l.roam(a.A)
	}
	return "", fmt.Errorf("unknown action %q", a.Verb)
}

// DoString parses and carries out an action, as lab run's [[event]] and the
// lab commands take it: "cut a b", "heal a b", "stop a", "start a", "roam a".
// It says what it did.
func (l *Lab) DoString(ctx context.Context, s string) (string, error) {
	a, err := parseAction(s, l.kinds())
	if err != nil {
		return "", err
	}
	return l.do(ctx, a)
}

// kinds maps every name in the lab to site, router or vm.
func (l *Lab) kinds() map[string]string {
	k := make(map[string]string)
	for _, n := range l.Plan.Nodes {
		k[n.Name] = "site"
		if n.Router {
			k[n.Name] = "router"
		}
	}
	for _, v := range l.Plan.VMs {
		k[v.Name] = "vm"
	}
	return k
}

// cut takes the links between a and b down, or, when none joins them,
// drops the underlay traffic between sites a and b at every router.
func (l *Lab) cut(ctx context.Context, a, b string) (string, error) {
	st, err := readState(l.Dir)
	if err != nil {
		return "", err
	}
	if cutPair(st, a, b) {
		return "", fmt.Errorf("cut %s %s: already cut", a, b)
	}
	var did string
	if links := l.Plan.LinksBetween(a, b); len(links) > 0 {
		for _, k := range links {
			for _, e := range []*Iface{k.A, k.B} {
				if err := l.NS.Down(e.Node.Name, e.Name); err != nil {
					return "", err
				}
			}
		}
		did = fmt.Sprintf("took the link %s-%s down", a, b)
	} else {
		na, nb := l.Plan.Node(a), l.Plan.Node(b)
		if na.Router || nb.Router {
			return "", fmt.Errorf("cut %s %s: no link joins them (a cut without a link is between two sites)", a, b)
		}
		rules := l.cutRules(st, na, nb)
		path := filepath.Join(l.Dir, "routes", "cut-"+a+"-"+b+".nft")
		if err := os.WriteFile(path, []byte(rules), 0o644); err != nil {
			return "", err
		}
		for _, n := range l.Plan.Nodes {
			if !n.Router {
				continue
			}
			if _, err := l.NS.ExecContext(ctx, n.Name, "nft", "-f", path); err != nil {
				return "", fmt.Errorf("cut on %s: %w", n.Name, err)
			}
		}
		did = fmt.Sprintf("every router drops the underlay traffic between %s and %s", a, b)
	}
	return did, updateState(l.Dir, func(st *state) error { st.Cuts = append(st.Cuts, pairKey(a, b)); return nil })
}

// cutTable names the nftables table of a cut between two sites.
func (l *Lab) cutTable(a, b *Node) string {
	ia, ib := 0, 0
	for i, n := range l.Plan.Nodes {
		if n == a {
			ia = i
		}
		if n == b {
			ib = i
		}
	}
	return fmt.Sprintf("l2wglab_cut_%d_%d", min(ia, ib), max(ia, ib))
}

// cutRules drops traffic between every address of a (its NAT's public one
// included) and every address of b.
func (l *Lab) cutRules(st *state, a, b *Node) string {
	set := func(n *Node) string {
		var as []string
		for _, i := range n.Ifaces {
			as = append(as, l.currentAddr(st, i).String())
		}
		if n.BehindNAT != nil {
			as = append(as, l.publicAddr(st, n).String())
		}
		return "{ " + strings.Join(as, ", ") + " }"
	}
	return fmt.Sprintf(`table ip %s {
	chain forward {
		type filter hook forward priority filter - 10; policy accept;
		ip saddr %[2]s ip daddr %[3]s drop
		ip saddr %[3]s ip daddr %[2]s drop
	}
}
`, l.cutTable(a, b), set(a), set(b))
}

// heal undoes cut a b.
func (l *Lab) heal(ctx context.Context, a, b string) (string, error) {
	st, err := readState(l.Dir)
	if err != nil {
		return "", err
	}
	if !cutPair(st, a, b) {
		return "", fmt.Errorf("heal %s %s: not cut", a, b)
	}
	if err := updateState(l.Dir, func(st *state) error { st.Cuts = remove(st.Cuts, pairKey(a, b)); return nil }); err != nil {
		return "", err
	}
	var did string
	if links := l.Plan.LinksBetween(a, b); len(links) > 0 {
		for _, k := range links {
			for _, e := range []*Iface{k.A, k.B} {
				if err := l.NS.Up(e.Node.Name, e.Name); err != nil {
					return "", err
				}
			}
		}
		// The kernel dropped the routes over the links while they were down.
		for _, n := range l.Plan.Nodes {
			if err := l.applyRoutes(n); err != nil {
				return "", err
			}
		}
		did = fmt.Sprintf("brought the link %s-%s back up", a, b)
	} else {
		table := l.cutTable(l.Plan.Node(a), l.Plan.Node(b))
		var errs []error
		for _, n := range l.Plan.Nodes {
			if n.Router {
				if _, err := l.NS.ExecContext(ctx, n.Name, "nft", "delete", "table", "ip", table); err != nil {
					errs = append(errs, err)
				}
			}
		}
		if err := errors.Join(errs...); err != nil {
			return "", err
		}
		did = fmt.Sprintf("the routers pass the traffic between %s and %s again", a, b)
	}
	return did, nil
}
