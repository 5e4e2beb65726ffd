package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	toml "github.com/pelletier/go-toml/v2"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/tomlpos"
	"github.com/l2wg/l2wg/stp"
	"github.com/l2wg/l2wg/tap"
	"github.com/l2wg/l2wg/tunnel"
)

// fileConfig is node.toml as written. Every field is optional in TOML; defaults
// and ranges are applied by validate.
type fileConfig struct {
	PrivateKeyFile string `toml:"private_key_file"`
	ListenPort     *int   `toml:"listen_port"`
	IsolateHost    *bool  `toml:"isolate_host"`
	LogLevel       string `toml:"log_level"`
	MetricsListen  string `toml:"metrics_listen"`

	TAP struct {
		Name       string `toml:"name"`
		MTU        *int   `toml:"mtu"`
		Bridge     string `toml:"bridge"`
		Persistent bool   `toml:"persistent"`
		Offload    *bool  `toml:"offload"`
	} `toml:"tap"`

	Tunnel struct {
		MTU                  *int   `toml:"mtu"`
		ProbeInterval        string `toml:"probe_interval"`
		ProbeLoss            *int   `toml:"probe_loss"`
		ReassemblyTimeout    string `toml:"reassembly_timeout"`
		ReassemblyPeerBytes  *int   `toml:"reassembly_peer_bytes"`
		ReassemblyTotalBytes *int   `toml:"reassembly_total_bytes"`
	} `toml:"tunnel"`

	Switch struct {
		AgeingTime    string `toml:"ageing_time"`
		MaxFDBEntries *int   `toml:"max_fdb_entries"`
		StormLimit    *int   `toml:"storm_limit"`
	} `toml:"switch"`

	STP struct {
		Enabled      *bool  `toml:"enabled"`
		Priority     *int   `toml:"priority"`
		HelloTime    string `toml:"hello_time"`
		MaxAge       string `toml:"max_age"`
		ForwardDelay string `toml:"forward_delay"`
		TAP          string `toml:"tap"`
		TAPCost      *int   `toml:"tap_cost"`
		BPDUGuard    bool   `toml:"bpdu_guard"`
		Protocol     string `toml:"protocol"`
	} `toml:"stp"`

	Peers []struct {
		Name                string `toml:"name"`
		Cost                any    `toml:"cost"` // an integer, or "auto"
		PublicKey           string `toml:"public_key"`
		Endpoint            string `toml:"endpoint"`
		PersistentKeepalive *int   `toml:"persistent_keepalive"`
	} `toml:"peer"`
}

// nodeConfig is a validated node.toml with defaults applied.
type nodeConfig struct {
	File        string
	PrivateKey  [32]byte
	ListenPort  int
	IsolateHost bool
	LogLevel    string
	// MetricsListen is host:port of the Prometheus /metrics server; "": off.
	MetricsListen string

	TAPName       string
	TAPMTU        int
	TAPBridge     string
	TAPPersistent bool
	TAPOffload    bool

	TunnelMTU            int
	ProbeInterval        time.Duration // liveness probes to every peer
	ProbeLoss            int           // probes missed in a row before a peer port goes down
	ReassemblyTimeout    time.Duration
	ReassemblyPeerBytes  int
	ReassemblyTotalBytes int

	AgeingTime    time.Duration
	MaxFDBEntries int
	StormLimit    int // flooded frames per second per ingress port; 0: no limit

	STP stpConfig

	Peers     []tunnel.PeerConfig
	PeerCosts []uint32 // by index of Peers; costAuto: follows the measured round trip
}

// stpConfig is the [stp] table.
type stpConfig struct {
	Enabled      bool
	Priority     uint16
	HelloTime    time.Duration
	MaxAge       time.Duration
	ForwardDelay time.Duration
	TAPMode      string // auto, stp, private, edge
	TAPCost      uint32
	BPDUGuard    bool // a BPDU from the VM side disables the TAP port for bpduGuardHold
	Protocol     stp.Protocol
}

// defaultSTPPriority is one 802.1D-2004 step (4096) better than the 32768 of
// kernel bridges and most switches: the root of a mesh is an l2wg node, and
// the root guard on the TAP port does not trip on an ordinary host bridge
// that runs STP with its defaults.
const defaultSTPPriority = 28672

// Defaults.
const (
	defaultTAPName       = "l2wg0"
	defaultTAPMTU        = 1500
	defaultListenPort    = 51820
	defaultAgeingTime    = 300 * time.Second
	defaultMaxFDBEntries = 32768
)

// configError is a problem in a config file, located as precisely as known.
type configError struct {
	File  string
	Line  int    // 0 when unknown
	Field string // dotted path, e.g. peer[2].endpoint; empty for syntax errors
	Msg   string
}

