package lab

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/netns"
)

// ExitError carries the exit status of l2wg lab; Err, if set, is printed.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

const usage = `usage: l2wg lab <command> [arguments]

Build l2wg networks in network namespaces from a topology file, or from a
shipped topology by name (two-hypervisors, five-sites, triangle, ...; lab list).

commands:
  run TOPOLOGY      build, wait for convergence, check, report, tear down;
                    exit status 0 only if every check passed
  up TOPOLOGY       build and leave running (until lab down)
  status            show a running lab: nodes, addresses, processes, links
  exec NODE -- CMD  run CMD in the namespace of a VM, site or router
  cut A B           take the link A-B down, or drop traffic between sites A and B
  heal A B          undo cut A B
  stop SITE         stop SITE's l2wg (SIGTERM)
  start SITE        start it again
  roam SITE         give SITE (and its NAT router) new underlay addresses
  down              remove a lab: processes, namespaces, links, state;
                    also what a crashed run left behind
  list              list the shipped topologies and the labs that exist
  print TOPOLOGY    print a shipped topology (a starting point for your own)

common flags:
  -n NAME           the lab (default: the topology's name; the only lab)
  -state-dir DIR    where labs keep their state (default /run/l2wg-lab)

run and up flags:
  -seed N           seed the impairments (default: the topology's, or random)
  -l2wg PATH        the l2wg binary to run (default: this one)
  -site-l2wg SITE=PATH
                    SITE runs the binary PATH instead (repeatable): a lab
                    of mixed architectures, e.g. a 386 build
  -protocol P       the sites run mesh protocol P (shortest-path, rstp, stp,
                    spanning-tree) whatever the topology's [mesh] says: the
                    same network with the spanning tree, for comparison
  -json FILE        (run) also write the report as JSON to FILE
`

// Main runs l2wg lab with args (after "lab").
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &ExitError{Code: 2}
	}
	verb, rest := args[0], args[1:]
	switch verb {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	case "relay":
		return relayMain(rest, stderr)
	case "list":
		return cmdList(rest, stdout, stderr)
	case "print":
		if len(rest) != 1 {
			return &ExitError{Code: 2, Err: errors.New("lab print: name one shipped topology")}
		}
		data, ok := ShippedText(rest[0])
		if !ok {
			return fmt.Errorf("lab print: no shipped topology %q (%s)", rest[0], strings.Join(Shipped(), ", "))
		}
		_, err := stdout.Write(data)
		return err
	case "run", "up":
		return cmdBuild(verb, rest, stdout, stderr)
	case "status":
		return cmdStatus(rest, stdout, stderr)
	case "exec":
		return cmdExec(rest, stdin, stdout, stderr)
	case "cut", "heal", "stop", "start", "roam":
		return cmdAction(verb, rest, stdout, stderr)
	case "down":
		return cmdDown(rest, stdout, stderr)
	default:
		return &ExitError{Code: 2, Err: fmt.Errorf("lab: unknown command %q (l2wg lab help)", verb)}
	}
}

// common are the flags every command takes.
type common struct {
	name, root string
}

func newFlags(verb string, stderr io.Writer, c *common) *flag.FlagSet {
	fs := flag.NewFlagSet("lab "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.name, "n", "", "lab `name`")
	fs.StringVar(&c.root, "state-dir", DefaultStateRoot, "state `directory` of the labs")
	return fs
}

// parseInterspersed parses flags that may come after positional arguments
// ("run five-sites -seed 3"); positional arguments are returned in order.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// pickLab resolves -n: given, or the only lab that exists.
func pickLab(c *common) (string, error) {
	if c.name != "" {
		return c.name, nil
	}
	labs, err := labDirs(c.root)
	if err != nil {
		return "", err
	}
	switch len(labs) {
	case 0:
		return "", fmt.Errorf("no lab is up (nothing in %s)", c.root)
	case 1:
		return labs[0], nil
	}
	return "", fmt.Errorf("several labs are up (%s): name one with -n", strings.Join(labs, ", "))
}

func requireRoot() error {
	if os.Geteuid() != 0 {
		return errors.New("l2wg lab needs root (network namespaces)")
	}
	return nil
}

