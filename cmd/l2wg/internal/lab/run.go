package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// A Report is the outcome of a lab run.
type Report struct {
	Lab      string        `json:"lab"`
	Topology string        `json:"topology"`
	Source   string        `json:"source"`
	Seed     int64         `json:"seed"`
	Version  string        `json:"l2wg_version"`
	Started  time.Time     `json:"started"`
	Took     time.Duration `json:"took_ns"`
	// Skipped is set when the topology cannot run with this l2wg.
	Skipped string  `json:"skipped,omitempty"`
	Error   string  `json:"error,omitempty"` // the lab could not be built
	Phases  []Phase `json:"phases"`
	Checks  []Check `json:"checks"`
	Passed  bool    `json:"passed"`
}

// A Phase is a step of a run that is not a check: build, converge, an event.
type Phase struct {
	Name    string        `json:"name"`
	Summary string        `json:"summary"`
	OK      bool          `json:"ok"`
	Took    time.Duration `json:"took_ns"`
}

// Counts returns how many checks passed, failed and were skipped.
func (r *Report) Counts() (ok, failed, skipped int) {
	for _, c := range r.Checks {
		switch c.Status {
		case statusOK:
			ok++
		case statusFail:
			failed++
		default:
			skipped++
		}
	}
	return
}

// reporter prints a report as it grows.
type reporter struct {
	r *Report
	w io.Writer
}

func (p *reporter) phase(ph Phase) {
	p.r.Phases = append(p.r.Phases, ph)
	mark := "  "
	if !ph.OK {
		mark = "!!"
	}
	fmt.Fprintf(p.w, "%s %-10s %s (%s)\n", mark, ph.Name, ph.Summary, ph.Took.Round(100*time.Millisecond))
}

func (p *reporter) check(stage string, c Check) {
	c.Stage = stage
	p.r.Checks = append(p.r.Checks, c)
	mark := map[string]string{statusOK: "ok  ", statusFail: "FAIL", statusSkip: "skip"}[c.Status]
	fmt.Fprintf(p.w, "   %s  %s: %s\n", mark, c.Name, c.Summary)
	for _, d := range c.Details {
		fmt.Fprintf(p.w, "           %s\n", d)
	}
}

// Run builds the lab of topology t, waits for it to converge, runs its
// checks and events, prints the report to w as it goes, and tears the lab
// down. The report's Passed says whether every check passed; an error means
// the run could not be carried out.
func Run(ctx context.Context, t *Topology, opt Options, w io.Writer) *Report {
	start := time.Now()
	name := opt.Name
	if name == "" {
		name = t.Name
	}
	rep := &Report{Lab: name, Topology: t.Name, Source: t.Source, Started: start}
	p := &reporter{r: rep, w: w}
	fmt.Fprintf(w, "l2wg lab run %s", t.Name)
	if name != t.Name {
		fmt.Fprintf(w, " (lab %s)", name)
	}
	fmt.Fprintln(w)
	if t.Description != "" {
		for _, line := range strings.Split(strings.TrimSpace(t.Description), "\n") {
			fmt.Fprintf(w, "   %s\n", strings.TrimSpace(line))
		}
	}
	opt.Detach = false
	opt.Name = name
	lab, err := Build(ctx, t, opt)
	var skip *SkipError
	switch {
	case errors.As(err, &skip):
		rep.Skipped = skip.Reason
		rep.Passed = true
		rep.Took = time.Since(start)
		fmt.Fprintf(w, "SKIPPED: %s\n", skip.Reason)
		return rep
	case err != nil:
		rep.Error = err.Error()
		rep.Took = time.Since(start)
		p.phase(Phase{Name: "build", Summary: err.Error(), Took: time.Since(start)})
		fmt.Fprintf(w, "FAIL: the lab could not be built\n")
		return rep
	}
	defer func() {
		if err := lab.Down(); err != nil {
			fmt.Fprintf(w, "!! teardown: %v\n", err)
			rep.Passed = false
		}
	}()
	rep.Seed = lab.Seed
	if st, err := readState(lab.Dir); err == nil {
		rep.Version = st.Version
	}
	p.phase(Phase{Name: "build", OK: true, Took: time.Since(start), Summary: lab.summary()})
	fmt.Fprintf(w, "   seed %d (replay: --seed %d), l2wg %s, state in %s\n", lab.Seed, lab.Seed, orDefault(rep.Version, "?"), lab.Dir)
	if lab.NoSTP {
		fmt.Fprintf(w, "   note: this l2wg has no spanning tree; the configs leave out [stp]\n")
	}
	if !lab.Show {
		fmt.Fprintf(w, "   note: this l2wg has no `l2wg show`: no convergence or spanning-tree checks\n")
	}

	timeout := t.Checks.convergeTimeout
	lab.convergePhase(ctx, p, "converge", timeout)
	if ctx.Err() == nil {
		lab.runChecks(ctx, p, "initial", true)
	}
	for _, e := range t.Events {
		if ctx.Err() != nil {
			break
		}
		a, _ := parseAction(e.Do, lab.kinds())
		lab.runEvent(ctx, p, a, timeout)
	}
	ok, failed, skipped := rep.Counts()
	rep.Passed = failed == 0 && ctx.Err() == nil
	for _, ph := range rep.Phases {
		rep.Passed = rep.Passed && ph.OK
	}
	rep.Took = time.Since(start)
	verdictWord := "PASS"
	if !rep.Passed {
		verdictWord = "FAIL"
	}
	if ctx.Err() != nil {
		fmt.Fprintf(w, "interrupted: %v\n", context.Cause(ctx))
	}
	fmt.Fprintf(w, "%s: %d checks passed, %d failed, %d skipped, in %s\n", verdictWord, ok, failed, skipped, rep.Took.Round(100*time.Millisecond))
	return rep
}

