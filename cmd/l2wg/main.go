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
	err := dispatch(args, stdin, stdout, stderr)
	if errors.Is(err, errHelp) {
		return nil // the help asked for, on stdout
	}
	return err
}

func dispatch(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &exitError{code: 2}
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "up":
		path, err := configFlag("up", "run the switch in the foreground until SIGINT/SIGTERM (SIGHUP reloads)", rest, stdout, stderr)
		if err != nil {
			return err
		}
		return cmdUp(path, stderr)
	case "check":
		path, err := configFlag("check", "validate a config and its key files, change nothing", rest, stdout, stderr)
		if err != nil {
			return err
		}
		cfg, err := config.Load(path)
		if err != nil {
			return err
		}
		for _, w := range cfg.Warnings() {
			fmt.Fprintf(stderr, "l2wg: warning: %s\n", w)
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
		if err := parseFlags(newFlags("genkey", "", "print a new private key in base64 (as wg genkey): l2wg genkey > node.key"), rest, stdout, stderr); err != nil {
			return err
		}
		return cmdGenkey(stdout, stderr)
	case "pubkey":
		if err := parseFlags(newFlags("pubkey", "< node.key", "read a private key on stdin, print its public key (as wg pubkey)"), rest, stdout, stderr); err != nil {
			return err
		}
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
func configFlag(name, what string, args []string, stdout, stderr io.Writer) (string, error) {
	fs := newFlags(name, "[-c node.toml]", what)
	path := fs.String("c", "/etc/l2wg/node.toml", "config `file`")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return "", err
	}
	return *path, nil
}

// errHelp says a command's help was asked for and printed.
var errHelp = errors.New("help printed")

// newFlags makes a subcommand's flags; its usage is "usage: l2wg name
// synopsis", what it does, and the flags.
func newFlags(name, synopsis, what string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: l2wg %s %s\n\n%s\n", name, synopsis, what)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses a subcommand's arguments, which take no positional
// ones unless positional. -h or --help prints the usage to stdout and
// returns errHelp (exit status 0); a bad flag prints it to stderr (exit
// status 2).
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer, positional ...bool) error {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(stdout)
			fs.Usage()
			return errHelp
		}
	}
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2}
	}
	if len(positional) == 0 && fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}
