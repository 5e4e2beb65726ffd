package tap

import (
	"errors"
	"fmt"
	"strings"
)

// Limits and defaults.
const (
	DefaultMTU = 1500
	MinMTU     = 68    // the IPv4 minimum, as the kernel's ETH_MIN_MTU
	MaxMTU     = 65535 // the TAP driver's maximum
	MaxNameLen = 15    // IFNAMSIZ - 1

	// FrameOverhead is what an Ethernet frame adds to the MTU: the 14-byte
	// header and one 802.1Q tag. A buffer for a plain TAP holds MTU+FrameOverhead.
	FrameOverhead = 18
	// MaxOffloadFrameLen is the largest frame a TAP with offloads hands over:
	// a 64 KiB TSO superframe with its Ethernet header and a tag. A buffer for
	// a TAP with Offload holds this much.
	MaxOffloadFrameLen = 65535 + FrameOverhead
)

// Config says which TAP to open and how to set it up.
type Config struct {
	// Name is the interface name, required, at most 15 bytes.
	Name string
	// MTU of the TAP; 0 means DefaultMTU.
	MTU int
	// MAC is the TAP's address; the zero value keeps the kernel's random one.
	// It is set when it differs from the TAP's current address, so a reused
	// persistent TAP takes a changed MAC too.
	MAC [6]byte
	// Persistent sets TUNSETPERSIST: the TAP outlives the process, and Open
	// of an existing persistent TAP reuses it. Open with Persistent false of
	// an existing persistent TAP reuses it and clears the flag, so it goes
	// away on Close.
	Persistent bool
	// Bridge, if set, names an existing Linux bridge that the TAP becomes a
	// port of. A TAP that is a port of another bridge is moved.
	Bridge string
	// Offload opens the Linux fast path: IFF_VNET_HDR and
	// TUNSETOFFLOAD(TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6), so the kernel hands over
	// TSO superframes of up to 64 KiB, each with a virtio-net header. Without
	// it the TAP is a plain one, created with songgao/water, with no header.
	Offload bool
}

// mtu returns the MTU to set.
func (c *Config) mtu() int {
	if c.MTU == 0 {
		return DefaultMTU
	}
	return c.MTU
}

// validate checks the config; its errors do not name the TAP, the caller does.
func (c *Config) validate() error {
	if err := ValidName(c.Name); err != nil {
		return fmt.Errorf("name: %w", err)
	}
	if c.MTU != 0 && (c.MTU < MinMTU || c.MTU > MaxMTU) {
		return fmt.Errorf("mtu %d: must be between %d and %d", c.MTU, MinMTU, MaxMTU)
	}
	if c.MAC[0]&1 != 0 {
		return fmt.Errorf("mac %s: must be a unicast address", formatMAC(c.MAC))
	}
	if c.Bridge != "" {
		if err := ValidName(c.Bridge); err != nil {
			return fmt.Errorf("bridge name: %w", err)
		}
		if c.Bridge == c.Name {
			return errors.New("bridge: the tap cannot be its own bridge")
		}
	}
	return nil
}

// ValidName checks an interface name as the kernel's dev_valid_name does.
// Its errors start with the quoted name.
func ValidName(name string) error {
	switch {
	case name == "":
		return errors.New("is required")
	case len(name) > MaxNameLen:
		return fmt.Errorf("%q is %d bytes: must be at most %d", name, len(name), MaxNameLen)
	case name == "." || name == "..":
		return fmt.Errorf("%q is not a valid interface name", name)
	case strings.ContainsAny(name, "/: \t\n\x00"):
		return fmt.Errorf("%q: must not contain '/', ':', NUL or white space", name)
	}
	return nil
}

// bufLen returns the buffer length ReadFrames needs per frame.
func bufLen(offload bool, mtu int) int {
	if offload {
		return MaxOffloadFrameLen
	}
	return mtu + FrameOverhead
}

func formatMAC(m [6]byte) string {
	const hex = "0123456789abcdef"
	var b [17]byte
	for i, v := range m {
		if i > 0 {
			b[3*i-1] = ':'
		}
		b[3*i] = hex[v>>4]
		b[3*i+1] = hex[v&0xf]
	}
	return string(b[:])
}
