package lab

import (
	"strings"
	"testing"
	"time"
)

func TestShippedTopologiesParseAndPlan(t *testing.T) {
	want := []string{"five-sites", "five-sites-full", "ha-pair", "triangle", "twelve-sites", "two-hypervisors"}
	if got := Shipped(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("Shipped() = %v, want %v", got, want)
	}
	for _, name := range want {
		t.Run(name, func(t *testing.T) {
			top, err := Load(name)
			if err != nil {
				t.Fatal(err)
			}
			if top.Name != name {
				t.Errorf("name = %q, want %q", top.Name, name)
			}
			if _, err := MakePlan(top); err != nil {
				t.Fatal(err)
			}
		})
	}
}

const minimal = `
[[router]]
name = "r"
[[site]]
name = "hv1"
vms = ["vm11"]
[[site]]
name = "hv2"
vms = ["vm21"]
[[link]]
a = "hv1"
b = "r"
[[link]]
a = "hv2"
b = "r"
`

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		text string
		want string // in the error
	}{
		{"unknown key", minimal + "[[link]]\na = \"hv1\"\nb = \"r\"\ndelya = \"5ms\"\n", "lab.toml:19: link.delya: unknown field"},
		{"bad delay", minimal + "[[link]]\na = \"hv1\"\nb = \"r\"\ndelay = \"5\"\n", `lab.toml:19: link[3].delay: "5": not a duration`},
		{"loss without percent", strings.Replace(minimal, "b = \"r\"\n", "b = \"r\"\nloss = \"0.5\"\n", 1), `link[1].loss: "0.5": want a percentage`},
		{"loss over 100", strings.Replace(minimal, "b = \"r\"\n", "b = \"r\"\nloss = \"101%\"\n", 1), "link[1].loss"},
		{"bad rate", strings.Replace(minimal, "b = \"r\"\n", "b = \"r\"\nrate = \"fast\"\n", 1), `link[1].rate: "fast": want a rate`},
		{"jitter over delay", strings.Replace(minimal, "b = \"r\"\n", "b = \"r\"\ndelay = \"1ms\"\njitter = \"2ms\"\n", 1), "link[1].jitter: 2ms: must not exceed the delay"},
		{"unknown node", minimal + "[[link]]\na = \"hv1\"\nb = \"nowhere\"\n", `link[3].b: "nowhere": no such site or router`},
		{"duplicate name", minimal + "[[site]]\nname = \"r\"\n", `site[3].name: "r": already names a router`},
		{"reserved name", minimal + "[[router]]\nname = \"relay\"\n", `"relay": reserved`},
		{"bad name", minimal + "[[router]]\nname = \"Big Router\"\n", `router[2].name: "Big Router"`},
		{"name too long", minimal + "[[router]]\nname = \"abcdefghijklmno\"\n", "a name is 1 to 14"},
		{"nat without uplink", minimal + "[[router]]\nname = \"n\"\nnat = true\n", "router[2].uplink: missing"},
		{"nat uplink not linked", minimal + "[[router]]\nname = \"n\"\nnat = true\nuplink = \"r\"\n", `router[2].uplink: "r": no link joins n and r`},
		{"peering with a router", minimal + "[[peering]]\na = \"hv1\"\nb = \"r\"\n", `peering[1].b: "r": no such site`},
		{"peering twice", minimal + "[[peering]]\na = \"hv1\"\nb = \"hv2\"\n[[peering]]\na = \"hv2\"\nb = \"hv1\"\n", "peering[2]: hv2-hv1: listed twice"},
		{"bad event", minimal + "[[event]]\ndo = \"explode hv1\"\n", `event[1].do: "explode hv1": unknown action`},
		{"stop a router", minimal + "[[event]]\ndo = \"stop r\"\n", `event[1].do: "stop r": "r": no such site`},
		{"no sites", "[[router]]\nname = \"r\"\n", "at least one [[site]]"},
		{"broadcast from nowhere", minimal + "[checks]\nbroadcast_from = \"vm99\"\n", `checks.broadcast_from: "vm99": no such VM`},
		{"syntax", "name = \n", "lab.toml:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("lab.toml", []byte(tt.text))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse: error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParseImpairments(t *testing.T) {
	text := strings.Replace(minimal, "b = \"r\"\n", `b = "r"
delay = "20ms"
jitter = "2ms"
loss = "0.5%"
duplicate = "1%"
reorder = "2%"
reorder_delay = "3ms"
rate = "10mbit"
queue = "50ms"
`, 1)
	top, err := Parse("lab.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	want := Impairment{Delay: 20 * time.Millisecond, Jitter: 2 * time.Millisecond, Loss: 0.005, Duplicate: 0.01,
		Reorder: 0.02, ReorderDelay: 3 * time.Millisecond, Rate: 10e6, Queue: 50 * time.Millisecond}
	if got := top.impair[0]; got != want {
		t.Errorf("impairment = %+v, want %+v", got, want)
	}
	if got := top.impair[1]; !got.IsZero() {
		t.Errorf("second link's impairment = %+v, want none", got)
	}
	if s := want.String(); s != "delay 20ms, jitter 2ms, loss 0.5%, duplicate 1%, reorder 2%, rate 10mbit" {
		t.Errorf("String() = %q", s)
	}
}

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"100mbit", 100e6}, {"1gbit", 1e9}, {"512kbit", 512e3}, {"1.5mbit", 1.5e6},
		{"10Mbit/s", 10e6}, {"20mbps", 20e6}, {"64000", 64000}, {"8000bit", 8000},
	}
	for _, tt := range tests {
		if got, err := parseRate(tt.in); err != nil || got != tt.want {
			t.Errorf("parseRate(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "fast", "1kbit", "-5mbit", "200gbit", "mbit"} {
		if _, err := parseRate(bad); err == nil {
			t.Errorf("parseRate(%q): no error", bad)
		}
	}
}

func TestParseAction(t *testing.T) {
	kinds := map[string]string{"a": "site", "b": "site", "r": "router", "vm1": "vm"}
	tests := []struct {
		in   string
		want action
		err  string
	}{
		{in: "cut a b", want: action{Verb: "cut", A: "a", B: "b"}},
		{in: "heal a r", want: action{Verb: "heal", A: "a", B: "r"}},
		{in: "stop a", want: action{Verb: "stop", A: "a"}},
		{in: " start   b ", want: action{Verb: "start", A: "b"}},
		{in: "roam a", want: action{Verb: "roam", A: "a"}},
		{in: "cut a", err: "cut takes two nodes"},
		{in: "cut a a", err: "itself"},
		{in: "cut a vm1", err: `"vm1": no such site or router`},
		{in: "stop r", err: `"r": no such site`},
		{in: "roam", err: "roam takes one site"},
		{in: "", err: "empty"},
		{in: "reboot a", err: "unknown action"},
	}
	for _, tt := range tests {
		got, err := parseAction(tt.in, kinds)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseAction(%q): error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseAction(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}
