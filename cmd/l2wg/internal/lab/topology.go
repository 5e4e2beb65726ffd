package lab

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/tomlpos"
	toml "github.com/pelletier/go-toml/v2"
)

// A Topology is a lab as its file describes it: routers, sites (hypervisors
// with VMs), the underlay links between them with their impairments, which
// sites peer, and what happens during a run. Parse validates it; Plan turns
// it into addresses, routes and node configs.
type Topology struct {
	Name        string       `toml:"name"`
	Description string       `toml:"description"`
	VMSubnet    string       `toml:"vm_subnet"`
	Seed        *int64       `toml:"seed"`
	L2WG        L2WGSettings `toml:"l2wg"`
	STP         *STPSettings `toml:"stp"`
	Mesh        MeshSettings `toml:"mesh"`
	Checks      Checks       `toml:"checks"`
	Routers     []Router     `toml:"router"`
	Sites       []Site       `toml:"site"`
	Links       []Link       `toml:"link"`
	Peerings    []Peering    `toml:"peering"`
	Events      []Event      `toml:"event"`

	// Source is where the topology came from: a shipped name or a path.
	Source string `toml:"-"`
	// Text is the file as read.
	Text []byte `toml:"-"`

	vmSubnet netip.Prefix
	impair   []Impairment // by link index
}

// L2WGSettings go into every site's node.toml.
type L2WGSettings struct {
	LogLevel   string `toml:"log_level"`   // default "info"
	TunnelMTU  int    `toml:"tunnel_mtu"`  // default: l2wg's (1420)
	AgeingTime string `toml:"ageing_time"` // default: l2wg's (300s)
	// Keepalive is the persistent_keepalive, in seconds, of a site toward a
	// peer that cannot reach it (a site behind NAT dials out). Default 5: a
	// lab wants fast recovery, not battery life.
	Keepalive int `toml:"keepalive"`
	// PersistentTAP sets tap.persistent on every site: a restarted l2wg
	// finds its TAP still in br0.
	PersistentTAP bool `toml:"persistent_tap"`
}

// STPSettings are the [stp] table of every site's node.toml. A topology
// without [stp] generates no [stp] table (l2wg's defaults apply).
type STPSettings struct {
	Enabled      *bool  `toml:"enabled"`
	HelloTime    string `toml:"hello_time"`
	MaxAge       string `toml:"max_age"`
	ForwardDelay string `toml:"forward_delay"`
	TAP          string `toml:"tap"`
	Protocol     string `toml:"protocol"` // "rstp" or "stp" where l2wg has both
}

// on reports whether the topology runs the spanning tree.
func (s *STPSettings) on() bool { return s != nil && (s.Enabled == nil || *s.Enabled) }

// Checks tune what lab run checks.
type Checks struct {
	// BroadcastFrom is the VM that sends the broadcast ping; default the
	// first VM.
	BroadcastFrom string `toml:"broadcast_from"`
	// ConvergeTimeout bounds each wait for convergence; default 60s.
	ConvergeTimeout string `toml:"converge_timeout"`
	// ShortestPaths requires every VM pair's round trip to be within
	// 1.1 x the best underlay path through the peerings + 2 ms (meshpaths.go).
	// Without it the pair matrix is printed but not judged.
	ShortestPaths bool `toml:"shortest_paths"`

	convergeTimeout time.Duration
}

// A Router is an underlay router namespace: it forwards between its links.
// With NAT it masquerades what leaves through the link to Uplink and lets
// no new connection in from there, so the sites behind it have no reachable
// address.
type Router struct {
	Name   string `toml:"name"`
	NAT    bool   `toml:"nat"`
	Uplink string `toml:"uplink"`
}

// A Site is a hypervisor: a namespace with a VM bridge br0, an l2wg whose
// TAP is in br0, and VMs on br0.
type Site struct {
	Name     string `toml:"name"`
	Location string `toml:"location"` // free text for reports
	// VMs are VM names; a VM whose name ends in a number N that is a free
	// host address of vm_subnet gets .N (vm21 -> 192.168.77.21), others the
	// next free address from .100.
	VMs []string `toml:"vms"`
	// VM tables give a VM an explicit address.
	VM          []VM  `toml:"vm"`
	Priority    *int  `toml:"priority"`     // stp priority of this site's l2wg
	IsolateHost *bool `toml:"isolate_host"` // default true
	ListenPort  int   `toml:"listen_port"`  // default 51820
	// LAN names a LAN that the VM bridges of several sites share (two
	// hypervisors of one site on one switch): the lab joins their br0s.
	LAN string `toml:"lan"`
}

