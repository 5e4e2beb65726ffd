package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/tunnel"
)

const (
	testPriv = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
	testPubA = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
	testPubB = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0="
)

// writeConfig writes node.toml and its key file into a temp dir.
func writeConfig(t *testing.T, toml string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "node.key"), []byte(testPriv+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "node.toml")
	if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigValid(t *testing.T) {
	path := writeConfig(t, `
private_key_file = "node.key"
listen_port = 51821

[tap]
name = "vms0"
bridge = "br0"
persistent = true

[switch]
ageing_time = "120s"

[[peer]]
name = "hv2"
public_key = "`+testPubA+`"
endpoint = "[2001:db8::2]:51820"
persistent_keepalive = 25

[[peer]]
public_key = "`+testPubB+`"
endpoint = "hv3.example.net:51820"
`)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ListenPort != 51821 || cfg.TAPName != "vms0" || cfg.TAPMTU != 1500 || cfg.TAPBridge != "br0" ||
		!cfg.TAPPersistent || !cfg.TAPOffload || !cfg.IsolateHost || cfg.TunnelMTU != 1420 ||
		cfg.AgeingTime != 120*time.Second || cfg.MaxFDBEntries != bridge.DefaultMaxEntries {
		t.Errorf("unexpected config: %+v", cfg)
	}
	if len(cfg.Peers) != 2 || cfg.Peers[0].Name != "hv2" || cfg.Peers[0].PersistentKeepalive != 25*time.Second ||
		cfg.Peers[1].Name != testPubB[:8] || cfg.Peers[1].Endpoint != "hv3.example.net:51820" {
		t.Errorf("unexpected peers: %+v", cfg.Peers)
	}
}

func TestConfigErrorsNameFileLineAndField(t *testing.T) {
	cases := []struct {
		name string
		toml string
		want string // substring of the error, after "node.toml"
	}{
		{"unknown top-level key", "private_key_file = \"node.key\"\nlisten_prot = 1\n", ":2: listen_prot: unknown field"},
		{"unknown table key", "private_key_file = \"node.key\"\n[tap]\nnmae = \"x\"\n", ":3: tap.nmae: unknown field"},
		{"unknown peer key", "private_key_file = \"node.key\"\n[[peer]]\npublic_key = \"" + testPubA + "\"\nendpont = \"x:1\"\n", ":4: peer.endpont: unknown field"},
		{"missing key file", "private_key_file = \"nope.key\"\n", `:1: private_key_file: "nope.key": no such file or directory`},
		{"no key file", "listen_port = 1\n", ": private_key_file: missing"},
		{"bad public key", "private_key_file = \"node.key\"\n[[peer]]\npublic_key = \"abc\"\n", `:3: peer[1].public_key: "abc": not a WireGuard key`},
		{"missing public key", "private_key_file = \"node.key\"\n[[peer]]\nendpoint = \"1.2.3.4:5\"\n", `:2: peer[1].public_key: missing`},
		{"bad endpoint", "private_key_file = \"node.key\"\n[[peer]]\npublic_key = \"" + testPubA + "\"\nendpoint = \"192.0.2.1\"\n", `:4: peer[1].endpoint: "192.0.2.1": address 192.0.2.1: missing port in address`},
		{"bad endpoint port", "private_key_file = \"node.key\"\n[[peer]]\npublic_key = \"" + testPubA + "\"\nendpoint = \"192.0.2.1:99999\"\n", `:4: peer[1].endpoint: "192.0.2.1:99999": port "99999": must be a number between 1 and 65535`},
		{"duplicate peer", "private_key_file = \"node.key\"\n[[peer]]\npublic_key = \"" + testPubA + "\"\n[[peer]]\npublic_key = \"" + testPubA + "\"\n", `:5: peer[2].public_key: duplicate peer: the same key as peer[1]`},
		{"duplicate name", "private_key_file = \"node.key\"\n[[peer]]\nname = \"x\"\npublic_key = \"" + testPubA + "\"\n[[peer]]\nname = \"x\"\npublic_key = \"" + testPubB + "\"\n", `:6: peer[2].name: "x": duplicate peer name`},
		{"own key as peer", "private_key_file = \"node.key\"\n[[peer]]\npublic_key = \"" + mustPub(testPriv) + "\"\n", `:3: peer[1].public_key: this is this node's own public key`},
		{"port range", "private_key_file = \"node.key\"\nlisten_port = 70000\n", ":2: listen_port: 70000: must be between 0 and 65535"},
		{"wrong type", "private_key_file = \"node.key\"\nlisten_port = \"51820\"\n", ":2: listen_port: "},
		{"tunnel mtu", "private_key_file = \"node.key\"\n[tunnel]\nmtu = 100\n", ":3: tunnel.mtu: 100: must be between 576 and 9000"},
		{"mesh protocol", "private_key_file = \"node.key\"\n[mesh]\nprotocol = \"ospf\"\n", `:3: mesh.protocol: "ospf": must be spanning-tree, rstp, stp or shortest-path`},
		{"mesh protocol against stp", "private_key_file = \"node.key\"\n[stp]\nprotocol = \"rstp\"\n[mesh]\nprotocol = \"stp\"\n", `:5: mesh.protocol: "stp": [stp] protocol says "rstp"`},
		{"ageing", "private_key_file = \"node.key\"\n[switch]\nageing_time = \"5\"\n", `:3: switch.ageing_time: "5": not a duration`},
		{"tap name", "private_key_file = \"node.key\"\n[tap]\nname = \"a-name-that-is-too-long\"\n", `:3: tap.name: "a-name-that-is-too-long" is 23 bytes: must be at most 15`},
		{"syntax", "private_key_file = \"node.key\"\n[tap\n", ":2"},
		{"metrics_listen without port", "private_key_file = \"node.key\"\nmetrics_listen = \"127.0.0.1\"\n", `:2: metrics_listen: "127.0.0.1": address 127.0.0.1: missing port in address`},
		{"metrics_listen bad port", "private_key_file = \"node.key\"\nmetrics_listen = \"127.0.0.1:http\"\n", `:2: metrics_listen: "127.0.0.1:http": port "http": must be a number between 1 and 65535`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeConfig(t, c.toml)
			_, err := Load(path)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, path) || !strings.Contains(msg, path+c.want) {
				t.Errorf("error\n  %s\nwant it to contain\n  %s%s", msg, path, c.want)
			}
		})
	}
}

