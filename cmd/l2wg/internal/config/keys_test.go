package config

import (
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	toml "github.com/pelletier/go-toml/v2"
)

// filePaths lists the TOML path of every leaf of t (File), "peer.x" for a
// peer's keys.
func filePaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		ft := f.Type
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			out = append(out, filePaths(ft, prefix+name+".")...)
			continue
		}
		out = append(out, prefix+name)
	}
	return out
}

// Every key of node.toml has a row in the table, and every row a key.
func TestEveryFileKeyHasARow(t *testing.T) {
	paths := filePaths(reflect.TypeFor[File](), "")
	rows := make(map[string]bool)
	for _, k := range Keys {
		if rows[k.Path] {
			t.Errorf("key %s: two rows", k.Path)
		}
		rows[k.Path] = true
	}
	for _, p := range paths {
		if !rows[p] {
			t.Errorf("node.toml key %s has no row in config.Keys", p)
		}
		delete(rows, p)
	}
	for p := range rows {
		t.Errorf("row %s names no key of config.File", p)
	}
}

// setOther changes v to another value of its type.
func setOther(v reflect.Value) {
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Int, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32:
		v.SetUint(v.Uint() + 1)
	case reflect.Array:
		setOther(v.Index(0))
	default:
		panic("setOther: " + v.Kind().String())
	}
}

// Every field of Config is some row's value: a field that no row reads
// would be neither applied nor refused on reload. Peers are diffed apart.
func TestEveryConfigFieldIsDiffed(t *testing.T) {
	var check func(path []int, typ reflect.Type, name string)
	check = func(path []int, typ reflect.Type, name string) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			p := append(append([]int(nil), path...), i)
			switch {
			case !f.IsExported(), f.Name == "File", f.Name == "Peers":
				continue
			case f.Type.Kind() == reflect.Struct:
				check(p, f.Type, name+f.Name+".")
				continue
			}
			var old, next Config
			setOther(reflect.ValueOf(&next).Elem().FieldByIndex(p))
			d := Diff(&old, &next)
			if len(d.Keys) != 1 {
				t.Errorf("Config.%s%s: a change shows as %d keys in Diff, want 1: give it a row in config.Keys", name, f.Name, len(d.Keys))
			}
		}
	}
	check(nil, reflect.TypeFor[Config](), "")
	_ = time.Second
}

// Every field of a peer is some peer row's: a change of name or key is a
// peer removed and added, any other a change naming exactly that key.
func TestEveryPeerFieldIsDiffed(t *testing.T) {
	var check func(path []int, typ reflect.Type, name string)
	check = func(path []int, typ reflect.Type, name string) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			p := append(append([]int(nil), path...), i)
			switch {
			case !f.IsExported():
				continue
			case f.Type.Kind() == reflect.Struct && f.Anonymous:
				check(p, f.Type, name)
				continue
			case f.Type.Kind() == reflect.Struct: // such as VLANs: its fields
				check(p, f.Type, name+f.Name+".")
				continue
			}
			old := &Config{Peers: []Peer{{}}}
			next := &Config{Peers: []Peer{{}}}
			setOther(reflect.ValueOf(&next.Peers[0]).Elem().FieldByIndex(p))
			d := Diff(old, next)
			switch f.Name {
			case "Name", "PublicKey":
				if len(d.Removed) != 1 || len(d.Added) != 1 {
					t.Errorf("Peer.%s changed: %d removed, %d added; want the peer removed and added", f.Name, len(d.Removed), len(d.Added))
				}
			default:
				if len(d.Changed) != 1 || len(d.Changed[0].Keys) != 1 {
					t.Errorf("Peer.%s%s: a change is not one key of one peer in Diff (%+v): give it a peer row in config.Keys", name, f.Name, d.Changed)
				}
			}
		}
	}
	check(nil, reflect.TypeFor[Peer](), "")
}

