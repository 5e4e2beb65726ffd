package tap

import "errors"

// Name returns the interface name.
func (d *Device) Name() string { return d.name }

// Offload reports whether the TAP is on the fast path: frames come and go
// with virtio-net headers, and reads may return TSO superframes.
func (d *Device) Offload() bool { return d.offload }

// BufLen returns the buffer length ReadFrames needs for each frame:
// MaxOffloadFrameLen with Offload, MTU+FrameOverhead without.
func (d *Device) BufLen() int { return d.bufLen }

// Dropped returns the number of frames WriteFrame dropped as malformed or
// because the TAP's link was down.
func (d *Device) Dropped() uint64 { return d.dropped.Load() }

func isMalformed(err error) bool { return err != nil && errors.Is(err, errMalformed) }
