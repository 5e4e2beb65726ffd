package mesh

import (
	"encoding/binary"
	"errors"
)

// Header is the mesh's data-plane header, put in front of every Ethernet
// frame that crosses a tunnel (before fragmentation, so it costs bytes per
// frame, not per packet):
//
//	| version<<4 | flags 1 | hop limit 1 | ingress 4 | egress 4 |
//
// Flags: multi (a broadcast, multicast or unknown-unicast frame that
// follows the ingress node's tree; Egress is 0). Ten bytes: a fixed size
// keeps the decoder branch-free and the fields aligned with the node ID.
// The first byte is 0x10 or 0x11, never 0x01: control frames (control.go)
// and BPDUs start with 0x01 and are told apart from data by it.
type Header struct {
	Multi    bool
	HopLimit uint8
	Ingress  NodeID
	Egress   NodeID // 0 when Multi
}

// HeaderLen is the size of an encoded Header.
const HeaderLen = 10

const (
	headerVersion = 1
	flagMulti     = 1
)

// Errors of DecodeHeader.
var (
	ErrHeaderShort   = errors.New("mesh: data header truncated")
	ErrHeaderVersion = errors.New("mesh: data header of unknown version or flags")
	ErrHeaderNodes   = errors.New("mesh: data header names node 0 or a unicast without egress")
	ErrControlFrame  = errors.New("mesh: not a control frame")
)

// Put writes h into b[:HeaderLen]; b must be at least that long. It never
// allocates.
func (h *Header) Put(b []byte) {
	_ = b[HeaderLen-1]
	flags := byte(0)
	egress := h.Egress
	if h.Multi {
		flags, egress = flagMulti, 0
	}
	b[0] = headerVersion<<4 | flags
	b[1] = h.HopLimit
	binary.BigEndian.PutUint32(b[2:], uint32(h.Ingress))
	binary.BigEndian.PutUint32(b[6:], uint32(egress))
}

// DecodeHeader reads a header from the front of b. It never allocates.
func DecodeHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, ErrHeaderShort
	}
	if b[0]>>4 != headerVersion || b[0]&^(0xf0|flagMulti) != 0 {
		return Header{}, ErrHeaderVersion
	}
	h := Header{
		Multi:    b[0]&flagMulti != 0,
		HopLimit: b[1],
		Ingress:  NodeID(binary.BigEndian.Uint32(b[2:])),
		Egress:   NodeID(binary.BigEndian.Uint32(b[6:])),
	}
	if h.Ingress == 0 || h.Multi != (h.Egress == 0) {
		return Header{}, ErrHeaderNodes
	}
	return h, nil
}
