package stp

import (
	"errors"
	"fmt"
	"time"
)

// Protocol constants and the defaults of 802.1D-1998 table 8-3 (and
// 802.1D-2004 table 17-1).
const (
	DefaultBridgePriority uint16 = 0x8000
	DefaultPortPriority   uint8  = 0x80

	DefaultHelloTime    = 2 * time.Second
	DefaultMaxAge       = 20 * time.Second
	DefaultForwardDelay = 15 * time.Second

	MinHelloTime    = 1 * time.Second
	MaxHelloTime    = 10 * time.Second
	MinMaxAge       = 6 * time.Second
	MaxMaxAge       = 40 * time.Second
	MinForwardDelay = 4 * time.Second
	MaxForwardDelay = 30 * time.Second

	// HoldTime is the least interval between two config BPDUs on one port.
	HoldTime = 1 * time.Second

	// MessageAgeIncrement is added to the message age of the root's
	// information each time a bridge relays it (on top of the time the
	// information spent in the bridge). One second per hop is the usual
	// overestimate (RSTP's increment, most switches'); it bounds the diameter
	// of the tree to MaxAge hops. Linux adds about 1/256 s instead, which
	// only matters for trees over 20 bridges deep.
	MessageAgeIncrement = 1 * time.Second

	// DefaultPathCost is the path cost of a port configured with cost 0.
	// It is the Linux bridge's cost for a port of unknown speed (TAPs and
	// tunnels), 802.1D-1998's value for 10 Mb/s: in a tree shared with
	// kernel bridges a tunnel then weighs like a slow link, and a path over
	// a LAN (cost 4 at 1 Gb/s) is preferred to one through a tunnel.
	DefaultPathCost uint32 = 100

	// MaxPathCost is the largest port path cost (802.1D-2004 table 17-3).
	MaxPathCost uint32 = 200_000_000
)

// Config configures a bridge. Zero durations take the defaults; Priority is
// used as given (0 is the highest priority: use DefaultBridgePriority to join
// a tree as an ordinary bridge). The zero Protocol is ProtocolSTP.
type Config struct {
	Priority     uint16
	MAC          [6]byte // the bridge address: unicast, not all zeros
	HelloTime    time.Duration
	MaxAge       time.Duration
	ForwardDelay time.Duration
	Protocol     Protocol
}

// DefaultConfig returns the 802.1D defaults for a bridge with address mac.
func DefaultConfig(mac [6]byte) Config {
	return Config{
		Priority:     DefaultBridgePriority,
		MAC:          mac,
		HelloTime:    DefaultHelloTime,
		MaxAge:       DefaultMaxAge,
		ForwardDelay: DefaultForwardDelay,
	}
}

// PortConfig configures a port.
type PortConfig struct {
	// Priority is the port priority, 0 to 240 in steps of 16 (see PortID).
	// Use DefaultPortPriority (128) unless a tie must be broken.
	Priority uint8
	// PathCost is the cost of reaching the root through this port,
	// 1 to MaxPathCost; 0 takes DefaultPathCost.
	PathCost uint32
	// RootGuard forbids the port to become the root port: superior
	// information received on it blocks the port (root-inconsistent) until
	// the information ages out. For ports towards equipment that must never
	// become the root, such as the TAP port towards the VMs.
	RootGuard bool
	// Edge (RSTP only) marks a port with no bridge behind it: it forwards as
	// soon as it is enabled, and sends no topology change when it does. It
	// loses edge status (it becomes an ordinary port, operational edge
	// false) when it receives a BPDU, and regains it when it is disabled and
	// enabled again.
	Edge bool
	// PointToPoint (RSTP only) says that the port's link reaches exactly one
	// other bridge, as a tunnel to one peer does: only then may the port
	// forward on the proposal/agreement handshake instead of waiting out
	// its timers. The zero value, false, is the safe one for a shared LAN
	// (such as a TAP in a Linux bridge with other l2wg nodes on the LAN);
	// DefaultPortConfig sets it, for tunnel peers.
	PointToPoint bool
}