// A VM is a namespace with eth0 on its site's br0.
type VM struct {
	Name    string `toml:"name"`
	Address string `toml:"address"` // in vm_subnet, with or without /len
}

// A Link is an underlay cable between two nodes (sites or routers). Without
// impairments it is a veth pair; with any, two TAPs joined by the lab's
// relay, which delays, drops, duplicates, reorders and rate-limits frames in
// both directions alike.
type Link struct {
	A      string `toml:"a"`
	B      string `toml:"b"`
	Subnet string `toml:"subnet"` // default 10.0.<n>.0/24 for the n-th link; a = .1, b = .2
	MTU    int    `toml:"mtu"`    // default 1500

	Delay        string `toml:"delay"`         // one way, e.g. "20ms"
	Jitter       string `toml:"jitter"`        // +- uniformly, order kept
	Loss         string `toml:"loss"`          // "0.5%"
	Duplicate    string `toml:"duplicate"`     // "0.1%"
	Reorder      string `toml:"reorder"`       // "1%": held back by reorder_delay, so later frames pass
	ReorderDelay string `toml:"reorder_delay"` // default 1ms
	Rate         string `toml:"rate"`          // "100mbit", "1gbit", "512kbit"
	Queue        string `toml:"queue"`         // with rate: the most backlog before tail drop, default 100ms
	Relay        bool   `toml:"relay"`         // use the relay even without impairments
}

// A Peering makes two sites WireGuard peers of each other. A site that can
// reach the other's underlay address gets it as endpoint; one that cannot
// (behind NAT) has none, and the other dials out with persistent_keepalive.
type Peering struct {
	A    string `toml:"a"`
	B    string `toml:"b"`
	Cost int    `toml:"cost"` // stp path cost at both ends; 0 = l2wg's default
}

// An Event happens during lab run, after the first checks; the lab waits for
// convergence after it and checks again.
//
//	cut A B    take the link A-B down, or, without one, drop all underlay
//	           traffic between sites A and B at every router
//	heal A B   undo cut A B
//	stop S     stop site S's l2wg (SIGTERM)
//	start S    start it again
//	roam S     give site S (and the NAT router in front of it) a new underlay
//	           address; its peers' configs stay as they are
type Event struct {
	Do string `toml:"do"`
}

// Impairment is what the relay does to each direction of a link.
type Impairment struct {
	Delay        time.Duration `json:"delay,omitempty"`
	Jitter       time.Duration `json:"jitter,omitempty"`
	Loss         float64       `json:"loss,omitempty"`      // probability 0..1
	Duplicate    float64       `json:"duplicate,omitempty"` // probability 0..1
	Reorder      float64       `json:"reorder,omitempty"`   // probability 0..1
	ReorderDelay time.Duration `json:"reorder_delay,omitempty"`
	Rate         int64         `json:"rate,omitempty"`  // bit/s, 0 = unlimited
	Queue        time.Duration `json:"queue,omitempty"` // backlog limit at Rate
}

// IsZero reports whether the impairment does nothing.
func (im Impairment) IsZero() bool {
	return im.Delay == 0 && im.Jitter == 0 && im.Loss == 0 && im.Duplicate == 0 && im.Reorder == 0 && im.Rate == 0
}

