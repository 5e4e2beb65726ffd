package stp

import (
	"fmt"
	"time"
)

// Protocol chooses the spanning tree protocol a Bridge runs.
type Protocol uint8

const (
	// ProtocolSTP is IEEE 802.1D-1998 (clause 8): config and TCN BPDUs,
	// Blocking, Listening, Learning, Forwarding, and 30 to 50 seconds to
	// heal. It is the zero value.
	ProtocolSTP Protocol = iota
	// ProtocolRSTP is IEEE 802.1D-2004 clause 17 (802.1w): RST BPDUs,
	// alternate and backup ports, the proposal/agreement handshake on
	// point-to-point links, edge ports, and per-port fallback to 802.1D
	// where an 802.1D bridge is heard.
	ProtocolRSTP
)

func (p Protocol) String() string {
	switch p {
	case ProtocolSTP:
		return "stp"
	case ProtocolRSTP:
		return "rstp"
	}
	return "unknown"
}

// ParseProtocol parses "stp" or "rstp", as String writes them.
func ParseProtocol(s string) (Protocol, error) {
	switch s {
	case "stp":
		return ProtocolSTP, nil
	case "rstp":
		return ProtocolRSTP, nil
	}
	return 0, &ConfigError{"protocol", fmt.Sprintf("%q", s), `must be "stp" or "rstp"`}
}

// RSTP constants (802.1D-2004 table 17-1).
const (
	// MigrateTime is how long an RSTP port keeps the protocol it chose
	// before it listens for the other one again (17.13.9), and how long a
	// point-to-point port waits for a BPDU before it could become edge.
	MigrateTime = 3 * time.Second
	// TxHoldCount is how many BPDUs an RSTP port may send per second.
	TxHoldCount = 6
	// rstpTick is the period of RSTP's port timers (17.22): every timer
	// counts down in whole ticks.
	rstpTick = time.Second
)

func validateProtocol(p Protocol) error {
	if p != ProtocolSTP && p != ProtocolRSTP {
		return &ConfigError{"protocol", fmt.Sprint(uint8(p)), `must be "stp" or "rstp"`}
	}
	return nil
}
