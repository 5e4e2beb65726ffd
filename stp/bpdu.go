package stp

import (
	"encoding/binary"
	"errors"
	"time"
)

// The wire codec, br_stp_bpdu.c's half of the work: BPDUs as they travel
// after the Ethernet header (an 802.2 LLC header, then the BPDU), and whole
// Ethernet frames to the bridge group address. Nothing here knows the state
// machine.

// GroupAddress is the Bridge Group Address, the destination of 802.1D BPDUs.
var GroupAddress = [6]byte{0x01, 0x80, 0xC2, 0x00, 0x00, 0x00}

// Sizes on the wire.
const (
	EthernetHeaderLen = 14 // destination, source, 802.3 length
	LLCHeaderLen      = 3  // DSAP 0x42, SSAP 0x42, control 0x03 (UI)
	ConfigBPDULen     = 35 // a configuration BPDU after the LLC header
	RSTBPDULen        = 36 // an RST BPDU: a configuration BPDU and Version 1 Length
	TCNBPDULen        = 4  // a topology change notification BPDU
	MinFrameLen       = 60 // Ethernet minimum without FCS; shorter frames are padded

	llcSAP        = 0x42 // the Bridge Spanning Tree Protocol LSAP
	llcUI         = 0x03 // unnumbered information
	maxLength     = 1500 // largest 802.3 length; larger values are EtherTypes
	flagTC        = 0x01 // topology change
	flagProposal  = 0x02 // RST BPDU: proposal
	flagRoleShift = 2    // RST BPDU: port role, bits 3 and 4 (0x0C)
	flagRoleMask  = 0x0C
	flagLearning  = 0x10 // RST BPDU: the sending port learns
	flagForward   = 0x20 // RST BPDU: the sending port forwards
	flagAgreement = 0x40 // RST BPDU: agreement
	flagTCAck     = 0x80 // topology change acknowledgment
	timeUnit      = time.Second / 256
	maxTimeWire   = 0xFFFF
)

// BPDUType is the BPDU Type field.
type BPDUType uint8

const (
	TypeConfig BPDUType = 0x00 // configuration BPDU
	TypeRST    BPDUType = 0x02 // rapid spanning tree BPDU (802.1D-2004, 802.1w)
	TypeTCN    BPDUType = 0x80 // topology change notification BPDU
)

func (t BPDUType) String() string {
	switch t {
	case TypeConfig:
		return "config"
	case TypeRST:
		return "rst"
	case TypeTCN:
		return "tcn"
	}
	return "unknown"
}

// BPDU is a decoded bridge protocol data unit. A TCN BPDU uses only Type and
// Version; the other fields are zero.
//
// Times travel in units of 1/256 s. Decoding yields exact multiples of that
// unit; encoding rounds to the nearest unit and clamps to 0..255.996 s, so
// decode(encode(m)) == m for every decoded m.
//
// In a config BPDU only the TC and TC Acknowledgment flags are kept: the
// other six bits are reserved in 802.1D-1998. In an RST BPDU the other six
// carry the sending port's role, state and handshake (802.1D-2004 9.3.3);
// they are decoded and encoded only for TypeRST, and zero otherwise.
type BPDU struct {
	Type              BPDUType
	Version           uint8 // Protocol Version Identifier, 0 for STP, 2 for RSTP
	TopologyChange    bool
	TopologyChangeAck bool
	// RST BPDUs only.
	Proposal     bool
	Role         BPDURole // the sending port's role
	Learning     bool     // the sending port learns
	Forwarding   bool     // the sending port forwards
	Agreement    bool
	RootID       BridgeID
	RootPathCost uint32
	BridgeID     BridgeID
	PortID       PortID
	MessageAge   time.Duration
	MaxAge       time.Duration
	HelloTime    time.Duration
	ForwardDelay time.Duration
}

// Decoding errors. Decode wraps nothing and allocates nothing: malformed
// BPDUs are the normal traffic of a hostile port, to be dropped and counted.
var (
	ErrTruncated   = errors.New("stp: bpdu truncated")
	ErrNotBPDU     = errors.New("stp: not a bpdu (802.3 length, llc header or protocol id)")
	ErrUnknownType = errors.New("stp: unknown bpdu type")
)

// BPDURole is the Port Role field of an RST BPDU (802.1D-2004 9.2.9).
type BPDURole uint8