func (e *configError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// configErrors is every problem found in one file, reported together.
type configErrors []*configError

func (es configErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// loadConfig reads, parses and validates a node.toml.
func loadConfig(path string) (*nodeConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return parseConfig(path, data)
}

func parseConfig(path string, data []byte) (*nodeConfig, error) {
	var fc fileConfig
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fc); err != nil {
		return nil, decodeError(path, err)
	}
	lines, _ := tomlpos.KeyLines(data)
	v := validator{file: path, lines: lines}
	cfg := v.validate(&fc)
	if len(v.errs) > 0 {
		return nil, v.errs
	}
	return cfg, nil
}

// decodeError turns go-toml's errors into configErrors with file and line.
func decodeError(path string, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var es configErrors
		for _, e := range strict.Errors {
			row, _ := e.Position()
			es = append(es, &configError{File: path, Line: row, Field: strings.Join(e.Key(), "."), Msg: "unknown field"})
		}
		return es
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		return &configError{File: path, Line: row, Field: strings.Join(de.Key(), "."), Msg: strings.TrimPrefix(de.Error(), "toml: ")}
	}
	return &configError{File: path, Msg: strings.TrimPrefix(err.Error(), "toml: ")}
}

type validator struct {
	file  string
	lines map[string]int
	errs  configErrors
}