func cmdBuild(verb string, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlags(verb, stderr, &c)
	seed := fs.String("seed", "", "impairment `seed`")
	bin := fs.String("l2wg", "", "the l2wg `binary` (default: this one)")
	jsonOut := fs.String("json", "", "write the report as JSON to `file`")
	protocol := fs.String("protocol", "", "the sites run mesh `protocol` (shortest-path, rstp, stp, spanning-tree) instead of the topology's")
	siteBin := map[string]string{}
	fs.Func("site-l2wg", "`SITE=PATH`: SITE runs the l2wg binary PATH (repeatable)", func(v string) error {
		site, path, ok := strings.Cut(v, "=")
		if !ok || site == "" || path == "" {
			return errors.New("want SITE=PATH")
		}
		siteBin[site] = path
		return nil
	})
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return &ExitError{Code: 2}
	}
	if len(pos) != 1 {
		return &ExitError{Code: 2, Err: fmt.Errorf("lab %s: name one topology (a file, or one of %s)", verb, strings.Join(Shipped(), ", "))}
	}
	if err := requireRoot(); err != nil {
		return err
	}
	t, err := Load(pos[0])
	if err != nil {
		return err
	}
	if *protocol != "" {
		if err := t.SetMeshProtocol(*protocol); err != nil {
			return &ExitError{Code: 2, Err: fmt.Errorf("lab %s: -protocol %w", verb, err)}
		}
	}
	opt := Options{L2WG: *bin, SiteL2WG: siteBin, StateRoot: c.root, Name: c.name}
	if opt.L2WG == "" {
		if opt.L2WG, err = os.Executable(); err != nil {
			return err
		}
	}
	if *seed != "" {
		s, err := strconv.ParseInt(*seed, 10, 64)
		if err != nil {
			return &ExitError{Code: 2, Err: fmt.Errorf("lab %s: -seed %q: not a number", verb, *seed)}
		}
		opt.Seed = &s
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if verb == "run" {
		opt.Log = indent{stdout}
		rep := Run(ctx, t, opt, stdout)
		if *jsonOut != "" {
			if err := writeJSONAtomic(*jsonOut, rep); err != nil {
				return err
			}
		}
		if !rep.Passed {
			return &ExitError{Code: 1}
		}
		return nil
	}
	opt.Detach = true
	opt.Log = indent{stdout}
	fmt.Fprintf(stdout, "l2wg lab up %s\n", t.Name)
	l, err := Build(ctx, t, opt)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "   %s\n", l.summary())
	if l.Show {
		conv := l.Converge(ctx, t.Checks.convergeTimeout)
		if conv.OK {
			fmt.Fprintf(stdout, "   converged in %s\n", conv.Took.Round(100*time.Millisecond))
		} else {
			fmt.Fprintf(stdout, "   not converged after %s (%s); it may still\n", conv.Took.Round(time.Second), conv.Waiting)
		}
	}
	fmt.Fprintf(stdout, "lab %s is up (seed %d). Try:\n", l.Name, l.Seed)
	if len(l.Plan.VMs) >= 2 {
		fmt.Fprintf(stdout, "   l2wg lab exec %s -- ping %s\n", l.Plan.VMs[0].Name, l.Plan.VMs[len(l.Plan.VMs)-1].Addr.Addr())
	}
	if s := l.Plan.Sites(); len(s) > 0 {
		fmt.Fprintf(stdout, "   l2wg lab exec %s -- l2wg show\n", s[0].Name)
	}
	fmt.Fprintf(stdout, "   l2wg lab status\n   l2wg lab down\n")
	return nil
}

// indent prefixes progress lines.
type indent struct{ w io.Writer }