// String is the impairment as a topology file would write it.
func (im Impairment) String() string {
	var parts []string
	if im.Delay > 0 {
		parts = append(parts, "delay "+im.Delay.String())
	}
	if im.Jitter > 0 {
		parts = append(parts, "jitter "+im.Jitter.String())
	}
	pct := func(name string, p float64) {
		if p > 0 {
			parts = append(parts, fmt.Sprintf("%s %s%%", name, strconv.FormatFloat(p*100, 'f', -1, 64)))
		}
	}
	pct("loss", im.Loss)
	pct("duplicate", im.Duplicate)
	pct("reorder", im.Reorder)
	if im.Rate > 0 {
		parts = append(parts, "rate "+formatRate(im.Rate))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// Limits.
const (
	maxNameLen      = 14 // a VM port on br0 is "p" + the VM's name, at most 15 bytes
	defaultMTU      = 1500
	defaultVMSubnet = "192.168.77.0/24"
	defaultKeepal   = 5
	defaultConverge = 60 * time.Second
	defaultQueue    = 100 * time.Millisecond
	defaultReorderD = time.Millisecond
)

// reservedNames are namespace or interface names the lab uses itself.
var reservedNames = map[string]bool{"relay": true, "lo": true, "br0": true, "eth0": true, "l2wg0": true}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// LoadFile reads and parses a topology file.
func LoadFile(path string) (*Topology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read topology: %w", err)
	}
	t, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	if t.Name == "" {
		t.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	return t, nil
}

// Parse parses and validates a topology file; file names it in errors.
func Parse(file string, data []byte) (*Topology, error) {
	var t Topology
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return nil, decodeError(file, err)
	}
	t.Source = file
	t.Text = data
	lines, _ := tomlpos.KeyLines(data)
	v := &validator{file: file, lines: lines}
	v.validate(&t)
	if len(v.errs) > 0 {
		return nil, errors.Join(v.errs...)
	}
	return &t, nil
}

// decodeError turns go-toml's errors into file:line: field: message.
func decodeError(file string, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var errs []error
		for _, e := range strict.Errors {
			row, _ := e.Position()
			errs = append(errs, fmt.Errorf("%s:%d: %s: unknown field", file, row, strings.Join(e.Key(), ".")))
		}
		return errors.Join(errs...)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		return fmt.Errorf("%s:%d: %s", file, row, strings.TrimPrefix(de.Error(), "toml: "))
	}
	return fmt.Errorf("%s: %s", file, strings.TrimPrefix(err.Error(), "toml: "))
}

type validator struct {
	file  string
	lines map[string]int
	errs  []error
}

// fail records a problem with field, located by its line (or its table's).
func (v *validator) fail(field, format string, args ...any) {
	line := v.lines[field]
	for f := field; line == 0 && strings.Contains(f, "."); {
		f = f[:strings.LastIndex(f, ".")]
		line = v.lines[f]
	}
	loc := v.file
	if line > 0 {
		loc = fmt.Sprintf("%s:%d", v.file, line)
	}
	v.errs = append(v.errs, fmt.Errorf("%s: %s: %s", loc, field, fmt.Sprintf(format, args...)))
}

