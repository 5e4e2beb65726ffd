package capture

import (
	"encoding/binary"
	"io"
	"time"
)

// pcapWriter writes the classic pcap format with nanosecond timestamps
// (magic a1b23c4d, version 2.4, little-endian), link type Ethernet.
//
// It is written here rather than taken from gopacket's pcapgo because
// pcapgo imports gopacket/layers, whose package initialisation fills
// ~6 MiB of decoder tables: memory every running node would hold (the
// daemon and the capture client are one binary) for a header of 24 bytes
// and records of 16. Tests read what it writes with pcapgo.
type pcapWriter struct {
	w   io.Writer
	hdr [16]byte
}

// linkTypeEthernet is LINKTYPE_ETHERNET of the pcap format.
const linkTypeEthernet = 1

func newPcapWriter(w io.Writer) *pcapWriter { return &pcapWriter{w: w} }

// writeFileHeader writes the 24-byte global header.
func (p *pcapWriter) writeFileHeader(snaplen uint32) error {
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b23c4d)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	// thiszone and sigfigs stay 0.
	binary.LittleEndian.PutUint32(h[16:], snaplen)
	binary.LittleEndian.PutUint32(h[20:], linkTypeEthernet)
	_, err := p.w.Write(h[:])
	return err
}

// writePacket writes one record: data as captured, origLen as on the wire.
func (p *pcapWriter) writePacket(at time.Time, data []byte, origLen int) error {
	ns := at.UnixNano()
	binary.LittleEndian.PutUint32(p.hdr[0:], uint32(ns/1e9))
	binary.LittleEndian.PutUint32(p.hdr[4:], uint32(ns%1e9))
	binary.LittleEndian.PutUint32(p.hdr[8:], uint32(len(data)))
	binary.LittleEndian.PutUint32(p.hdr[12:], uint32(max(origLen, len(data))))
	if _, err := p.w.Write(p.hdr[:]); err != nil {
		return err
	}
	_, err := p.w.Write(data)
	return err
}
