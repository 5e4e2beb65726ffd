package mesh

import "fmt"

// ActionKind says what an Action asks of the caller.
type ActionKind uint8

const (
	// Send: transmit Action.Msg to the neighbour on Action.Port over the
	// control channel. Msg may be shared by several actions: read it, do
	// not modify it, do not keep it past sending.
	Send ActionKind = iota + 1
	// TablesChanged: forward by Action.Table from now on (store it where
	// the data path loads it). Entries learned towards nodes that are no
	// longer Reachable in it are to be flushed.
	TablesChanged
	// Notice: something an operator should read once (a cap was hit, a
	// node ID collides); Action.Notice says what, Action.Node who.
	Notice
)

func (k ActionKind) String() string {
	switch k {
	case Send:
		return "send"
	case TablesChanged:
		return "tables-changed"
	case Notice:
		return "notice"
	}
	return "unknown"
}

// NoticeKind names a log-worthy event.
type NoticeKind uint8

const (
	// NoticeNodeCap: the database is full (Config.MaxNodes); records of
	// new nodes are dropped until one leaves. Once per episode.
	NoticeNodeCap NoticeKind = iota + 1
	// NoticeLinkCap: a record listed more links than Config.MaxLinks and
	// was dropped, or this node has more adjacencies than it may list
	// (it lists the cheapest). Once per episode.
	NoticeLinkCap
	// NoticeCollision: two keys hash to one node ID; the record of the
	// larger key is dropped, by every node alike.
	NoticeCollision
	// NoticeSynced: the node has learned the database from its neighbours
	// (or waited SyncTimeout) and computes from now on.
	NoticeSynced
)

func (k NoticeKind) String() string {
	switch k {
	case NoticeNodeCap:
		return "node-cap"
	case NoticeLinkCap:
		return "link-cap"
	case NoticeCollision:
		return "id-collision"
	case NoticeSynced:
		return "synced"
	}
	return "unknown"
}

// Action is one thing the caller must do, in order. Only the fields of its
// Kind are set.
type Action struct {
	Kind   ActionKind
	Port   Port       // Send
	Msg    []byte     // Send
	Table  *Table     // TablesChanged
	Notice NoticeKind // Notice
	Node   NodeID     // Notice: the node concerned, if any
}

func (a Action) String() string {
	switch a.Kind {
	case Send:
		t := MsgType(0)
		if len(a.Msg) > 1 {
			t = MsgType(a.Msg[1])
		}
		return fmt.Sprintf("send %v port %d (%d bytes)", t, a.Port, len(a.Msg))
	case TablesChanged:
		return fmt.Sprintf("tables-changed (%d nodes)", len(a.Table.ids))
	case Notice:
		return fmt.Sprintf("notice %v node %v", a.Notice, a.Node)
	}
	return a.Kind.String()
}
