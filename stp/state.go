package stp

// PortState is an IEEE 802.1D port state. The switch (package bridge) obeys it:
// it learns source addresses only in Learning and Forwarding, and forwards
// frames only in Forwarding.
//
// An 802.1D bridge (ProtocolSTP) uses Disabled, Blocking, Listening,
// Learning and Forwarding; an RSTP bridge uses Disabled, Discarding,
// Learning and Forwarding (802.1D-2004 17.4).
type PortState uint8

const (
	Disabled PortState = iota
	Blocking
	Listening
	Learning
	Forwarding
	// Discarding is RSTP's state for a port that neither learns nor
	// forwards (802.1D's Blocking and Listening).
	Discarding
)

var stateNames = [...]string{
	Disabled:   "disabled",
	Blocking:   "blocking",
	Listening:  "listening",
	Learning:   "learning",
	Forwarding: "forwarding",
	Discarding: "discarding",
}

func (s PortState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// Learns reports whether a port in this state learns source addresses.
func (s PortState) Learns() bool { return s == Learning || s == Forwarding }

// Forwards reports whether a port in this state forwards data frames.
func (s PortState) Forwards() bool { return s == Forwarding }
