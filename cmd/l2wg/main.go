// Command l2wg is a userspace Layer-2 VPN: a learning switch with its own
// spanning tree whose ports are a TAP device and every WireGuard peer of an
// embedded wireguard-go device.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/config"
)

// version is set at build time: -ldflags "-X main.version=$(git describe)".
var version = "dev"

const usage = `usage: l2wg <command> [arguments]

commands:
  up -c node.toml      run the switch in the foreground until SIGINT/SIGTERM
  check -c node.toml   validate a config and its key files, change nothing
  show [-i tap] [--json] [fdb]
                       print a running l2wg's interface, peers, spanning tree,
                       ports and (with fdb) forwarding database
  reload [-i tap]      re-read node.toml and apply the difference live (also SIGHUP)
  capture [-i tap] [--port NAME] -w file.pcap [-c count] [-d duration]
                       write the frames the switch passes through a port
                       (default: every port) to a pcap file (l2wg capture -h)
  genkey               print a new private key (as wg genkey)
  pubkey               read a private key on stdin, print its public key (as wg pubkey)
  lab <verb> ...       build and test topologies in network namespaces (l2wg lab help)
  version              print the version
`

// exitError carries an exit status; its message, if any, is printed.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func main() {
	err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if err == nil {
		return
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		err = ee.err
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "l2wg: %v\n", err)
	}
	os.Exit(code)
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &exitError{code: 2}
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "up":
		path, err := configFlag("up", rest, stderr)
		if err != nil {
			return err
		}
		return cmdUp(path, stderr)
	case "check":
		path, err := configFlag("check", rest, stderr)
		if err != nil {
			return err
		}
		if _, err := config.Load(path); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: ok\n", path)
		return nil
	case "reload":
		return cmdReload(rest, stdout, stderr)
	case "show":
		return cmdShow(rest, stdout, stderr)
	case "capture":
		return cmdCapture(rest, stdout, stderr)
	case "lab":
		return cmdLab(rest, stdout, stderr)
	case "genkey":
		return cmdGenkey(stdout, stderr)
	case "pubkey":
		return cmdPubkey(stdin, stdout)
	case "version", "--version":
		fmt.Fprintf(stdout, "l2wg %s\n", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "l2wg: unknown command %q\n\n%s", cmd, usage)
		return &exitError{code: 2}
	}
}

// configFlag parses "-c file" for a subcommand.
func configFlag(name string, args []string, stderr io.Writer) (string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "/etc/l2wg/node.toml", "config `file`")
	if err := fs.Parse(args); err != nil {
		return "", &exitError{code: 2}
	}
	if fs.NArg() > 0 {
		return "", &exitError{code: 2, err: fmt.Errorf("%s: unexpected argument %q", name, fs.Arg(0))}
	}
	return *path, nil
}