const (
	BPDURoleUnknown    BPDURole = 0 // taken as designated, as a config BPDU
	BPDURoleAlternate  BPDURole = 1 // alternate or backup
	BPDURoleRoot       BPDURole = 2
	BPDURoleDesignated BPDURole = 3
)

func (r BPDURole) String() string {
	switch r {
	case BPDURoleAlternate:
		return "alternate/backup"
	case BPDURoleRoot:
		return "root"
	case BPDURoleDesignated:
		return "designated"
	}
	return "unknown"
}

// rstFlags encodes the RSTP bits of the flags octet.
func rstFlags(m BPDU) byte {
	f := byte(m.Role&3) << flagRoleShift
	if m.Proposal {
		f |= flagProposal
	}
	if m.Learning {
		f |= flagLearning
	}
	if m.Forwarding {
		f |= flagForward
	}
	if m.Agreement {
		f |= flagAgreement
	}
	return f
}

// Len returns the length of the encoded BPDU including the LLC header, or 0
// for a type that cannot be encoded.
func (m BPDU) Len() int {
	switch m.Type {
	case TypeConfig:
		return LLCHeaderLen + ConfigBPDULen
	case TypeRST:
		return LLCHeaderLen + RSTBPDULen
	case TypeTCN:
		return LLCHeaderLen + TCNBPDULen
	}
	return 0
}

// AppendBinary appends the LLC header and the BPDU to b. It implements
// encoding.BinaryAppender. Only config, RST and TCN BPDUs can be encoded.
// An RST BPDU is written with Version 1 Length 0.
func (m BPDU) AppendBinary(b []byte) ([]byte, error) {
	var buf [LLCHeaderLen + RSTBPDULen]byte
	n := m.Len()
	if n == 0 {
		return b, ErrUnknownType
	}
	buf[0], buf[1], buf[2] = llcSAP, llcSAP, llcUI
	p := buf[LLCHeaderLen:]
	// p[0:2] protocol identifier 0
	p[2] = m.Version
	p[3] = byte(m.Type)
	if m.Type != TypeTCN {
		if m.TopologyChange {
			p[4] |= flagTC
		}
		if m.TopologyChangeAck {
			p[4] |= flagTCAck
		}
		if m.Type == TypeRST {
			p[4] |= rstFlags(m)
		}
		binary.BigEndian.PutUint64(p[5:], uint64(m.RootID))
		binary.BigEndian.PutUint32(p[13:], m.RootPathCost)
		binary.BigEndian.PutUint64(p[17:], uint64(m.BridgeID))
		binary.BigEndian.PutUint16(p[25:], uint16(m.PortID))
		binary.BigEndian.PutUint16(p[27:], timeToWire(m.MessageAge))
		binary.BigEndian.PutUint16(p[29:], timeToWire(m.MaxAge))
		binary.BigEndian.PutUint16(p[31:], timeToWire(m.HelloTime))
		binary.BigEndian.PutUint16(p[33:], timeToWire(m.ForwardDelay))
		// an RST BPDU's p[35], Version 1 Length, stays 0
	}
	return append(b, buf[:n]...), nil
}

// MarshalBinary returns the LLC header and the BPDU.
func (m BPDU) MarshalBinary() ([]byte, error) { return m.AppendBinary(make([]byte, 0, m.Len())) }

// UnmarshalBinary decodes data as Decode does.
func (m *BPDU) UnmarshalBinary(data []byte) error {
	d, err := Decode(data)
	if err != nil {
		return err
	}
	*m = d
	return nil
}

