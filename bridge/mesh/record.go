package mesh

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The control messages travel between neighbours over the tunnels' control
// channel, one message per packet:
//
//	| version 1 | type 1 | body |
//
//	record:  | origin key 32 | seq 8 | lifetime s 2 | n 2 | n × (neighbour 4 | cost 4) |
//	summary: | first 4 | last 4 | flags 1 | n 2 | n × (node 4 | seq 8) |
//	request: | n 2 | n × node 4 |
//
// Integers are big-endian. Lists are strictly ascending by node ID (so one
// record has one encoding, and a fuzzer's round trip is exact).

// Version is the version byte of every message.
const Version = 1

// MsgType says what a message carries.
type MsgType uint8

const (
	MsgRecord  MsgType = 1 // a link-state record
	MsgSummary MsgType = 2 // (node, seq) of every record in a range of node IDs
	MsgRequest MsgType = 3 // "send me these records"
)

func (t MsgType) String() string {
	switch t {
	case MsgRecord:
		return "record"
	case MsgSummary:
		return "summary"
	case MsgRequest:
		return "request"
	}
	return fmt.Sprintf("type-%d", uint8(t))
}

// Codec limits. A record of MaxRecordLinks links is 2,092 bytes, which the
// control channel fragments like any frame; a summary of MaxSummaryEntries
// (1,213 bytes) and a request of MaxRequestEntries (1,204 bytes) fit one
// tunnel packet.
const (
	MaxRecordLinks    = 255
	MaxSummaryEntries = 100
	MaxRequestEntries = 300
	// MaxCost is the largest link cost: path costs of up to 255 hops stay
	// far below overflow, and a cost means something (microseconds of RTT
	// fit: 16 s).
	MaxCost = 1 << 24

	headerLen        = 2
	recordFixedLen   = 32 + 8 + 2 + 2
	linkLen          = 8
	summaryFixedLen  = 4 + 4 + 1 + 2
	summaryEntryLen  = 12
	requestFixedLen  = 2
	requestEntryLen  = 4
	summaryFinalFlag = 1
)

// Link is one adjacency of a record's origin.
type Link struct {
	Neighbour NodeID
	Cost      uint32
}

// Record is the link-state record a node originates: who it is, how recent
// the record is, how long it lives, and its live adjacencies.
type Record struct {
	Origin Key
	// Seq orders the records of one origin: larger is newer. Its high 32
	// bits are the origin's boot time (Unix seconds), the low ones count
	// records since, so a restarted node's records supersede its old ones
	// at once.
	Seq uint64
	// Lifetime is the remaining lifetime in seconds when the record was
	// sent; a receiver ages it from there.
	Lifetime uint16
	// Links, strictly ascending by Neighbour, at most MaxRecordLinks.
	Links []Link
}

// ID returns the origin's node ID.
func (r *Record) ID() NodeID { return IDFromKey(r.Origin) }

// SummaryEntry names one record a node holds.
type SummaryEntry struct {
	Node NodeID
	Seq  uint64
}

// Summary lists every record its sender holds whose origin ID is in
// [First, Last] (IS-IS's complete sequence numbers PDU). A full summary is
// several messages with adjacent ranges, the last one Final.
type Summary struct {
	First, Last NodeID
	Final       bool
	Entries     []SummaryEntry // strictly ascending, within the range
}

// Message is one decoded control message; only the field of its Type is set.
type Message struct {
	Type    MsgType
	Record  Record
	Summary Summary
	Request []NodeID // strictly ascending, at most MaxRequestEntries
}

// Errors of ParseMessage. Callers count them by cause and drop the message.
var (
	ErrShort     = errors.New("mesh: message truncated")
	ErrVersion   = errors.New("mesh: unknown version")
	ErrType      = errors.New("mesh: unknown message type")
	ErrTooLong   = errors.New("mesh: trailing bytes")
	ErrTooMany   = errors.New("mesh: too many entries")
	ErrOrder     = errors.New("mesh: entries not strictly ascending")
	ErrBadLink   = errors.New("mesh: bad link (zero or own neighbour, cost out of range)")
	ErrBadRange  = errors.New("mesh: summary entry outside its range")
	ErrZeroNode  = errors.New("mesh: node ID 0")
	ErrLongRange = errors.New("mesh: summary range reversed")
)

// validLinks checks the canonical form of a record's links.
func validLinks(self NodeID, links []Link) error {
	if len(links) > MaxRecordLinks {
		return ErrTooMany
	}
	var prev NodeID
	for i, l := range links {
		if l.Neighbour == 0 || l.Neighbour == self || l.Cost == 0 || l.Cost > MaxCost {
			return ErrBadLink
		}
		if i > 0 && l.Neighbour <= prev {
			return ErrOrder
		}
		prev = l.Neighbour
	}
	return nil
}

// AppendRecord appends the encoding of r. It fails if r is not canonical.
func AppendRecord(b []byte, r *Record) ([]byte, error) {
	if err := validLinks(r.ID(), r.Links); err != nil {
		return b, err
	}
	b = append(b, Version, byte(MsgRecord))
	b = append(b, r.Origin[:]...)
	b = binary.BigEndian.AppendUint64(b, r.Seq)
	b = binary.BigEndian.AppendUint16(b, r.Lifetime)
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.Links)))
	for _, l := range r.Links {
		b = binary.BigEndian.AppendUint32(b, uint32(l.Neighbour))
		b = binary.BigEndian.AppendUint32(b, l.Cost)
	}
	return b, nil
}

