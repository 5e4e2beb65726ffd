package stp

import (
	"fmt"
	"time"
)

// ActionKind says what an Action asks of the caller.
type ActionKind uint8

const (
	// SendBPDU: transmit Action.BPDU on Action.Port (see AppendFrame).
	SendBPDU ActionKind = iota + 1
	// SetState: put Action.Port in Action.State.
	SetState
	// FlushFDB: forget the addresses learned on Action.Port. Emitted when a
	// port leaves Learning or Forwarding for Blocking or Disabled.
	FlushFDB
	// FlushAll: forget every learned address. The 802.1D state machine does
	// not emit it (it shortens ageing instead); it is part of the vocabulary
	// for the RSTP machine to come, so that a consumer handles it today.
	FlushAll
	// SetAgeing: a topology change is in progress; age the forwarding
	// database at Action.Ageing (the forward delay, 802.1D-1998 8.3.5).
	SetAgeing
	// RestoreAgeing: the topology change is over; go back to the
	// configured ageing time.
	RestoreAgeing
)

var actionNames = [...]string{
	SendBPDU:      "send-bpdu",
	SetState:      "set-state",
	FlushFDB:      "flush-fdb",
	FlushAll:      "flush-all",
	SetAgeing:     "set-ageing",
	RestoreAgeing: "restore-ageing",
}

func (k ActionKind) String() string {
	if int(k) < len(actionNames) && actionNames[k] != "" {
		return actionNames[k]
	}
	return "unknown"
}

// Action is one thing the caller must do, in order. Only the fields of its
// Kind are set.
type Action struct {
	Kind   ActionKind
	Port   PortNo        // SendBPDU, SetState, FlushFDB
	State  PortState     // SetState
	BPDU   BPDU          // SendBPDU
	Ageing time.Duration // SetAgeing
}

func (a Action) String() string {
	switch a.Kind {
	case SendBPDU:
		return fmt.Sprintf("send-bpdu port %d %v", a.Port, a.BPDU.Type)
	case SetState:
		return fmt.Sprintf("set-state port %d %v", a.Port, a.State)
	case FlushFDB:
		return fmt.Sprintf("flush-fdb port %d", a.Port)
	case SetAgeing:
		return fmt.Sprintf("set-ageing %v", a.Ageing)
	}
	return a.Kind.String()
}