// The defaults Parse applies are the table's.
func TestDefaultsAreTheTables(t *testing.T) {
	cfg, err := Load(writeConfig(t, "private_key_file = \"node.key\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys {
		if k.value == nil || k.Default == nil {
			continue
		}
		if got, want := fmt.Sprint(k.value(cfg)), fmt.Sprint(k.Default); got != want {
			t.Errorf("%s: default %s, the table says %s", k.Path, got, want)
		}
	}
}

// Ranges come from the table: one past each end is refused, the ends are
// taken.
func TestRangesAreTheTables(t *testing.T) {
	for _, k := range Keys {
		if k.Min == nil || strings.HasPrefix(k.Path, "peer.") {
			continue
		}
		table, key, ok := strings.Cut(k.Path, ".")
		head := "private_key_file = \"node.key\"\n"
		if !ok {
			key, table = table, ""
		}
		for _, c := range []struct {
			v  any
			ok bool
		}{{k.Min, true}, {k.Max, true}, {step(k.Min, -1), false}, {step(k.Max, +1), false}} {
			body := head
			if table != "" {
				body += "[" + table + "]\n"
			}
			body += key + " = " + valueText(c.v) + "\n"
			if k.Path == "stp.max_age" || strings.HasPrefix(k.Path, "stp.") && strings.HasSuffix(k.Path, "_time") || k.Path == "stp.forward_delay" {
				continue // bound by each other too (802.1D 8.10.2): see TestConfigErrorsNameFileLineAndField
			}
			_, err := Load(writeConfig(t, body))
			if (err == nil) != c.ok {
				t.Errorf("%s = %s: error %v, want ok=%v", k.Path, valueText(c.v), err, c.ok)
			}
		}
	}
}

func step(v any, by int) any {
	switch v := v.(type) {
	case int:
		return v + by
	case uint32:
		return int(v) + by
	case time.Duration:
		return v + time.Duration(by)*time.Millisecond
	}
	panic(v)
}

// Marshal writes what Parse reads back.
func TestMarshalRoundTrip(t *testing.T) {
	f := &File{
		PrivateKeyFile: "node.key", ListenPort: Ptr(51821), IsolateHost: Ptr(false), LogLevel: "debug",
		TAP:    FileTAP{Name: "vms0", Bridge: "br0"},
		Tunnel: FileTunnel{MTU: Ptr(1400)},
		Switch: FileSwitch{AgeingTime: "120s"},
		STP:    FileSTP{HelloTime: "1s", ForwardDelay: "4s", MaxAge: "6s", Priority: Ptr(4096)},
		Peers: []FilePeer{
			{Name: "hv2", PublicKey: testPubA, Endpoint: "192.0.2.2:51820", PersistentKeepalive: Ptr(25), Cost: int64(300)},
			{Name: "hv3", PublicKey: testPubB},
		},
	}
	data, err := Marshal(f, "generated by a test")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "# generated by a test\n") {
		t.Errorf("no header:\n%s", data)
	}
	var back File
	if err := toml.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, f) {
		t.Errorf("read back\n%+v\nwant\n%+v\nfrom\n%s", back, *f, data)
	}
	path := writeConfig(t, string(data))
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if cfg.ListenPort != 51821 || cfg.IsolateHost || cfg.TAPName != "vms0" || cfg.STP.Priority != 4096 ||
		len(cfg.Peers) != 2 || cfg.Peers[0].Cost != 300 || cfg.Peers[1].Cost != CostAuto {
		t.Errorf("parsed %+v", cfg)
	}
}

var update = flag.Bool("update", false, "rewrite the README's table of keys from config.Keys")

// The README's table of keys is the table's.
func TestREADMETable(t *testing.T) {
	readme, err := os.ReadFile("../../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		start := strings.Index(string(readme), "| key | default |")
		end := start + strings.Index(string(readme[start:]), "\n\n")
		if start < 0 || end < start {
			t.Fatal("no table in README.md")
		}
		readme = []byte(string(readme[:start]) + Markdown() + string(readme[end+1:]))
		if err := os.WriteFile("../../../../README.md", readme, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(string(readme), Markdown()) {
		t.Errorf("README.md's configuration table is not config.Keys; put this in its place:\n%s", Markdown())
	}
}