// AppendSummary appends the encoding of s. It fails if s is not canonical.
func AppendSummary(b []byte, s *Summary) ([]byte, error) {
	if err := validSummary(s); err != nil {
		return b, err
	}
	b = append(b, Version, byte(MsgSummary))
	b = binary.BigEndian.AppendUint32(b, uint32(s.First))
	b = binary.BigEndian.AppendUint32(b, uint32(s.Last))
	var flags byte
	if s.Final {
		flags = summaryFinalFlag
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.Entries)))
	for _, e := range s.Entries {
		b = binary.BigEndian.AppendUint32(b, uint32(e.Node))
		b = binary.BigEndian.AppendUint64(b, e.Seq)
	}
	return b, nil
}

func validSummary(s *Summary) error {
	if s.First > s.Last {
		return ErrLongRange
	}
	if len(s.Entries) > MaxSummaryEntries {
		return ErrTooMany
	}
	for i, e := range s.Entries {
		if e.Node == 0 {
			return ErrZeroNode
		}
		if e.Node < s.First || e.Node > s.Last {
			return ErrBadRange
		}
		if i > 0 && e.Node <= s.Entries[i-1].Node {
			return ErrOrder
		}
	}
	return nil
}

// AppendRequest appends the encoding of a request for the records of nodes.
func AppendRequest(b []byte, nodes []NodeID) ([]byte, error) {
	if err := validRequest(nodes); err != nil {
		return b, err
	}
	b = append(b, Version, byte(MsgRequest))
	b = binary.BigEndian.AppendUint16(b, uint16(len(nodes)))
	for _, n := range nodes {
		b = binary.BigEndian.AppendUint32(b, uint32(n))
	}
	return b, nil
}

func validRequest(nodes []NodeID) error {
	if len(nodes) > MaxRequestEntries {
		return ErrTooMany
	}
	for i, n := range nodes {
		if n == 0 {
			return ErrZeroNode
		}
		if i > 0 && n <= nodes[i-1] {
			return ErrOrder
		}
	}
	return nil
}

// ParseMessage decodes one control message. It checks lengths against the
// counts before it allocates, so a short hostile message costs nothing.
func ParseMessage(b []byte) (Message, error) {
	var m Message
	if len(b) < headerLen {
		return m, ErrShort
	}
	if b[0] != Version {
		return m, ErrVersion
	}
	m.Type = MsgType(b[1])
	body := b[headerLen:]
	var err error
	switch m.Type {
	case MsgRecord:
		err = parseRecord(body, &m.Record)
	case MsgSummary:
		err = parseSummary(body, &m.Summary)
	case MsgRequest:
		m.Request, err = parseRequest(body)
	default:
		err = ErrType
	}
	return m, err
}

// sized checks that body holds fixed bytes then n entries of size each.
func sized(body []byte, fixed, n, size int) error {
	switch want := fixed + n*size; {
	case len(body) < want:
		return ErrShort
	case len(body) > want:
		return ErrTooLong
	}
	return nil
}

func parseRecord(body []byte, r *Record) error {
	if len(body) < recordFixedLen {
		return ErrShort
	}
	copy(r.Origin[:], body)
	r.Seq = binary.BigEndian.Uint64(body[32:])
	r.Lifetime = binary.BigEndian.Uint16(body[40:])
	n := int(binary.BigEndian.Uint16(body[42:]))
	if n > MaxRecordLinks {
		return ErrTooMany
	}
	if err := sized(body, recordFixedLen, n, linkLen); err != nil {
		return err
	}
	if n > 0 {
		r.Links = make([]Link, n)
	}
	for i := range r.Links {
		p := body[recordFixedLen+i*linkLen:]
		r.Links[i] = Link{NodeID(binary.BigEndian.Uint32(p)), binary.BigEndian.Uint32(p[4:])}
	}
	return validLinks(r.ID(), r.Links)
}

func parseSummary(body []byte, s *Summary) error {
	if len(body) < summaryFixedLen {
		return ErrShort
	}
	s.First = NodeID(binary.BigEndian.Uint32(body))
	s.Last = NodeID(binary.BigEndian.Uint32(body[4:]))
	s.Final = body[8]&summaryFinalFlag != 0
	if body[8]&^summaryFinalFlag != 0 {
		return ErrBadRange
	}
	n := int(binary.BigEndian.Uint16(body[9:]))
	if n > MaxSummaryEntries {
		return ErrTooMany
	}
	if err := sized(body, summaryFixedLen, n, summaryEntryLen); err != nil {
		return err
	}
	if n > 0 {
		s.Entries = make([]SummaryEntry, n)
	}
	for i := range s.Entries {
		p := body[summaryFixedLen+i*summaryEntryLen:]
		s.Entries[i] = SummaryEntry{NodeID(binary.BigEndian.Uint32(p)), binary.BigEndian.Uint64(p[4:])}
	}
	return validSummary(s)
}

func parseRequest(body []byte) ([]NodeID, error) {
	if len(body) < requestFixedLen {
		return nil, ErrShort
	}
	n := int(binary.BigEndian.Uint16(body))
	if n > MaxRequestEntries {
		return nil, ErrTooMany
	}
	if err := sized(body, requestFixedLen, n, requestEntryLen); err != nil {
		return nil, err
	}
	nodes := make([]NodeID, n)
	for i := range nodes {
		nodes[i] = NodeID(binary.BigEndian.Uint32(body[requestFixedLen+i*requestEntryLen:]))
	}
	return nodes, validRequest(nodes)
}