// DefaultPortConfig returns the default port priority and path cost, for a
// point-to-point port that is not an edge port.
func DefaultPortConfig() PortConfig {
	return PortConfig{Priority: DefaultPortPriority, PathCost: DefaultPathCost, PointToPoint: true}
}

// ConfigError reports a configuration value out of range. Field is named as
// in a configuration file (hello_time, max_age, forward_delay, address,
// port, port_priority, path_cost) so that the caller can prefix the file and
// line: `node.toml:14: stp.hello_time 0.5s: must be between 1s and 10s`.
type ConfigError struct {
	Field  string
	Value  string
	Reason string
}

func (e *ConfigError) Error() string { return "stp: " + e.Field + " " + e.Value + ": " + e.Reason }

// Errors of the port operations, wrapped with the port number.
var (
	ErrNoSuchPort = errors.New("no such port")
	ErrPortExists = errors.New("port exists")
)

// timers are the three timers a bridge announces when it is the root.
type timers struct {
	hello, maxAge, forwardDelay time.Duration
}

// withDefaults replaces zero values by the defaults.
func (t timers) withDefaults() timers {
	if t.hello == 0 {
		t.hello = DefaultHelloTime
	}
	if t.maxAge == 0 {
		t.maxAge = DefaultMaxAge
	}
	if t.forwardDelay == 0 {
		t.forwardDelay = DefaultForwardDelay
	}
	return t
}

// validate checks the ranges of 802.1D-1998 table 8-3 and the relation of
// clause 8.10.2: 2*(ForwardDelay-1s) >= MaxAge >= 2*(HelloTime+1s).
func (t timers) validate() error {
	if err := checkRange("hello_time", t.hello, MinHelloTime, MaxHelloTime); err != nil {
		return err
	}
	if err := checkRange("max_age", t.maxAge, MinMaxAge, MaxMaxAge); err != nil {
		return err
	}
	if err := checkRange("forward_delay", t.forwardDelay, MinForwardDelay, MaxForwardDelay); err != nil {
		return err
	}
	if lim := 2 * (t.forwardDelay - time.Second); t.maxAge > lim {
		return &ConfigError{"max_age", t.maxAge.String(),
			fmt.Sprintf("must be at most 2*(forward_delay-1s) = %v (forward_delay %v)", lim, t.forwardDelay)}
	}
	if lim := 2 * (t.hello + time.Second); t.maxAge < lim {
		return &ConfigError{"max_age", t.maxAge.String(),
			fmt.Sprintf("must be at least 2*(hello_time+1s) = %v (hello_time %v)", lim, t.hello)}
	}
	return nil
}

func checkRange(field string, v, lo, hi time.Duration) error {
	if v < lo || v > hi {
		return &ConfigError{field, v.String(), fmt.Sprintf("must be between %v and %v", lo, hi)}
	}
	return nil
}

func validateAddress(mac [6]byte) error {
	if mac == [6]byte{} || mac[0]&1 != 0 {
		return &ConfigError{"address", fmt.Sprintf("%x", mac[:]), "must be a unicast address, not all zeros"}
	}
	return nil
}

func validatePortNo(no PortNo) error {
	if no == 0 || no > MaxPortNo {
		return &ConfigError{"port", fmt.Sprint(no), fmt.Sprintf("must be between 1 and %d", MaxPortNo)}
	}
	return nil
}

func validatePortPriority(prio uint8) error {
	if prio&0x0F != 0 {
		return &ConfigError{"port_priority", fmt.Sprint(prio), "must be a multiple of 16 between 0 and 240"}
	}
	return nil
}

// portCost applies the default and checks the range.
func portCost(cost uint32) (uint32, error) {
	if cost == 0 {
		return DefaultPathCost, nil
	}
	if cost > MaxPathCost {
		return 0, &ConfigError{"path_cost", fmt.Sprint(cost), fmt.Sprintf("must be between 1 and %d", MaxPathCost)}
	}
	return cost, nil
}
