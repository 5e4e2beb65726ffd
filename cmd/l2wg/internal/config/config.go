// Package config reads node.toml: it parses, validates and applies the
// defaults, all driven by one table of keys (keys.go) that also says which
// keys a running node can change (Diff) and feeds the README's table. It
// writes node.toml too (Marshal), for the lab and the benchmark.
//
// Adding a key: a field in File (its TOML name) and in Config (or Peer),
// read in validate.go with v.int, v.duration, v.bool or v.str (which take
// the default and the range from the row), and one row in Keys: the path,
// the default (the owning package's exported constant), the range, Live,
// the README text and the value in a Config (peerValue in a Peer). A live
// key then needs its setter in package node (liveKeys or livePeerKeys);
// until it has one, reload refuses a change of it. Tests fail for a File
// key or a Config field without a row, and for a README table that is not
// the table's (go test ./cmd/l2wg/internal/config -run README -update
// writes it).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	toml "github.com/pelletier/go-toml/v2"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/tomlpos"
	"github.com/l2wg/l2wg/stp"
	"github.com/l2wg/l2wg/tunnel"
)

// Config is a validated node.toml with defaults applied.
type Config struct {
	File        string // the path it was read from
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
	TAPVLANs      bridge.VLANFilter // [tap] vlans and untagged

	TunnelMTU            int
	ProbeInterval        time.Duration // liveness probes to every peer
	ProbeLoss            int           // probes missed in a row before a peer port goes down
	ReassemblyTimeout    time.Duration
	ReassemblyPeerBytes  int
	ReassemblyTotalBytes int
	ReresolveAfter       time.Duration // a DNS endpoint is resolved again while the handshake is older

	AgeingTime    time.Duration
	MaxFDBEntries int
	StormLimit    int // flooded frames per second per ingress port; 0: no limit

	STP STP
	// MeshProtocol is [mesh] protocol: MeshSpanningTree or MeshShortestPath.
	MeshProtocol string

	Peers []Peer

	lines   map[string]int // line of each key in the file, for errors
	keyFile string         // private_key_file's path, as opened
}

// STP is the [stp] table.
type STP struct {
	Enabled      bool
	Priority     uint16
	HelloTime    time.Duration
	MaxAge       time.Duration
	ForwardDelay time.Duration
	TAPMode      string // auto, stp, private, edge (bridge/spanning)
	TAPCost      uint32
	BPDUGuard    bool // a BPDU from the VM side disables the TAP port for a while
	Protocol     stp.Protocol
}

// The mesh protocols ([mesh] protocol).
const (
	MeshSpanningTree = "spanning-tree" // one tree over the peerings, of [stp] protocol
	MeshRSTP         = "rstp"          // one tree, RSTP ([stp] protocol = "rstp")
	MeshSTP          = "stp"           // one tree, 802.1D ([stp] protocol = "stp")
	MeshShortestPath = "shortest-path" // link state, bridge/mesh
)

// MeshProtocols are the values [mesh] protocol may take.
var MeshProtocols = []string{MeshSpanningTree, MeshRSTP, MeshSTP, MeshShortestPath}

// Peer is one [[peer]].
type Peer struct {
	tunnel.PeerConfig
	Cost  uint32            // CostAuto: follows the measured round trip
	VLANs bridge.VLANFilter // vlans and untagged
}

// CostAuto marks a peer port whose path cost follows its round-trip time.
const CostAuto = 0

// CostText is a peer cost as node.toml writes it.
func CostText(c uint32) string {
	if c == CostAuto {
		return "auto"
	}
	return fmt.Sprint(c)
}

// Warnings are problems that do not stop a node: a private key file that
// its group or others may read or write.
func (c *Config) Warnings() []string {
	if c.keyFile == "" {
		return nil
	}
	st, err := os.Stat(c.keyFile)
	if err != nil {
		return nil
	}
	m := st.Mode().Perm()
	var who []string
	if m&0o070 != 0 {
		who = append(who, "its group")
	}
	if m&0o007 != 0 {
		who = append(who, "others")
	}
	if len(who) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("private key file %s has mode %04o: %s may read it (chmod 600 %s)", c.keyFile, m, strings.Join(who, " and "), c.keyFile)}
}

// Line is the line of key path in the file, 0 if unknown.
func (c *Config) Line(path string) int { return c.lines[path] }

// SlogLevel is log_level for log/slog (info when empty).
func (c *Config) SlogLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); c.LogLevel == "" || err != nil {
		return slog.LevelInfo
	}
	return l
}

// Error is a problem in a config file, located as precisely as known.
type Error struct {
	File  string
	Line  int    // 0 when unknown
	Field string // dotted path, e.g. peer[2].endpoint; empty for syntax errors
	Msg   string
}

func (e *Error) Error() string {
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

// Errors is every problem found in one file, reported together.
type Errors []*Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Load reads, parses and validates a node.toml.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse parses and validates node.toml's content; path names it in errors
// and relative key files are found next to it.
func Parse(path string, data []byte) (*Config, error) {
	var fc File
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
	cfg.lines = lines
	return cfg, nil
}

// decodeError turns go-toml's errors into Errors with file and line.
func decodeError(path string, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var es Errors
		for _, e := range strict.Errors {
			row, _ := e.Position()
			es = append(es, &Error{File: path, Line: row, Field: strings.Join(e.Key(), "."), Msg: "unknown field"})
		}
		return es
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		return &Error{File: path, Line: row, Field: strings.Join(de.Key(), "."), Msg: strings.TrimPrefix(de.Error(), "toml: ")}
	}
	return &Error{File: path, Msg: strings.TrimPrefix(err.Error(), "toml: ")}
}