func mustPub(priv string) string {
	key, err := ParseKey(priv)
	if err != nil {
		panic(err)
	}
	return EncodeKey(tunnel.PublicKey(key))
}

// FuzzParseConfig: no input panics; an accepted config is within its ranges.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("private_key_file = \"node.key\"\n[tap]\nname = \"l2wg0\"\n[[peer]]\npublic_key = \"" + testPubA + "\"\nendpoint = \"192.0.2.1:51820\"\n"))
	f.Add([]byte("[[peer]]\n[[peer]]\nname = 1\n"))
	f.Add([]byte("a.b.c = [1, {x = 2}]\n"))
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "node.key"), []byte(testPriv), 0o600); err != nil {
		f.Fatal(err)
	}
	path := filepath.Join(dir, "node.toml")
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(path, data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), path) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if cfg.TAPMTU < 576 || cfg.TunnelMTU < 576 || cfg.ListenPort < 0 || cfg.ListenPort > 65535 || len(cfg.TAPName) > 15 {
			t.Fatalf("accepted out-of-range config: %+v", cfg)
		}
	})
}

func TestNewPrivateKey(t *testing.T) {
	key, err := NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	if key[0]&7 != 0 || key[31]&128 != 0 || key[31]&64 == 0 {
		t.Errorf("key not clamped as wg genkey clamps: %x", key)
	}
	// A known vector: the RFC 7748 section 6.1 Alice key pair, in base64.
	if got := mustPub("dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo="); got != "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=" {
		t.Errorf("pubkey of the RFC 7748 vector = %s", got)
	}
	kp, err := NewKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	if got := mustPub(kp.Private); got != kp.Public {
		t.Errorf("key pair's public key %s, want %s", kp.Public, got)
	}
}

func TestPeerCostConfig(t *testing.T) {
	base := "private_key_file = \"node.key\"\n[[peer]]\npublic_key = \"" + testPubA + "\"\n"
	for _, c := range []struct {
		line string
		want uint32
		err  string
	}{
		{"", CostAuto, ""},
		{"cost = \"auto\"\n", CostAuto, ""},
		{"cost = 250\n", 250, ""},
		{"cost = 0\n", 0, ":4: peer[1].cost: 0: must be \"auto\" or a number between 1 and 200000000"},
		{"cost = \"cheap\"\n", 0, ":4: peer[1].cost: \"cheap\": must be \"auto\""},
	} {
		path := writeConfig(t, base+c.line)
		cfg, err := Load(path)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), path+c.err) {
				t.Errorf("%q: error %v, want %s%s", c.line, err, path, c.err)
			}
		case err != nil:
			t.Errorf("%q: %v", c.line, err)
		case cfg.Peers[0].Cost != c.want:
			t.Errorf("%q: cost %d, want %d", c.line, cfg.Peers[0].Cost, c.want)
		}
	}
}
func TestCheckListenAddr(t *testing.T) {
	cases := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:9586", true},
		{"[::1]:9586", true},
		{":9586", true},
		{"localhost:9586", true},
		{"127.0.0.1", false},
		{"127.0.0.1:0", false},
		{"127.0.0.1:http", false},
		{"127.0.0.1:70000", false},
		{"bad host!:9586", false},
	}
	for _, c := range cases {
		if err := CheckListenAddr(c.addr); (err == nil) != c.ok {
			t.Errorf("CheckListenAddr(%q) = %v; want ok %v", c.addr, err, c.ok)
		}
	}
	path := writeConfig(t, "private_key_file = \"node.key\"\nmetrics_listen = \"127.0.0.1:9586\"\n")
	cfg, err := Load(path)
	if err != nil || cfg.MetricsListen != "127.0.0.1:9586" {
		t.Fatalf("metrics_listen = \"127.0.0.1:9586\": %+v, %v", cfg, err)
	}
	if cfg, err := Load(writeConfig(t, "private_key_file = \"node.key\"\n")); err != nil || cfg.MetricsListen != "" {
		t.Fatalf("no metrics_listen: %q, %v; want off", cfg.MetricsListen, err)
	}
}

// A private key file that group or others may read is warned about, with
// its path and mode; a 0600 one is not.
func TestKeyFileModeWarning(t *testing.T) {
	path := writeConfig(t, "private_key_file = \"node.key\"\n")
	key := filepath.Join(filepath.Dir(path), "node.key")
	for _, c := range []struct {
		mode os.FileMode
		want string
	}{
		{0o600, ""},
		{0o640, key + " has mode 0640: its group may read it"},
		{0o644, key + " has mode 0644: its group and others may read it"},
		{0o604, key + " has mode 0604: others may read it"},
	} {
		if err := os.Chmod(key, c.mode); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(cfg.Warnings(), "\n")
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("mode %04o: warnings %q; want %q", c.mode, got, c.want)
		}
	}
}
