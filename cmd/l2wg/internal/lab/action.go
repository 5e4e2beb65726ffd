package lab

import (
	"errors"
	"fmt"
	"strings"
)

// An action is one thing done to a running lab: by an [[event]] of lab run,
// or by lab cut/heal/stop/start/roam.
type action struct {
	Verb string // cut, heal, stop, start, roam
	A, B string // B only for cut and heal
}

func (a action) String() string {
	if a.B != "" {
		return a.Verb + " " + a.A + " " + a.B
	}
	return a.Verb + " " + a.A
}

// parseAction parses "cut a b", "stop a", ...; kinds maps every node name of
// the topology to "site", "router" or "vm".
func parseAction(s string, kinds map[string]string) (action, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return action{}, errors.New("empty; want cut A B, heal A B, stop SITE, start SITE or roam SITE")
	}
	a := action{Verb: f[0]}
	switch a.Verb {
	case "cut", "heal":
		if len(f) != 3 {
			return a, fmt.Errorf("%s takes two nodes: %s A B", a.Verb, a.Verb)
		}
		a.A, a.B = f[1], f[2]
		for _, n := range []string{a.A, a.B} {
			if k := kinds[n]; k != "site" && k != "router" {
				return a, fmt.Errorf("%q: no such site or router", n)
			}
		}
		if a.A == a.B {
			return a, errors.New("cut between a node and itself")
		}
	case "stop", "start", "roam":
		if len(f) != 2 {
			return a, fmt.Errorf("%s takes one site: %s SITE", a.Verb, a.Verb)
		}
		a.A = f[1]
		if kinds[a.A] != "site" {
			return a, fmt.Errorf("%q: no such site", a.A)
		}
	default:
		return a, fmt.Errorf("unknown action %q; want cut, heal, stop, start or roam", a.Verb)
	}
	return a, nil
}
