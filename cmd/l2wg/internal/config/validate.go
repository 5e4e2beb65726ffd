package config

import (
	"encoding/base64"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/bridge/spanning"
	"github.com/l2wg/l2wg/stp"
	"github.com/l2wg/l2wg/tap"
	"github.com/l2wg/l2wg/tunnel"
)

type validator struct {
	file  string
	lines map[string]int
	errs  Errors
}

// fail records a problem with field; the line is looked up by the field's
// path, falling back to its table's line.
func (v *validator) fail(field, format string, args ...any) {
	line := v.lines[field]
	for f := field; line == 0 && strings.Contains(f, "."); {
		f = f[:strings.LastIndex(f, ".")]
		line = v.lines[f]
	}
	v.errs = append(v.errs, &Error{File: v.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// asInt is an int-like value of the table as an int.
func asInt(x any) int {
	switch x := x.(type) {
	case int:
		return x
	case uint32:
		return int(x)
	case uint16:
		return int(x)
	}
	panic(fmt.Sprintf("config: %v (%T) is not an integer", x, x))
}

// int reads the integer key field (a path; "peer[1].x" for a peer's),
// taking its default and range from the table.
func (v *validator) int(field string, p *int) int {
	k := KeyOf(field)
	def, lo, hi := asInt(k.Default), asInt(k.Min), asInt(k.Max)
	if p == nil {
		return def
	}
	if *p < lo || *p > hi {
		v.fail(field, "%d: must be between %d and %d", *p, lo, hi)
		return def
	}
	return *p
}

// duration reads the duration key field, with its default and range from
// the table.
func (v *validator) duration(field, s string) time.Duration {
	k := KeyOf(field)
	def, lo, hi := k.Default.(time.Duration), k.Min.(time.Duration), k.Max.(time.Duration)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		v.fail(field, "%q: not a duration (use a number with a unit, e.g. \"300s\")", s)
		return def
	}
	if d < lo || d > hi {
		v.fail(field, "%s: must be between %s and %s", d, lo, hi)
		return def
	}
	return d
}

// bool reads the boolean key field, with its default from the table.
func (v *validator) bool(field string, p *bool) bool {
	if p == nil {
		return KeyOf(field).Default.(bool)
	}
	return *p
}

// str reads a string key, "" taking the table's default.
func (v *validator) str(field, s string) string {
	if s == "" {
		if d, ok := KeyOf(field).Default.(string); ok {
			return d
		}
	}
	return s
}

func (v *validator) validate(fc *File) *Config {
	cfg := &Config{File: v.file}

	if fc.PrivateKeyFile == "" {
		v.fail("private_key_file", "missing: name the file that holds this node's private key (l2wg genkey > node.key)")
	} else {
		path := fc.PrivateKeyFile
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(v.file), path)
		}
		key, err := ReadKeyFile(path)
		if err != nil {
			v.fail("private_key_file", "%q: %v", fc.PrivateKeyFile, err)
		}
		cfg.PrivateKey, cfg.keyFile = key, path
	}
	cfg.ListenPort = v.int("listen_port", fc.ListenPort)
	cfg.IsolateHost = v.bool("isolate_host", fc.IsolateHost)
	cfg.LogLevel = v.str("log_level", fc.LogLevel)
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, cfg.LogLevel) {
		v.fail("log_level", "%q: must be one of debug, info, warn, error", fc.LogLevel)
	}
	if fc.MetricsListen != "" {
		if err := CheckListenAddr(fc.MetricsListen); err != nil {
			v.fail("metrics_listen", "%q: %v (want host:port, e.g. 127.0.0.1:9586)", fc.MetricsListen, err)
		}
	}
	cfg.MetricsListen = fc.MetricsListen

	cfg.TAPName = v.str("tap.name", fc.TAP.Name)
	if err := tap.ValidName(cfg.TAPName); err != nil {
		v.fail("tap.name", "%v", err)
	}
	cfg.TAPMTU = v.int("tap.mtu", fc.TAP.MTU)
	if fc.TAP.Bridge != "" {
		if err := tap.ValidName(fc.TAP.Bridge); err != nil {
			v.fail("tap.bridge", "%v", err)
		}
	}
	cfg.TAPBridge = fc.TAP.Bridge
	cfg.TAPPersistent = fc.TAP.Persistent
	cfg.TAPOffload = v.bool("tap.offload", fc.TAP.Offload)
	cfg.TAPVLANs = v.vlans("tap", fc.TAP.VLANs, fc.TAP.Untagged)

	cfg.TunnelMTU = v.int("tunnel.mtu", fc.Tunnel.MTU)
	cfg.ProbeInterval = v.duration("tunnel.probe_interval", fc.Tunnel.ProbeInterval)
	cfg.ProbeLoss = v.int("tunnel.probe_loss", fc.Tunnel.ProbeLoss)
	cfg.ReassemblyTimeout = v.duration("tunnel.reassembly_timeout", fc.Tunnel.ReassemblyTimeout)
	cfg.ReassemblyPeerBytes = v.int("tunnel.reassembly_peer_bytes", fc.Tunnel.ReassemblyPeerBytes)
	cfg.ReassemblyTotalBytes = v.int("tunnel.reassembly_total_bytes", fc.Tunnel.ReassemblyTotalBytes)
	cfg.ReresolveAfter = v.duration("tunnel.reresolve_after", fc.Tunnel.ReresolveAfter)

	cfg.AgeingTime = v.duration("switch.ageing_time", fc.Switch.AgeingTime)
	cfg.MaxFDBEntries = v.int("switch.max_fdb_entries", fc.Switch.MaxFDBEntries)
	cfg.StormLimit = v.int("switch.storm_limit", fc.Switch.StormLimit)

	v.validateSTP(fc, cfg)
	cfg.MeshProtocol = v.str("mesh.protocol", fc.Mesh.Protocol)
	switch {
	case !slices.Contains(MeshProtocols, cfg.MeshProtocol):
		v.fail("mesh.protocol", "%q: must be %s", fc.Mesh.Protocol, orList(MeshProtocols))
	case cfg.MeshProtocol == MeshRSTP || cfg.MeshProtocol == MeshSTP:
		// The tree's protocol, named in [mesh]: it must agree with [stp].
		if fc.STP.Protocol != "" && fc.STP.Protocol != cfg.MeshProtocol {
			v.fail("mesh.protocol", "%q: [stp] protocol says %q", fc.Mesh.Protocol, fc.STP.Protocol)
		} else if p, err := stp.ParseProtocol(cfg.MeshProtocol); err == nil {
			cfg.STP.Protocol = p
		}
	}
	v.validatePeers(fc, cfg)
	return cfg
}