// fail records a problem with field; the line is looked up by the field's
// path, falling back to its table's line.
func (v *validator) fail(field, format string, args ...any) {
	line := v.lines[field]
	for f := field; line == 0 && strings.Contains(f, "."); {
		f = f[:strings.LastIndex(f, ".")]
		line = v.lines[f]
	}
	v.errs = append(v.errs, &configError{File: v.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) intIn(field string, p *int, def, lo, hi int) int {
	if p == nil {
		return def
	}
	if *p < lo || *p > hi {
		v.fail(field, "%d: must be between %d and %d", *p, lo, hi)
		return def
	}
	return *p
}

func (v *validator) durationIn(field, s string, def, lo, hi time.Duration) time.Duration {
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

func (v *validator) validate(fc *fileConfig) *nodeConfig {
	cfg := &nodeConfig{File: v.file}

	if fc.PrivateKeyFile == "" {
		v.fail("private_key_file", "missing: name the file that holds this node's private key (l2wg genkey > node.key)")
	} else {
		path := fc.PrivateKeyFile
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(v.file), path)
		}
		key, err := readKeyFile(path)
		if err != nil {
			v.fail("private_key_file", "%q: %v", fc.PrivateKeyFile, err)
		}
		cfg.PrivateKey = key
	}
	cfg.ListenPort = v.intIn("listen_port", fc.ListenPort, defaultListenPort, 0, 65535)
	cfg.IsolateHost = fc.IsolateHost == nil || *fc.IsolateHost
	switch fc.LogLevel {
	case "", "info", "debug", "warn", "error":
		cfg.LogLevel = fc.LogLevel
	default:
		v.fail("log_level", "%q: must be one of debug, info, warn, error", fc.LogLevel)
	}
	if fc.MetricsListen != "" {
		if err := checkListenAddr(fc.MetricsListen); err != nil {
			v.fail("metrics_listen", "%q: %v (want host:port, e.g. 127.0.0.1:9586)", fc.MetricsListen, err)
		}
	}
	cfg.MetricsListen = fc.MetricsListen

	cfg.TAPName = fc.TAP.Name
	if cfg.TAPName == "" {
		cfg.TAPName = defaultTAPName
	}
	if err := tap.ValidName(cfg.TAPName); err != nil {
		v.fail("tap.name", "%v", err)
	}
	cfg.TAPMTU = v.intIn("tap.mtu", fc.TAP.MTU, defaultTAPMTU, 576, 65535-18)
	if fc.TAP.Bridge != "" {
		if err := tap.ValidName(fc.TAP.Bridge); err != nil {
			v.fail("tap.bridge", "%v", err)
		}
	}
	cfg.TAPBridge = fc.TAP.Bridge
	cfg.TAPPersistent = fc.TAP.Persistent
	cfg.TAPOffload = fc.TAP.Offload == nil || *fc.TAP.Offload

	cfg.TunnelMTU = v.intIn("tunnel.mtu", fc.Tunnel.MTU, tunnel.DefaultMTU, tunnel.MinMTU, 9000)
	cfg.ProbeInterval = v.durationIn("tunnel.probe_interval", fc.Tunnel.ProbeInterval, tunnel.DefaultProbeInterval, 10*time.Millisecond, 10*time.Second)
	cfg.ProbeLoss = v.intIn("tunnel.probe_loss", fc.Tunnel.ProbeLoss, 3, 2, 100)
	cfg.ReassemblyTimeout = v.durationIn("tunnel.reassembly_timeout", fc.Tunnel.ReassemblyTimeout, 2*time.Second, 100*time.Millisecond, time.Minute)
	cfg.ReassemblyPeerBytes = v.intIn("tunnel.reassembly_peer_bytes", fc.Tunnel.ReassemblyPeerBytes, 4<<20, 256<<10, 1<<30)
	cfg.ReassemblyTotalBytes = v.intIn("tunnel.reassembly_total_bytes", fc.Tunnel.ReassemblyTotalBytes, 32<<20, 256<<10, 4<<30)

	cfg.AgeingTime = v.durationIn("switch.ageing_time", fc.Switch.AgeingTime, defaultAgeingTime, 10*time.Second, 1000000*time.Second)
	cfg.MaxFDBEntries = v.intIn("switch.max_fdb_entries", fc.Switch.MaxFDBEntries, defaultMaxFDBEntries, 16, 1<<22)
	cfg.StormLimit = v.intIn("switch.storm_limit", fc.Switch.StormLimit, 0, 0, 10_000_000)

	v.validateSTP(fc, cfg)
	v.validatePeers(fc, cfg)
	return cfg
}

func (v *validator) validateSTP(fc *fileConfig, cfg *nodeConfig) {
	fs := &fc.STP
	c := &cfg.STP
	c.Enabled = fs.Enabled == nil || *fs.Enabled
	c.Priority = uint16(v.intIn("stp.priority", fs.Priority, defaultSTPPriority, 0, 65535))
	c.HelloTime = v.durationIn("stp.hello_time", fs.HelloTime, stp.DefaultHelloTime, stp.MinHelloTime, stp.MaxHelloTime)
	c.MaxAge = v.durationIn("stp.max_age", fs.MaxAge, stp.DefaultMaxAge, stp.MinMaxAge, stp.MaxMaxAge)
	c.ForwardDelay = v.durationIn("stp.forward_delay", fs.ForwardDelay, stp.DefaultForwardDelay, stp.MinForwardDelay, stp.MaxForwardDelay)
	// 802.1D 8.10.2: 2*(forward_delay-1s) >= max_age >= 2*(hello_time+1s).
	if c.MaxAge > 2*(c.ForwardDelay-time.Second) {
		v.fail("stp.max_age", "%s: must be at most 2*(forward_delay-1s) = %s (IEEE 802.1D 8.10.2)", c.MaxAge, 2*(c.ForwardDelay-time.Second))
	} else if c.MaxAge < 2*(c.HelloTime+time.Second) {
		v.fail("stp.max_age", "%s: must be at least 2*(hello_time+1s) = %s (IEEE 802.1D 8.10.2)", c.MaxAge, 2*(c.HelloTime+time.Second))
	}
	switch fs.TAP {
	case "":
		c.TAPMode = "auto"
	case "auto", "stp", "private", "edge":
		c.TAPMode = fs.TAP
	default:
		v.fail("stp.tap", "%q: must be auto, stp, private or edge", fs.TAP)
	}
	c.TAPCost = uint32(v.intIn("stp.tap_cost", fs.TAPCost, 0, 1, int(stp.MaxPathCost)))
	c.BPDUGuard = fs.BPDUGuard
	c.Protocol = stp.ProtocolRSTP
	if fs.Protocol != "" {
		p, err := stp.ParseProtocol(fs.Protocol)
		if err != nil {
			v.fail("stp.protocol", "%q: must be rstp or stp", fs.Protocol)
		}
		c.Protocol = p
	}
}

func (v *validator) validatePeers(fc *fileConfig, cfg *nodeConfig) {
	self := tunnel.LabelOf(tunnel.PublicKey(cfg.PrivateKey))
	byKey := make(map[[32]byte]string)
	byName := make(map[string]string)
	byLabel := make(map[tunnel.Label]string)
	for i, fp := range fc.Peers {
		at := fmt.Sprintf("peer[%d]", i+1)
		var pc tunnel.PeerConfig
		key, err := parseKey(fp.PublicKey)
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
		pc.PersistentKeepalive = time.Duration(v.intIn(at+".persistent_keepalive", fp.PersistentKeepalive, 0, 0, 65535)) * time.Second
		cfg.Peers = append(cfg.Peers, pc)
		cfg.PeerCosts = append(cfg.PeerCosts, v.peerCost(at+".cost", fp.Cost))
	}
}

// costAuto marks a peer port whose path cost follows its round-trip time.
const costAuto = 0

// peerCost reads a peer's cost: "auto" (the default) or 1–200000000.
func (v *validator) peerCost(field string, c any) uint32 {
	switch c := c.(type) {
	case nil:
		return costAuto
	case string:
		if c == "auto" {
			return costAuto
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
	return costAuto
}

// parseKey decodes a base64 WireGuard key.
func parseKey(s string) ([32]byte, error) {
	var key [32]byte
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != 32 {
		return key, errors.New("not a WireGuard key (want 44 characters of base64 encoding 32 bytes, as from l2wg genkey / wg genkey)")
	}
	copy(key[:], b)
	return key, nil
}

// readKeyFile reads a private key file as written by wg genkey.
func readKeyFile(path string) ([32]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return [32]byte{}, err
	}
	return parseKey(string(data))
}