func (v *validator) validate(t *Topology) {
	if t.Name != "" && !validLabName(t.Name) {
		v.fail("name", "%q: use 1 to 40 of a-z, 0-9, '-', '_'", t.Name)
	}
	if t.VMSubnet == "" {
		t.VMSubnet = defaultVMSubnet
	}
	p, err := netip.ParsePrefix(t.VMSubnet)
	if err != nil || !p.Addr().Is4() || p.Bits() > 29 {
		v.fail("vm_subnet", "%q: want an IPv4 prefix of /29 or wider, e.g. 192.168.77.0/24", t.VMSubnet)
	} else {
		t.vmSubnet = p.Masked()
	}
	if t.L2WG.Keepalive == 0 {
		t.L2WG.Keepalive = defaultKeepal
	} else if t.L2WG.Keepalive < 0 || t.L2WG.Keepalive > 65535 {
		v.fail("l2wg.keepalive", "%d: must be between 1 and 65535 seconds", t.L2WG.Keepalive)
	}
	switch t.L2WG.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		v.fail("l2wg.log_level", "%q: must be debug, info, warn or error", t.L2WG.LogLevel)
	}
	if s := t.STP; s != nil {
		for _, d := range []struct{ field, val string }{{"stp.hello_time", s.HelloTime}, {"stp.max_age", s.MaxAge}, {"stp.forward_delay", s.ForwardDelay}} {
			if d.val != "" {
				if _, err := time.ParseDuration(d.val); err != nil {
					v.fail(d.field, "%q: not a duration", d.val)
				}
			}
		}
	}
	v.validateMesh(t)
	t.Checks.convergeTimeout = v.duration("checks.converge_timeout", t.Checks.ConvergeTimeout, defaultConverge)

	names := make(map[string]string) // name -> what
	claim := func(field, name, what string) {
		switch {
		case !nameRE.MatchString(name) || len(name) > maxNameLen:
			v.fail(field, "%q: a name is 1 to %d of a-z, 0-9, '-', '_', starting with a letter or digit", name, maxNameLen)
		case reservedNames[name]:
			v.fail(field, "%q: reserved for the lab's own use", name)
		case names[name] != "":
			v.fail(field, "%q: already names a %s", name, names[name])
		default:
			names[name] = what
		}
	}
	for i, r := range t.Routers {
		claim(fmt.Sprintf("router[%d].name", i+1), r.Name, "router")
	}
	for i := range t.Sites {
		s := &t.Sites[i]
		at := fmt.Sprintf("site[%d]", i+1)
		claim(at+".name", s.Name, "site")
		for _, vm := range s.VMs {
			claim(at+".vms", vm, "vm")
		}
		for j, vm := range s.VM {
			claim(fmt.Sprintf("%s.vm[%d].name", at, j+1), vm.Name, "vm")
		}
		if s.Priority != nil && (*s.Priority < 0 || *s.Priority > 65535) {
			v.fail(at+".priority", "%d: must be between 0 and 65535", *s.Priority)
		}
		if s.ListenPort < 0 || s.ListenPort > 65535 {
			v.fail(at+".listen_port", "%d: must be between 1 and 65535", s.ListenPort)
		}
	}
	if len(t.Sites) == 0 {
		v.fail("site", "a topology needs at least one [[site]]")
	}
	isSite := func(n string) bool { return names[n] == "site" }
	isNode := func(n string) bool { return names[n] == "site" || names[n] == "router" }

	for i, r := range t.Routers {
		at := fmt.Sprintf("router[%d]", i+1)
		switch {
		case r.NAT && r.Uplink == "":
			v.fail(at+".uplink", "missing: a NAT router masquerades toward its uplink; name the node on its outside")
		case !r.NAT && r.Uplink != "":
			v.fail(at+".uplink", "%q: only a NAT router (nat = true) has an uplink", r.Uplink)
		case r.Uplink != "" && !isNode(r.Uplink):
			v.fail(at+".uplink", "%q: no such site or router", r.Uplink)
		}
	}

	type pair struct{ a, b string }
	linked := make(map[pair]int)
	t.impair = make([]Impairment, len(t.Links))
	for i := range t.Links {
		l := &t.Links[i]
		at := fmt.Sprintf("link[%d]", i+1)
		for _, e := range []struct{ f, n string }{{".a", l.A}, {".b", l.B}} {
			if !isNode(e.n) {
				v.fail(at+e.f, "%q: no such site or router", e.n)
			}
		}
		if l.A == l.B {
			v.fail(at+".b", "%q: a link joins two different nodes", l.B)
		}
		linked[pair{l.A, l.B}]++
		linked[pair{l.B, l.A}]++
		if l.MTU == 0 {
			l.MTU = defaultMTU
		} else if l.MTU < 1280 || l.MTU > 2000 {
			v.fail(at+".mtu", "%d: must be between 1280 and 2000", l.MTU)
		}
		if l.Subnet != "" {
			p, err := netip.ParsePrefix(l.Subnet)
			if err != nil || !p.Addr().Is4() || p.Bits() > 30 {
				v.fail(at+".subnet", "%q: want an IPv4 prefix of /30 or wider", l.Subnet)
			}
		}
		im := Impairment{
			Delay:        v.duration(at+".delay", l.Delay, 0),
			Jitter:       v.duration(at+".jitter", l.Jitter, 0),
			Loss:         v.percent(at+".loss", l.Loss),
			Duplicate:    v.percent(at+".duplicate", l.Duplicate),
			Reorder:      v.percent(at+".reorder", l.Reorder),
			ReorderDelay: v.duration(at+".reorder_delay", l.ReorderDelay, defaultReorderD),
			Rate:         v.rate(at+".rate", l.Rate),
			Queue:        v.duration(at+".queue", l.Queue, defaultQueue),
		}
		if im.Jitter > 0 && im.Jitter > im.Delay {
			v.fail(at+".jitter", "%s: must not exceed the delay (%s)", im.Jitter, im.Delay)
		}
		if im.Delay > 10*time.Second {
			v.fail(at+".delay", "%s: at most 10s", im.Delay)
		}
		t.impair[i] = im
	}
	for i, r := range t.Routers {
		if r.NAT && r.Uplink != "" && linked[pair{r.Name, r.Uplink}] == 0 {
			v.fail(fmt.Sprintf("router[%d].uplink", i+1), "%q: no link joins %s and %s", r.Uplink, r.Name, r.Uplink)
		}
	}

	seen := make(map[pair]bool)
	for i, p := range t.Peerings {
		at := fmt.Sprintf("peering[%d]", i+1)
		for _, e := range []struct{ f, n string }{{".a", p.A}, {".b", p.B}} {
			if !isSite(e.n) {
				v.fail(at+e.f, "%q: no such site", e.n)
			}
		}
		if p.A == p.B {
			v.fail(at+".b", "%q: a site does not peer with itself", p.B)
		}
		if seen[pair{p.A, p.B}] {
			v.fail(at, "%s-%s: listed twice", p.A, p.B)
		}
		seen[pair{p.A, p.B}], seen[pair{p.B, p.A}] = true, true
		if p.Cost < 0 || p.Cost > 200_000_000 {
			v.fail(at+".cost", "%d: must be between 1 and 200000000", p.Cost)
		}
	}
	if b := t.Checks.BroadcastFrom; b != "" && names[b] != "vm" {
		v.fail("checks.broadcast_from", "%q: no such VM", b)
	}
	for i, e := range t.Events {
		if _, err := parseAction(e.Do, names); err != nil {
			v.fail(fmt.Sprintf("event[%d].do", i+1), "%q: %v", e.Do, err)
		}
	}
}