func (v *validator) validateSTP(fc *File, cfg *Config) {
	fs := &fc.STP
	c := &cfg.STP
	c.Enabled = v.bool("stp.enabled", fs.Enabled)
	c.Priority = uint16(v.int("stp.priority", fs.Priority))
	c.HelloTime = v.duration("stp.hello_time", fs.HelloTime)
	c.MaxAge = v.duration("stp.max_age", fs.MaxAge)
	c.ForwardDelay = v.duration("stp.forward_delay", fs.ForwardDelay)
	// 802.1D 8.10.2: 2*(forward_delay-1s) >= max_age >= 2*(hello_time+1s).
	if c.MaxAge > 2*(c.ForwardDelay-time.Second) {
		v.fail("stp.max_age", "%s: must be at most 2*(forward_delay-1s) = %s (IEEE 802.1D 8.10.2)", c.MaxAge, 2*(c.ForwardDelay-time.Second))
	} else if c.MaxAge < 2*(c.HelloTime+time.Second) {
		v.fail("stp.max_age", "%s: must be at least 2*(hello_time+1s) = %s (IEEE 802.1D 8.10.2)", c.MaxAge, 2*(c.HelloTime+time.Second))
	}
	c.TAPMode = v.str("stp.tap", fs.TAP)
	if !slices.Contains(spanning.TAPModes, c.TAPMode) {
		v.fail("stp.tap", "%q: must be %s", fs.TAP, orList(spanning.TAPModes))
	}
	c.TAPCost = uint32(v.int("stp.tap_cost", fs.TAPCost))
	c.BPDUGuard = fs.BPDUGuard
	p, err := stp.ParseProtocol(v.str("stp.protocol", fs.Protocol))
	if err != nil {
		v.fail("stp.protocol", "%q: must be rstp or stp", fs.Protocol)
	}
	c.Protocol = p
}