// summary describes the built lab in one line.
func (l *Lab) summary() string {
	p := l.Plan
	relayed := 0
	for _, k := range p.Links {
		if k.Relayed {
			relayed++
		}
	}
	return fmt.Sprintf("%d namespaces: %d sites, %d VMs, %d routers; %d links (%d through the relay); %d peerings",
		len(p.Namespaces()), len(p.Sites()), len(p.VMs), len(p.Nodes)-len(p.Sites()), len(p.Links), relayed, len(p.Peerings))
}

// convergePhase waits for convergence and reports it as a phase.
func (l *Lab) convergePhase(ctx context.Context, p *reporter, name string, timeout time.Duration) bool {
	c := l.Converge(ctx, timeout)
	ph := Phase{Name: name, OK: c.OK, Took: c.Took}
	switch {
	case ctx.Err() != nil:
		ph.Summary = "interrupted"
	case !l.Show:
		ph.Summary = "no l2wg show: not observed"
	case !c.OK:
		ph.Summary = fmt.Sprintf("not converged after %s: %s", timeout, c.Waiting)
	default:
		ph.Summary = fmt.Sprintf("%d active peerings have WireGuard sessions", len(l.activePeerings()))
		if l.STP {
			t := l.tree(c.Status, l.runningSites(), l.activePeerings())
			ph.Summary += fmt.Sprintf("; spanning tree with root %s", t.rootSite)
		}
	}
	p.phase(ph)
	return c.OK
}

// runChecks runs the checks of one stage.
func (l *Lab) runChecks(ctx context.Context, p *reporter, stage string, all bool) {
	p.check(stage, l.CheckPingMatrix(ctx, 20*time.Second))
	p.check(stage, l.CheckBroadcast(ctx, 10*time.Second))
	if all {
		p.check(stage, l.CheckHypervisorsInvisible(ctx))
	}
	p.check(stage, l.CheckSpanningTree(ctx))
	if all || l.Plan.Topo.Checks.ShortestPaths {
		p.check(stage, l.CheckShortestPaths(ctx, l.shortestPathsRequired()))
	}
	if all {
		if c := l.CheckNAT(ctx); c.Status != statusSkip || len(l.Plan.Peerings) == 0 {
			p.check(stage, c)
		}
	}
}

// runEvent carries out one event, waits for the lab to converge again and
// checks it.
func (l *Lab) runEvent(ctx context.Context, p *reporter, a action, timeout time.Duration) {
	stage := a.String()
	fmt.Fprintf(p.w, "event %s\n", stage)
	var before roamSnapshot
	if a.Verb == "roam" {
		before = l.snapshotRoam(ctx, a.A)
	}
	start := time.Now()
	did, err := l.do(ctx, a)
	if err != nil {
		p.phase(Phase{Name: a.Verb, Summary: err.Error(), Took: time.Since(start)})
		return
	}
	p.phase(Phase{Name: a.Verb, OK: true, Summary: did, Took: time.Since(start)})
	l.convergePhase(ctx, p, "converge", timeout)
	if ctx.Err() != nil {
		return
	}
	p.check(stage, l.CheckPingMatrix(ctx, 30*time.Second))
	if a.Verb == "roam" {
		p.check(stage, l.checkRoamed(ctx, a.A, before))
	}
	p.check(stage, l.CheckBroadcast(ctx, 10*time.Second))
	p.check(stage, l.CheckSpanningTree(ctx))
	if l.Plan.Topo.Checks.ShortestPaths {
		p.check(stage, l.CheckShortestPaths(ctx, l.shortestPathsRequired()))
	}
}
