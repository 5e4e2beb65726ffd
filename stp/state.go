package stp

// PortState is an IEEE 802.1D port state. The switch (package bridge) obeys it:
// it learns source addresses only in Learning and Forwarding, and forwards
// frames only in Forwarding.
type PortState uint8

const (
	Disabled PortState = iota
	Blocking
	Listening
	Learning
	Forwarding
)

var stateNames = [...]string{
	Disabled:   "disabled",
	Blocking:   "blocking",
	Listening:  "listening",
	Learning:   "learning",
	Forwarding: "forwarding",
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