// duration parses an optional duration field.
func (v *validator) duration(field, s string, def time.Duration) time.Duration {
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		v.fail(field, "%q: not a duration (a number with a unit, e.g. \"20ms\")", s)
		return def
	}
	return d
}

// percent parses "0.5%" into 0.005.
func (v *validator) percent(field, s string) float64 {
	if s == "" {
		return 0
	}
	p, err := parsePercent(s)
	if err != nil {
		v.fail(field, "%q: %v", s, err)
	}
	return p
}

func parsePercent(s string) (float64, error) {
	num, ok := strings.CutSuffix(strings.TrimSpace(s), "%")
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if !ok || err != nil || math.IsNaN(f) || f < 0 || f > 100 {
		return 0, errors.New("want a percentage from 0% to 100%, e.g. \"0.5%\"")
	}
	return f / 100, nil
}

// rate parses a field like "100mbit".
func (v *validator) rate(field, s string) int64 {
	if s == "" {
		return 0
	}
	r, err := parseRate(s)
	if err != nil {
		v.fail(field, "%q: %v", s, err)
	}
	return r
}

// parseRate parses a rate as tc writes it: "512kbit", "100mbit", "1gbit",
// "1.5mbit" or a number of bit/s; "mbit/s" and "mbps" mean the same.
func parseRate(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(t, "/s")
	if n, ok := strings.CutSuffix(t, "bps"); ok {
		t = n + "bit"
	}
	mult := 1.0
	for _, u := range []struct {
		suffix string
		m      float64
	}{{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1}} {
		if n, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = n, u.m
			break
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || math.IsNaN(f) || f*mult < 8000 || f*mult > 100e9 {
		return 0, errors.New("want a rate from 8kbit to 100gbit, e.g. \"100mbit\"")
	}
	return int64(f * mult), nil
}

func formatRate(r int64) string {
	switch {
	case r >= 1e9 && r%1e9 == 0:
		return fmt.Sprintf("%dgbit", r/1e9)
	case r >= 1e6 && r%1e6 == 0:
		return fmt.Sprintf("%dmbit", r/1e6)
	case r >= 1e3 && r%1e3 == 0:
		return fmt.Sprintf("%dkbit", r/1e3)
	}
	return fmt.Sprintf("%dbit", r)
}

// validLabName reports whether name can be a lab's name (it goes into
// namespace names and a state directory).
func validLabName(name string) bool {
	return len(name) <= 40 && nameRE.MatchString(name)
}