func (i indent) Write(p []byte) (int, error) {
	if _, err := fmt.Fprintf(i.w, "   %s", p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func cmdList(args []string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlags("list", stderr, &c)
	if err := fs.Parse(args); err != nil {
		return &ExitError{Code: 2}
	}
	fmt.Fprintln(stdout, "shipped topologies:")
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	for _, name := range Shipped() {
		t, err := Load(name)
		desc := ""
		if err == nil {
			desc = t.Description
		}
		fmt.Fprintf(tw, "  %s\t%s\n", name, desc)
	}
	tw.Flush()
	labs, _ := labDirs(c.root)
	if len(labs) == 0 {
		fmt.Fprintln(stdout, "no lab is up")
		return nil
	}
	fmt.Fprintln(stdout, "labs:")
	for _, name := range labs {
		st, err := readState(filepath.Join(c.root, name))
		if err != nil {
			fmt.Fprintf(stdout, "  %s\t(no state: l2wg lab down -n %s)\n", name, name)
			continue
		}
		fmt.Fprintf(stdout, "  %s\ttopology %s, since %s\n", name, st.Topology, st.Created.Format(time.DateTime))
	}
	return nil
}

func cmdExec(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var c common
	fs := newFlags("exec", stderr, &c)
	if err := fs.Parse(args); err != nil {
		return &ExitError{Code: 2}
	}
	rest := fs.Args()
	if len(rest) < 2 {
		return &ExitError{Code: 2, Err: errors.New("lab exec: want NODE -- COMMAND [ARGS]")}
	}
	node, argv := rest[0], rest[1:]
	if argv[0] == "--" {
		argv = argv[1:]
	}
	if len(argv) == 0 {
		return &ExitError{Code: 2, Err: errors.New("lab exec: no command")}
	}
	l, name, err := attachPicked(&c)
	if err != nil {
		return err
	}
	if l.Plan.Node(node) == nil && l.Plan.VM(node) == nil {
		return fmt.Errorf("lab %s: no node %q", name, node)
	}
	// l2wg means the lab's binary, so "lab exec hv1 -- l2wg show" works
	// without l2wg on PATH.
	if argv[0] == "l2wg" {
		argv[0] = l.l2wg
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", l.NS.Name(node)}, argv...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &ExitError{Code: ee.ExitCode()}
	}
	return err
}

func cmdAction(verb string, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlags(verb, stderr, &c)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return &ExitError{Code: 2}
	}
	l, name, err := attachPicked(&c)
	if err != nil {
		return err
	}
	a, err := parseAction(strings.Join(append([]string{verb}, pos...), " "), l.kinds())
	if err != nil {
		return &ExitError{Code: 2, Err: fmt.Errorf("lab %s: %w", verb, err)}
	}
	did, err := l.do(context.Background(), a)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "lab %s: %s\n", name, did)
	return nil
}

func cmdDown(args []string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlags("down", stderr, &c)
	all := fs.Bool("all", false, "remove every lab, and every namespace named l2wglab-*")
	if err := fs.Parse(args); err != nil {
		return &ExitError{Code: 2}
	}
	if err := requireRoot(); err != nil {
		return err
	}
	var names []string
	if *all {
		names, _ = labDirs(c.root)
	} else {
		name, err := pickLab(&c)
		if err != nil {
			// Nothing recorded: still clear namespaces of that name.
			if c.name == "" {
				return err
			}
			name = c.name
		}
		names = []string{name}
	}
	var errs []error
	for _, name := range names {
		before, _ := netns.ListPrefix(nsPrefix(name))
		if err := downDir(filepath.Join(c.root, name), nsPrefix(name)); err != nil {
			errs = append(errs, err)
		}
		fmt.Fprintf(stdout, "lab %s: down (%d namespaces removed)\n", name, len(before))
	}
	if *all {
		if left, err := netns.DeletePrefix(nsPrefixBase); err != nil {
			errs = append(errs, err)
		} else if len(left) > 0 {
			fmt.Fprintf(stdout, "removed %d namespaces of labs without state\n", len(left))
		}
	}
	return errors.Join(errs...)
}

func cmdStatus(args []string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlags("status", stderr, &c)
	asJSON := fs.Bool("json", false, "print the state file")
	if err := fs.Parse(args); err != nil {
		return &ExitError{Code: 2}
	}
	if err := requireRoot(); err != nil {
		return err
	}
	name, err := pickLab(&c)
	if err != nil {
		return err
	}
	l, st, err := attach(c.root, name)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	return l.printStatus(stdout, st)
}

