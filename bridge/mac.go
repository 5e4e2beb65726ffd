package bridge

import (
	"errors"
	"fmt"
)

// MAC is an IEEE 802 MAC-48 address. It is comparable and keys maps.
type MAC [6]byte

// Broadcast is the all-ones address ff:ff:ff:ff:ff:ff.
var Broadcast = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// ParseMAC parses an address written as six hexadecimal pairs separated by
// colons or hyphens: "aa:bb:cc:dd:ee:ff" or "AA-BB-CC-DD-EE-FF".
func ParseMAC(s string) (MAC, error) {
	if len(s) != 17 {
		return MAC{}, parseMACError(s, errors.New("want six hexadecimal pairs like aa:bb:cc:dd:ee:ff"))
	}
	var m MAC
	sep := s[2]
	if sep != ':' && sep != '-' {
		return MAC{}, parseMACError(s, fmt.Errorf("unexpected separator %q", sep))
	}
	for i := range m {
		if i > 0 && s[3*i-1] != sep {
			return MAC{}, parseMACError(s, fmt.Errorf("unexpected character %q (at %q)", s[3*i-1], s[3*i-1:]))
		}
		hi, ok1 := unhex(s[3*i])
		lo, ok2 := unhex(s[3*i+1])
		if !ok1 || !ok2 {
			return MAC{}, parseMACError(s, fmt.Errorf("not a hexadecimal pair (at %q)", s[3*i:]))
		}
		m[i] = hi<<4 | lo
	}
	return m, nil
}

func parseMACError(s string, err error) error {
	return fmt.Errorf("parse MAC %q: %w", s, err)
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// String returns the address as "aa:bb:cc:dd:ee:ff".
func (m MAC) String() string {
	const hex = "0123456789abcdef"
	var b [17]byte
	for i, v := range m {
		if i > 0 {
			b[3*i-1] = ':'
		}
		b[3*i] = hex[v>>4]
		b[3*i+1] = hex[v&0x0f]
	}
	return string(b[:])
}

// IsMulticast reports whether m is a group address (the I/G bit is set);
// broadcast is a group address too.
func (m MAC) IsMulticast() bool { return m[0]&0x01 != 0 }

// IsBroadcast reports whether m is ff:ff:ff:ff:ff:ff.
func (m MAC) IsBroadcast() bool { return m == Broadcast }

// IsZero reports whether m is 00:00:00:00:00:00, which no station uses.
func (m MAC) IsZero() bool { return m == MAC{} }

// isReservedGroup reports whether m is one of the 802.1D reserved group
// addresses 01:80:C2:00:00:00 to 01:80:C2:00:00:0F (BPDUs, pause frames, LACP,
// LLDP, 802.1X...), which a MAC bridge never forwards.
func (m MAC) isReservedGroup() bool {
	return m[0] == 0x01 && m[1] == 0x80 && m[2] == 0xc2 && m[3] == 0 && m[4] == 0 && m[5]&0xf0 == 0
}

// macSet is an immutable set of addresses, replaced as a whole and read
// lock-free. Short sets, the usual case, are scanned; long ones use a map.
type macSet struct {
	list []MAC
	set  map[MAC]struct{} // non-nil only for long sets
}

const macSetScanMax = 16

func newMACSet(macs []MAC) *macSet {
	if len(macs) == 0 {
		return nil
	}
	s := &macSet{list: append([]MAC(nil), macs...)}
	if len(macs) > macSetScanMax {
		s.set = make(map[MAC]struct{}, len(macs))
		for _, m := range macs {
			s.set[m] = struct{}{}
		}
	}
	return s
}

// contains reports whether m is in s; a nil set is empty.
func (s *macSet) contains(m MAC) bool {
	if s == nil {
		return false
	}
	if s.set != nil {
		_, ok := s.set[m]
		return ok
	}
	for _, x := range s.list {
		if x == m {
			return true
		}
	}
	return false
}