// orList writes "a, b, c or d".
func orList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

func (v *validator) validatePeers(fc *File, cfg *Config) {
	self := tunnel.LabelOf(tunnel.PublicKey(cfg.PrivateKey))
	byKey := make(map[[32]byte]string)
	byName := make(map[string]string)
	byLabel := make(map[tunnel.Label]string)
	for i, fp := range fc.Peers {
		at := fmt.Sprintf("peer[%d]", i+1)
		var pc Peer
		key, err := ParseKey(fp.PublicKey)
		if fp.PublicKey == "" {
			v.fail(at+".public_key", "missing")
			continue
		} else if err != nil {
			v.fail(at+".public_key", "%q: %v", fp.PublicKey, err)
			continue
		}
		pc.PublicKey = key
		if prev, ok := byKey[key]; ok {
			v.fail(at+".public_key", "duplicate peer: the same key as %s", prev)
			continue
		}
		byKey[key] = at
		if key == tunnel.PublicKey(cfg.PrivateKey) {
			v.fail(at+".public_key", "this is this node's own public key")
			continue
		}
		label := tunnel.LabelOf(key)
		if prev, ok := byLabel[label]; ok || label == self {
			if !ok {
				prev = "this node"
			}
			v.fail(at+".public_key", "its routing label %s collides with %s's: regenerate one of the two keys", label, prev)
			continue
		}
		byLabel[label] = at

		pc.Name = fp.Name
		if pc.Name == "" {
			pc.Name = base64.StdEncoding.EncodeToString(key[:])[:8]
		}
		if prev, ok := byName[pc.Name]; ok {
			v.fail(at+".name", "%q: duplicate peer name, also used by %s", pc.Name, prev)
			continue
		}
		byName[pc.Name] = at

		if fp.Endpoint != "" {
			if _, _, err := tunnel.SplitEndpoint(fp.Endpoint); err != nil {
				v.fail(at+".endpoint", "%q: %v (want host:port, e.g. 192.0.2.1:51820, [2001:db8::1]:51820 or vpn.example.com:51820)", fp.Endpoint, err)
				continue
			}
		}
		pc.Endpoint = fp.Endpoint
		pc.PersistentKeepalive = time.Duration(v.int(at+".persistent_keepalive", fp.PersistentKeepalive)) * time.Second
		pc.Cost = v.peerCost(at+".cost", fp.Cost)
		pc.VLANs = v.vlans(at, fp.VLANs, fp.Untagged)
		cfg.Peers = append(cfg.Peers, pc)
	}
}

// vlans reads a port's VLAN filter from the keys vlans and untagged of
// table ("tap", "peer[2]"): every VLAN and untagged frames by default.
func (v *validator) vlans(table string, list *string, untagged *bool) bridge.VLANFilter {
	f := bridge.AllVLANs()
	if list != nil {
		vids, err := bridge.ParseVIDSet(*list)
		if err != nil {
			v.fail(table+".vlans", "%v", err)
		} else {
			f.VIDs = vids
		}
	}
	f.Untagged = v.bool(table+".untagged", untagged)
	return f
}

// peerCost reads a peer's cost: "auto" (the default) or 1–200000000.
func (v *validator) peerCost(field string, c any) uint32 {
	switch c := c.(type) {
	case nil:
		return CostAuto
	case string:
		if c == "auto" {
			return CostAuto
		}
		v.fail(field, "%q: must be \"auto\" or a number between 1 and %d", c, stp.MaxPathCost)
	case int64:
		if c >= 1 && c <= int64(stp.MaxPathCost) {
			return uint32(c)
		}
		v.fail(field, "%d: must be \"auto\" or a number between 1 and %d", c, stp.MaxPathCost)
	default:
		v.fail(field, "%v: must be \"auto\" or a number between 1 and %d", c, stp.MaxPathCost)
	}
	return CostAuto
}
