package lab

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A Check is one verdict of a lab run.
type Check struct {
	Stage   string        `json:"stage"`  // "initial", "after cut a b"
	Name    string        `json:"name"`   // "ping matrix"
	Status  string        `json:"status"` // ok, fail, skip
	Summary string        `json:"summary"`
	Details []string      `json:"details,omitempty"`
	Took    time.Duration `json:"took_ns"`
}

// Check statuses.
const (
	statusOK   = "ok"
	statusFail = "fail"
	statusSkip = "skip"
)

func verdict(ok bool) string {
	if ok {
		return statusOK
	}
	return statusFail
}

// pingSize is the ICMP payload of a full-size frame: 1500-byte IP packet,
// 1514-byte Ethernet frame, more than one tunnel packet.
const pingSize = 1472

// reachableVMs returns the VMs at running sites, and the function that says
// whether two of them should reach each other: their sites are joined by
// active peerings.
func (l *Lab) reachableVMs() ([]*PlannedVM, func(a, b *PlannedVM) bool) {
	running := l.runningSites()
	active := l.activePeerings()
	joined := make(sets)
	for _, pe := range active {
		joined.union(pe.A.Name, pe.B.Name)
	}
	for _, lan := range l.Plan.LANs {
		for _, s := range lan.Sites[1:] {
			joined.union(lan.Sites[0].Name, s.Name) // the VMs' bridges are joined
		}
	}
	var vms []*PlannedVM
	for _, v := range l.Plan.VMs {
		if contains(running, v.Site.Name) {
			vms = append(vms, v)
		}
	}
	return vms, func(a, b *PlannedVM) bool { return joined.find(a.Site.Name) == joined.find(b.Site.Name) }
}

// pingResult is one pair of the ping matrix.
type pingResult struct {
	sent, received int
	avg            float64 // ms
	tries          int
	err            string
}

var (
	rePingCount = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)
	rePingRTT   = regexp.MustCompile(`= [\d.]+/([\d.]+)/`)
)