// Decode decodes an LLC header and the BPDU that follows it, the payload of
// an 802.3 frame. Validation follows 802.1D-2004 clause 9.3.4: protocol
// identifier 0; type config with at least 35 octets (whatever its version,
// so a later protocol's config BPDU is read as one), type RST with at least
// 36, type TCN with at least 4. Bytes after the BPDU (padding, RSTP's
// Version 1 Length, MSTP's extension) are ignored. Timer values are not
// checked here: the state machine discards a BPDU whose message age has
// reached its max age.
func Decode(data []byte) (BPDU, error) {
	if len(data) < LLCHeaderLen {
		return BPDU{}, ErrTruncated
	}
	if data[0] != llcSAP || data[1] != llcSAP || data[2] != llcUI {
		return BPDU{}, ErrNotBPDU
	}
	p := data[LLCHeaderLen:]
	if len(p) < TCNBPDULen {
		return BPDU{}, ErrTruncated
	}
	if p[0] != 0 || p[1] != 0 {
		return BPDU{}, ErrNotBPDU
	}
	m := BPDU{Version: p[2], Type: BPDUType(p[3])}
	switch m.Type {
	case TypeTCN:
		return m, nil
	case TypeConfig:
		if len(p) < ConfigBPDULen {
			return BPDU{}, ErrTruncated
		}
	case TypeRST:
		if len(p) < RSTBPDULen {
			return BPDU{}, ErrTruncated
		}
	default:
		return BPDU{}, ErrUnknownType
	}
	m.TopologyChange = p[4]&flagTC != 0
	m.TopologyChangeAck = p[4]&flagTCAck != 0
	if m.Type == TypeRST {
		m.Proposal = p[4]&flagProposal != 0
		m.Role = BPDURole(p[4] & flagRoleMask >> flagRoleShift)
		m.Learning = p[4]&flagLearning != 0
		m.Forwarding = p[4]&flagForward != 0
		m.Agreement = p[4]&flagAgreement != 0
	}
	m.RootID = BridgeID(binary.BigEndian.Uint64(p[5:]))
	m.RootPathCost = binary.BigEndian.Uint32(p[13:])
	m.BridgeID = BridgeID(binary.BigEndian.Uint64(p[17:]))
	m.PortID = PortID(binary.BigEndian.Uint16(p[25:]))
	m.MessageAge = timeFromWire(binary.BigEndian.Uint16(p[27:]))
	m.MaxAge = timeFromWire(binary.BigEndian.Uint16(p[29:]))
	m.HelloTime = timeFromWire(binary.BigEndian.Uint16(p[31:]))
	m.ForwardDelay = timeFromWire(binary.BigEndian.Uint16(p[33:]))
	return m, nil
}

// AppendFrame appends an Ethernet frame carrying m from src to the bridge
// group address 01:80:C2:00:00:00: an 802.3 length field (not an EtherType),
// the LLC header, the BPDU, and zero padding to MinFrameLen.
func AppendFrame(b []byte, src [6]byte, m BPDU) ([]byte, error) {
	return AppendFrameTo(b, GroupAddress, src, m)
}

// AppendFrameTo is AppendFrame to another destination, such as a private
// group address for spanning-tree messages that must not reach a LAN's
// switches.
func AppendFrameTo(b []byte, dst, src [6]byte, m BPDU) ([]byte, error) {
	n := m.Len()
	if n == 0 {
		return b, ErrUnknownType
	}
	start := len(b)
	b = append(b, dst[:]...)
	b = append(b, src[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	b, _ = m.AppendBinary(b)
	for len(b)-start < MinFrameLen {
		b = append(b, 0)
	}
	return b, nil
}

// DecodeFrame decodes the BPDU in an Ethernet frame. The frame must carry an
// 802.3 length field (at most 1500) that fits in the frame; padding after
// the length is ignored. The destination address is not checked: the caller
// has already classified the frame as a BPDU by its destination.
func DecodeFrame(frame []byte) (BPDU, error) {
	if len(frame) < EthernetHeaderLen {
		return BPDU{}, ErrTruncated
	}
	n := int(binary.BigEndian.Uint16(frame[12:]))
	if n > maxLength {
		return BPDU{}, ErrNotBPDU
	}
	if EthernetHeaderLen+n > len(frame) {
		return BPDU{}, ErrTruncated
	}
	return Decode(frame[EthernetHeaderLen : EthernetHeaderLen+n])
}

// timeToWire converts d to units of 1/256 s, rounding to the nearest unit
// and clamping to the field's range.
func timeToWire(d time.Duration) uint16 {
	if d <= 0 {
		return 0
	}
	u := (d + timeUnit/2) / timeUnit
	if u > maxTimeWire {
		return maxTimeWire
	}
	return uint16(u)
}

func timeFromWire(u uint16) time.Duration { return time.Duration(u) * timeUnit }

// wireTime rounds d as encoding would: the value a peer decodes.
func wireTime(d time.Duration) time.Duration { return timeFromWire(timeToWire(d)) }
