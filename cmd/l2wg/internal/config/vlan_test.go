package config

import (
	"strings"
	"testing"

	"github.com/l2wg/l2wg/bridge"
)

func TestVLANKeys(t *testing.T) {
	head := "private_key_file = \"node.key\"\n"
	peer := "[[peer]]\npublic_key = \"" + testPubA + "\"\n"
	vids := func(list string) bridge.VIDSet {
		s, err := bridge.ParseVIDSet(list)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	cases := []struct {
		name     string
		toml     string
		tap      bridge.VLANFilter
		peer     bridge.VLANFilter
		wantErr  string // after the file's path
		wantPeer bool
	}{
		{name: "default: every VLAN and untagged", toml: head + peer, tap: bridge.AllVLANs(), peer: bridge.AllVLANs(), wantPeer: true},
		{name: "lists and ranges", toml: head + "[tap]\nvlans = \"100-199,300\"\nuntagged = false\n" + peer + "vlans = \"100\"\n",
			tap: bridge.VLANFilter{VIDs: vids("100-199,300")}, peer: bridge.VLANFilter{VIDs: vids("100"), Untagged: true}, wantPeer: true},
		{name: "none: untagged only", toml: head + "[tap]\nvlans = \"none\"\n", tap: bridge.VLANFilter{Untagged: true}},
		{name: "VID out of range", toml: head + "[tap]\nname = \"l2wg0\"\nvlans = \"100,4096\"\n",
			wantErr: `:4: tap.vlans: "4096": out of range 1-4094`},
		{name: "VID 0", toml: head + "[tap]\nvlans = \"0-10\"\n", wantErr: `:3: tap.vlans: "0-10": out of range 1-4094`},
		{name: "empty list", toml: head + "[tap]\nvlans = \"\"\n", wantErr: `:3: tap.vlans: empty list`},
		{name: "peer's bad range", toml: head + peer + "vlans = \"300-200\"\n", wantErr: `:4: peer[1].vlans: "300-200": range ends below its start`},
		{name: "peer's untagged not a bool", toml: head + peer + "untagged = \"no\"\n", wantErr: `:4: peer.untagged: `},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeConfig(t, c.toml)
			cfg, err := Load(path)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), path+c.wantErr) {
					t.Fatalf("error %v; want %s%s", err, path, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.TAPVLANs != c.tap {
				t.Errorf("TAPVLANs = %v; want %v", cfg.TAPVLANs, c.tap)
			}
			if c.wantPeer && (len(cfg.Peers) != 1 || cfg.Peers[0].VLANs != c.peer) {
				t.Errorf("peer VLANs = %+v; want %v", cfg.Peers, c.peer)
			}
		})
	}
}

func TestVLANKeysDiff(t *testing.T) {
	head := "private_key_file = \"node.key\"\n"
	peer := "[[peer]]\nname = \"hv2\"\npublic_key = \"" + testPubA + "\"\n"
	load := func(body string) *Config {
		cfg, err := Load(writeConfig(t, head+body))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	old := load(peer)
	next := load("[tap]\nvlans = \"100-102\"\nuntagged = false\n" + peer + "vlans = \"100\"\n")
	d := Diff(old, next)
	var keys []string
	for _, c := range d.Keys {
		keys = append(keys, c.Key.Path)
	}
	if strings.Join(keys, ",") != "tap.vlans,tap.untagged" {
		t.Errorf("Diff keys = %v; want tap.vlans and tap.untagged", keys)
	}
	if len(d.Changed) != 1 || len(d.Changed[0].Keys) != 1 || d.Changed[0].Keys[0].Path != "peer.vlans" {
		t.Errorf("Diff peers = %+v; want hv2 changed in its VLANs only", d.Changed)
	}
	if err := d.RestartOnly(next); err != nil {
		t.Errorf("VLAN keys are live, yet: %v", err)
	}
}