// ping pings dst from VM src with full-size DF frames, trying again until
// a reply comes or deadline passes.
func (l *Lab) ping(ctx context.Context, src string, dst netip.Addr, deadline time.Time) pingResult {
	var r pingResult
	for {
		r.tries++
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		out, err := l.NS.ExecContext(cctx, src, "ping", "-n", "-q", "-M", "do", "-s", strconv.Itoa(pingSize),
			"-c", "3", "-i", "0.2", "-W", "1", dst.String())
		cancel()
		if m := rePingCount.FindSubmatch(out); m != nil {
			r.sent, _ = strconv.Atoi(string(m[1]))
			r.received, _ = strconv.Atoi(string(m[2]))
		}
		if m := rePingRTT.FindSubmatch(out); m != nil {
			r.avg, _ = strconv.ParseFloat(string(m[1]), 64)
		}
		if r.received > 0 {
			return r
		}
		if err != nil {
			r.err = strings.TrimSpace(tail(string(out), 1))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return r
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// CheckPingMatrix pings every VM from every other VM that should reach it,
// with full-size frames that must not be fragmented (ping -M do -s 1472).
// A pair is retried until wait has passed, so a network that is still
// settling (FDB entries toward a cut link ageing out) gets its chance; the
// tries are reported.
func (l *Lab) CheckPingMatrix(ctx context.Context, wait time.Duration) Check {
	start := time.Now()
	c := Check{Name: "ping matrix"}
	vms, reach := l.reachableVMs()
	type job struct{ i, j int }
	results := make(map[job]pingResult)
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		jobs = make(chan job)
	)
	deadline := time.Now().Add(wait)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for jb := range jobs {
				r := l.ping(ctx, vms[jb.i].Name, vms[jb.j].Addr.Addr(), deadline)
				mu.Lock()
				results[jb] = r
				mu.Unlock()
			}
		}()
	}
	pairs, skipped := 0, 0
	for i := range vms {
		for j := range vms {
			if i == j {
				continue
			}
			if !reach(vms[i], vms[j]) {
				skipped++
				continue
			}
			pairs++
			jobs <- job{i, j}
		}
	}
	close(jobs)
	wg.Wait()

	okPairs, retried := 0, 0
	var failed []string
	w := 7
	for _, v := range vms {
		w = max(w, len(v.Name)+2)
	}
	head := fmt.Sprintf("%-*s", w, "rtt ms")
	for _, v := range vms {
		head += fmt.Sprintf("%*s", w, v.Name)
	}
	c.Details = append(c.Details, head)
	for i, a := range vms {
		row := fmt.Sprintf("%-*s", w, a.Name)
		for j, b := range vms {
			r, tested := results[job{i, j}]
			switch {
			case i == j:
				row += fmt.Sprintf("%*s", w, "-")
			case !tested:
				row += fmt.Sprintf("%*s", w, "(cut)")
			case r.received == 0:
				row += fmt.Sprintf("%*s", w, "FAIL")
				failed = append(failed, fmt.Sprintf("%s->%s (%s)", a.Name, b.Name, orDefault(r.err, "no reply")))
			default:
				okPairs++
				if r.tries > 1 {
					retried++
				}
				row += fmt.Sprintf("%*.2f", w, r.avg)
			}
		}
		c.Details = append(c.Details, row)
	}
	c.Status = verdict(okPairs == pairs && pairs > 0)
	c.Summary = fmt.Sprintf("ping -M do -s %d (full-size frames, DF) between every two VMs: %d/%d pairs answered", pingSize, okPairs, pairs)
	if retried > 0 {
		c.Summary += fmt.Sprintf(" (%d after retries)", retried)
	}
	if skipped > 0 {
		c.Summary += fmt.Sprintf("; %d pairs not tried (no path left)", skipped)
	}
	if pairs == 0 {
		c.Status = statusSkip
		c.Summary = "fewer than two VMs that can reach each other"
	}
	if len(failed) > 0 {
		c.Details = append(c.Details, "failed: "+strings.Join(failed, ", "))
	}
	c.Took = time.Since(start)
	return c
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

var rePingFrom = regexp.MustCompile(`bytes from ([\d.]+): icmp_seq=(\d+)`)

// CheckBroadcast sends broadcast pings from one VM and checks that every VM
// it should reach answers each request, and only once (a second answer to
// one request means a frame went round a loop).
func (l *Lab) CheckBroadcast(ctx context.Context, wait time.Duration) Check {
	start := time.Now()
	vms, reach := l.reachableVMs()
	var from *PlannedVM
	if name := l.Plan.Topo.Checks.BroadcastFrom; name != "" {
		for _, v := range vms {
			if v.Name == name {
				from = v
			}
		}
	}
	if from == nil && len(vms) > 0 {
		from = vms[0]
	}
	c := Check{Name: "broadcast"}
	if from == nil {
		c.Status, c.Summary = statusSkip, "no VM to send from"
		return c
	}
	c.Name = "broadcast from " + from.Name
	byIP := make(map[string]string)
	var want []string
	for _, v := range l.Plan.VMs {
		byIP[v.Addr.Addr().String()] = v.Name
	}
	for _, v := range vms {
		if v != from && reach(from, v) {
			want = append(want, v.Name)
		}
	}
	bcast := hostN(l.Plan.Topo.vmSubnet, 1<<(32-l.Plan.Topo.vmSubnet.Bits())-1)
	allowDup := false
	for _, k := range l.Plan.Links {
		allowDup = allowDup || k.Impair.Duplicate > 0
	}
	deadline := time.Now().Add(wait)
	var (
		answered map[string]int
		dups     []string
		others   []string
		requests int
	)
	for {
		answered = make(map[string]int)
		dups, others = nil, nil
		seen := make(map[string]bool)
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		// -w, not -c: ping -c stops at the count-th reply, which a
		// broadcast reaches in the first round. The last request may be cut
		// short by the deadline: it is not counted.
		out, _ := l.NS.ExecContext(cctx, from.Name, "ping", "-n", "-b", "-i", "0.5", "-w", "3", bcast.String())
		cancel()
		matches := rePingFrom.FindAllStringSubmatch(string(out), -1)
		requests = 1
		for _, m := range matches {
			if seq, _ := strconv.Atoi(m[2]); seq-1 > requests {
				requests = seq - 1
			}
		}
		for _, m := range matches {
			if seq, _ := strconv.Atoi(m[2]); seq > requests {
				continue
			}
			name, ok := byIP[m[1]]
			if !ok {
				others = append(others, m[1])
				continue
			}
			if name == from.Name {
				continue
			}
			key := name + "#" + m[2]
			if seen[key] {
				dups = append(dups, fmt.Sprintf("%s (request %s)", name, m[2]))
				continue
			}
			seen[key] = true
			answered[name]++
		}
		complete := true
		for _, w := range want {
			complete = complete && answered[w] > 0
		}
		if complete || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
	}
	var got, missing []string
	for _, w := range want {
		if answered[w] > 0 {
			got = append(got, fmt.Sprintf("%s (%d/%d)", w, answered[w], requests))
		} else {
			missing = append(missing, w)
		}
	}
	ok := len(missing) == 0 && len(others) == 0 && (allowDup || len(dups) == 0) && len(want) > 0
	c.Status = verdict(ok)
	c.Summary = fmt.Sprintf("ping -b %s: answered by %s", bcast, orDefault(strings.Join(got, ", "), "nobody"))
	if len(missing) > 0 {
		c.Details = append(c.Details, "no answer from "+strings.Join(missing, ", "))
	}
	if len(dups) > 0 {
		c.Details = append(c.Details, "answered twice (a loop?): "+strings.Join(dups, ", "))
	}
	if len(others) > 0 {
		c.Details = append(c.Details, "answers from addresses that are no VM's: "+strings.Join(others, ", "))
	}
	if len(want) == 0 {
		c.Status, c.Summary = statusSkip, "no other VM to answer"
	}
	c.Took = time.Since(start)
	return c
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
