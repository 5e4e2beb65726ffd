package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/capture"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/control"
)

const captureUsage = `usage: l2wg capture [-i tap] [--port NAME] [-Q in|out|inout] -w FILE [-c COUNT] [-d DURATION] [-s SNAPLEN]

Writes the frames the switch of a running l2wg passes through a port (every
port without --port) to FILE in pcap format, for tcpdump -r and Wireshark
("-w -" writes to stdout: l2wg capture -w - | tcpdump -n -r -). Frames are
what the switch sees: whole, before fragmentation, GSO superframes as one.
With every port, a switched frame shows once coming in and once per port it
leaves by; -Q in shows each frame once.

A capture stops after COUNT frames or DURATION, whichever comes first; with
neither given it stops after 1000 frames or 60s. Ctrl-C stops it early; the
file is complete either way. Frames the writer cannot keep up with are
dropped and counted, never held back from the switch.

`

// cmdCapture is `l2wg capture`.
func cmdCapture(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("capture", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), captureUsage)
		fs.PrintDefaults()
	}
	tap := fs.String("i", "", "the TAP `name` of the l2wg to capture on (default: the only one running)")
	port := fs.String("port", "", "capture the switch port `NAME` (a peer's name or the TAP's; default: every port)")
	dirFlag := fs.String("Q", "inout", "`direction`: in (entering the switch), out (leaving it) or inout")
	out := fs.String("w", "", "write the pcap to `FILE` (- for stdout); required")
	count := fs.Int("c", capture.DefaultCount, "stop after `COUNT` frames")
	duration := fs.Duration("d", capture.DefaultDuration, "stop after `DURATION`")
	snaplen := fs.Int("s", capture.DefaultSnaplen, "keep the first `SNAPLEN` bytes of each frame")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if *out == "" {
		return &exitError{code: 2, err: errors.New("capture: -w FILE is required (- for stdout)")}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	req := capture.Request{Port: *port, Direction: *dirFlag, Count: *count, Duration: *duration, Snaplen: *snaplen}
	switch {
	case set["c"] && !set["d"]:
		req.Duration = 0
	case set["d"] && !set["c"]:
		req.Count = 0
	}
	if (set["c"] && *count <= 0) || (set["d"] && *duration <= 0) {
		return &exitError{code: 2, err: errors.New("capture: -c and -d must be positive")}
	}
	if *snaplen < 64 || *snaplen > capture.DefaultSnaplen {
		return &exitError{code: 2, err: fmt.Errorf("capture: -s %d: must be between 64 and %d", *snaplen, capture.DefaultSnaplen)}
	}
	if _, err := capture.ParseDir(req.Direction); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("capture: -Q: %w", err)}
	}
	addr, err := control.Find(*tap)
	if err != nil {
		return err
	}
	return capture.Run(addr, req, *out, stdout, stderr)
}