// printStatus prints what lab status shows.
func (l *Lab) printStatus(w io.Writer, st *state) error {
	mode := "up (detached)"
	if !st.Detached {
		mode = "owned by lab run"
		if st.Owner != nil {
			mode += fmt.Sprintf(" pid %d", st.Owner.PID)
			if !st.Owner.alive() {
				mode += ", which is gone: remove it with l2wg lab down -n " + l.Name
			}
		}
	}
	fmt.Fprintf(w, "lab %s: topology %s, %s since %s, seed %d\n", l.Name, st.Topology, mode, st.Created.Format(time.DateTime), st.Seed)
	fmt.Fprintf(w, "  state %s, namespaces %s*, l2wg %s\n", l.Dir, st.Prefix, orDefault(st.Version, st.L2WG))
	if !st.Ready {
		fmt.Fprintf(w, "  not completely built\n")
	}
	ctx := context.Background()
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "\nsites:\tunderlay\tl2wg\tpeers")
	for _, n := range l.Plan.Sites() {
		var addrs []string
		for _, i := range n.Ifaces {
			addrs = append(addrs, l.currentAddr(st, i).String())
		}
		if n.BehindNAT != nil {
			addrs = append(addrs, "behind "+n.BehindNAT.Name)
		}
		proc := "stopped"
		var peers []string
		if r := st.Procs["l2wg "+n.Name]; r != nil {
			if r.alive() {
				proc = fmt.Sprintf("pid %d", r.PID)
				if s, err := l.Status(ctx, n.Name); err == nil {
					for _, p := range s.Peers {
						hs := "no handshake"
						if p.LatestHandshake != nil {
							hs = fmt.Sprintf("%s ago", time.Since(*p.LatestHandshake).Round(time.Second))
						}
						state := ""
						if ps, role := s.portState(p.Name); ps != "" {
							state = " " + ps + "/" + role
						}
						peers = append(peers, fmt.Sprintf("%s (%s%s)", p.Name, hs, state))
					}
				}
			} else {
				proc = fmt.Sprintf("pid %d exited", r.PID)
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", n.Name, strings.Join(addrs, " "), proc, strings.Join(peers, ", "))
	}
	fmt.Fprintln(tw, "\nrouters:\taddresses\t\t")
	for _, n := range l.Plan.Nodes {
		if !n.Router {
			continue
		}
		var addrs []string
		for _, i := range n.Ifaces {
			addrs = append(addrs, fmt.Sprintf("%s %s", i.Name, l.currentAddr(st, i)))
		}
		kind := ""
		if n.NAT {
			kind = "NAT toward " + l.Plan.uplinkOf(n)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t\n", n.Name, strings.Join(addrs, ", "), kind)
	}
	fmt.Fprintln(tw, "\nvms:\taddress\tsite\t")
	for _, v := range l.Plan.VMs {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t\n", v.Name, v.Addr, v.Site.Name)
	}
	fmt.Fprintln(tw, "\nlinks:\tsubnet\tkind\tstate")
	for _, k := range l.Plan.Links {
		kind := "veth"
		if k.Relayed {
			kind = "relay: " + k.Impair.String()
		}
		state := "up"
		if cutPair(st, k.A.Node.Name, k.B.Node.Name) {
			state = "CUT"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", k.Name(), k.Subnet, kind, state)
	}
	tw.Flush()
	if len(st.Cuts) > 0 {
		fmt.Fprintf(w, "\ncuts: %s\n", strings.Join(st.Cuts, "; "))
	}
	if r := st.Procs["relay"]; r != nil {
		alive := "running"
		if !r.alive() {
			alive = "exited"
		}
		fmt.Fprintf(w, "\nrelay: pid %d %s\n", r.PID, alive)
		var rs relayStats
		if data, err := os.ReadFile(filepath.Join(l.Dir, "relay.stats.json")); err == nil && json.Unmarshal(data, &rs) == nil {
			tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "  direction\tin\tout\tlost\tqueue drops\tduplicated\treordered\t")
			for _, d := range sortedKeys(rs.Directions) {
				s := rs.Directions[d]
				fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", d, s.In, s.Out, s.Lost, s.QueueDrops+s.Overflow, s.Duplicated, s.Reordered)
			}
			tw.Flush()
		}
	}
	return nil
}

// attachPicked checks for root, picks the lab the flags name (or the only
// one up) and attaches to it.
func attachPicked(c *common) (*Lab, string, error) {
	if err := requireRoot(); err != nil {
		return nil, "", err
	}
	name, err := pickLab(c)
	if err != nil {
		return nil, "", err
	}
	l, err := Attach(c.root, name)
	return l, name, err
}
