package lab

import (
	"context"
	"fmt"
	"math/rand"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/netns"
)

// Measurements of issue 13's "How it is shown": first frame after the
// handshake, restart with a persistent TAP, failover of every site and
// peering, churn, and a high-availability pair. They take the lab as
// built, whatever protocol its sites run (Plan.MeshProtocol), and return
// numbers; the bounds are the tests' business (meshlab_root_test.go).
// Every stream is a ping -D in a VM namespace: the replies' timestamps are
// the kernel's clock, the same in every namespace and the same clock as
// the WireGuard handshake times that l2wg show reports.

// A reply is one line of a ping -D stream.
type reply struct {
	at   time.Time
	from string
	seq  int
	rtt  time.Duration // the round trip ping printed (time=…); 0 if none
	dup  bool          // ping marked it (DUP!): a second reply to one request from one address
}

var reRTT = regexp.MustCompile(`time=(\d+(?:\.\d+)?) ms`)

// gapBetween is the part of the time between replies a and b that the
// network answers for. When b answers the request right after a's (no
// request lost between them), the network held that request only for b's
// round trip: for the rest of the time the pinger did not send. A ping
// starved of CPU is not an outage: under load (#13 test 5) streams showed
// 378 ms and 735 ms between replies to icmp_seq 162 and 163, 224 and 225,
// each with a round trip under 1 ms, seconds after the real failover gap
// (300 ms, 15 requests lost), and were taken for it.
func gapBetween(a, b reply) time.Duration {
	gap := b.at.Sub(a.at)
	if b.seq == a.seq+1 && b.from == a.from && b.rtt > 0 {
		return min(gap, b.rtt)
	}
	return gap
}

var reReply = regexp.MustCompile(`(?m)^\[(\d+\.\d+)\] \d+ bytes from ([\d.]+): icmp_seq=(\d+)([^\n]*)$`)

// parseReplies reads the reply lines of ping -D output.
func parseReplies(out string) []reply {
	var rs []reply
	for _, m := range reReply.FindAllStringSubmatch(out, -1) {
		f, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			continue
		}
		seq, _ := strconv.Atoi(m[3])
		var rtt time.Duration
		if t := reRTT.FindStringSubmatch(m[4]); t != nil {
			ms, _ := strconv.ParseFloat(t[1], 64)
			rtt = time.Duration(ms * float64(time.Millisecond))
		}
		rs = append(rs, reply{at: time.Unix(0, int64(f*1e9)), from: m[2], seq: seq, rtt: rtt, dup: strings.Contains(m[4], "DUP!")})
	}
	return rs
}

// LongestGap is the longest time without a reply in [from, end): from
// from to the first reply after it, between two replies (as gapBetween
// counts it), and from the last to end.
func LongestGap(rs []reply, from, end time.Time) time.Duration {
	var prev *reply
	gap := time.Duration(0)
	for i := range rs {
		r := &rs[i]
		if !r.at.After(from) || !r.at.Before(end) {
			continue
		}
		if prev == nil {
			gap = r.at.Sub(from)
		} else {
			gap = max(gap, gapBetween(*prev, *r))
		}
		prev = r
	}
	if prev == nil {
		return end.Sub(from)
	}
	return max(gap, end.Sub(prev.at))
}

// LongestLoss is the longest time in [from, end) during which no request
// sent got an answer: between the instants two consecutively answered
// requests were sent (a reply's time less its round trip), from from to
// the first answered request sent after it, and from the last to end. It
// is the network's convergence time as a loss-based measure takes it
// (lost requests x interval): unlike LongestGap it leaves out the round
// trip of the path traffic moved to, which the failure did not cause (a
// 22 ms peering that fails over to a 180 ms detour adds 160 ms to the
// gap between replies, not to the loss).
func LongestLoss(rs []reply, from, end time.Time) time.Duration {
	last := from
	loss := time.Duration(0)
	seen := make(map[int]bool, len(rs))
	for _, r := range rs {
		if r.dup || seen[r.seq] {
			continue
		}
		seen[r.seq] = true
		sent := r.at.Add(-r.rtt)
		if !sent.After(last) || !sent.Before(end) {
			continue
		}
		loss = max(loss, sent.Sub(last))
		last = sent
	}
	return max(loss, end.Sub(last))
}

// duplicates counts the second and later replies from one address to one
// request. For a unicast stream that is ping's DUP!; for a broadcast one,
// where every VM answers each request, it is per address.
func duplicates(rs []reply) int {
	seen := make(map[string]bool)
	n := 0
	for _, r := range rs {
		k := r.from + "#" + strconv.Itoa(r.seq)
		if seen[k] {
			n++
		}
		seen[k] = true
	}
	return n
}

// A stream is a ping -D running in a VM.
type stream struct {
	From, To string // VM names; To is "broadcast" for ping -b
	p        *netns.Proc
}

func (s *stream) replies() []reply { return parseReplies(s.p.Log()) }

// startStream pings dst from VM from every interval for d.
func (l *Lab) startStream(from, to string, interval, d time.Duration) (*stream, error) {
	argv := []string{"ping", "-D", "-n", "-i", strconv.FormatFloat(interval.Seconds(), 'f', 3, 64), "-W", "1",
		"-w", strconv.Itoa(int(d/time.Second) + 1)}
	dst := ""
	if to == "broadcast" {
		argv = append(argv, "-b")
		dst = hostN(l.Plan.Topo.vmSubnet, 1<<(32-l.Plan.Topo.vmSubnet.Bits())-1).String()
	} else {
		v := l.Plan.VM(to)
		if v == nil {
			return nil, fmt.Errorf("no VM %s", to)
		}
		dst = v.Addr.Addr().String()
	}
	p, err := l.NS.Start(from, append(argv, dst)...)
	if err != nil {
		return nil, err
	}
	return &stream{From: from, To: to, p: p}, nil
}

// streams starts a stream for every pair and stops them all on error.
func (l *Lab) streams(pairs [][2]string, interval, d time.Duration) ([]*stream, error) {
	var ss []*stream
	for _, pr := range pairs {
		s, err := l.startStream(pr[0], pr[1], interval, d)
		if err != nil {
			stopStreams(ss)
			return nil, err
		}
		ss = append(ss, s)
	}
	return ss, nil
}

func stopStreams(ss []*stream) {
	for _, s := range ss {
		s.p.Stop()
	}
}

// waitFlowing waits until every stream has had n replies.
func waitFlowing(ss []*stream, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var slow []string
		for _, s := range ss {
			if len(s.replies()) < n {
				slow = append(slow, s.From+">"+s.To)
			}
		}
		if len(slow) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("streams without %d replies after %s: %s", n, timeout, strings.Join(slow, ", "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// firstVM returns the first VM of a site.
func (l *Lab) firstVM(site string) string {
	n := l.Plan.Node(site)
	if n == nil || len(n.VMs) == 0 {
		return ""
	}
	return n.VMs[0].Name
}

// StartAll starts every site's l2wg of a lab built with Options.Hold.
func (l *Lab) StartAll(ctx context.Context) error { return l.startAllSites(ctx, false) }

// FirstFrame is, for one peering, the time from its first WireGuard
// handshake (the earlier of the two ends' first: an end that answered a
// handshake counts it only once data arrives, and a second handshake of
// initiations that crossed replaces the first in l2wg show) to the first
// reply of a
// 20 ms ping stream between a VM of each site that ran from before the
// sites started.
type FirstFrame struct {
	A, B      string // sites
	Handshake time.Time
	Reply     time.Time
	After     time.Duration // Reply - Handshake
	Err       string
}

// MeasureFirstFrames starts one stream per peering, starts every site
// (the lab must be built with Options.Hold), watches l2wg show for each
// peering's first handshake and returns, once every stream has a reply or
// timeout passed, the first frame of each peering.
func (l *Lab) MeasureFirstFrames(ctx context.Context, timeout time.Duration) ([]FirstFrame, error) {
	var pairs [][2]string
	for _, pe := range l.Plan.Peerings {
		a, b := l.firstVM(pe.A.Name), l.firstVM(pe.B.Name)
		if a == "" || b == "" {
			continue
		}
		pairs = append(pairs, [2]string{a, b})
	}
	// Static neighbour entries, both ways: ping gives up after a few
	// seconds of failed ARP, and the measure is the first frame, not ARP's
	// retries (an ARP exchange lost while the mesh converges is retried
	// by the VM's kernel only a second later).
	for _, pr := range pairs {
		for _, d := range [][2]string{pr, {pr[1], pr[0]}} {
			mac, err := l.NS.MAC(d[1], "eth0")
			if err != nil {
				return nil, err
			}
			dst := l.Plan.VM(d[1]).Addr.Addr().String()
			if out, err := l.NS.IP(d[0], "neigh", "replace", dst, "lladdr", mac.String(), "dev", "eth0", "nud", "permanent"); err != nil {
				return nil, fmt.Errorf("neighbour %s in %s: %v: %s", dst, d[0], err, out)
			}
			defer l.NS.IP(d[0], "neigh", "del", dst, "dev", "eth0")
		}
	}
	ss, err := l.streams(pairs, 20*time.Millisecond, timeout+5*time.Second)
	if err != nil {
		return nil, err
	}
	defer stopStreams(ss)
	// Watch the handshakes from before the first start: a second handshake
	// (two initiations that crossed) replaces the first in l2wg show.
	first := make(map[[2]string]time.Time) // (site, peer) -> first handshake seen
	var mu sync.Mutex
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			all, _ := l.statuses(ctx, l.runningSites())
			mu.Lock()
			for site, st := range all {
				for _, p := range st.Peers {
					k := [2]string{site, p.Name}
					if _, ok := first[k]; !ok && p.LatestHandshake != nil {
						first[k] = *p.LatestHandshake
					}
				}
			}
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	err = l.StartAll(ctx)
	deadline := time.Now().Add(timeout)
	for err == nil {
		mu.Lock()
		done := true
		for _, s := range ss {
			done = done && len(s.replies()) > 0
		}
		for _, pe := range l.Plan.Peerings {
			_, ok1 := first[[2]string{pe.A.Name, pe.B.Name}]
			_, ok2 := first[[2]string{pe.B.Name, pe.A.Name}]
			done = done && ok1 && ok2
		}
		mu.Unlock()
		if done || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	<-watched
	if err != nil {
		return nil, err
	}
	var out []FirstFrame
	i := 0
	for _, pe := range l.Plan.Peerings {
		if l.firstVM(pe.A.Name) == "" || l.firstVM(pe.B.Name) == "" {
			continue
		}
		s := ss[i]
		i++
		f := FirstFrame{A: pe.A.Name, B: pe.B.Name}
		h1, ok1 := first[[2]string{pe.A.Name, pe.B.Name}]
		h2, ok2 := first[[2]string{pe.B.Name, pe.A.Name}]
		rs := s.replies()
		switch {
		case !ok1 || !ok2:
			f.Err = "no handshake seen at both ends"
		case len(rs) == 0:
			f.Err = fmt.Sprintf("no reply within %s: %s", timeout, strings.ReplaceAll(tail(s.p.Log(), 3), "\n", " | "))
		}
		if ok1 && ok2 {
			f.Handshake = h1
			if h2.Before(h1) {
				f.Handshake = h2
			}
		}
		if len(rs) > 0 {
			f.Reply = rs[0].at
		}
		if f.Err == "" {
			f.After = f.Reply.Sub(f.Handshake)
			if f.After < 0 {
				f.Err = fmt.Sprintf("the first reply came %v before the first handshake seen: a later handshake replaced the first before it was read", -f.After)
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// MeasureRestart stops site's l2wg (SIGTERM; its TAP stays with
// [l2wg] persistent_tap), starts it again and returns the time from the
// start to the first reply of a 10 ms stream from a VM at peer to a VM at
// site.
func (l *Lab) MeasureRestart(ctx context.Context, site, peer string, timeout time.Duration) (time.Duration, error) {
	from, to := l.firstVM(peer), l.firstVM(site)
	s, err := l.startStream(from, to, 10*time.Millisecond, timeout+10*time.Second)
	if err != nil {
		return 0, err
	}
	defer s.p.Stop()
	if err := waitFlowing([]*stream{s}, 20, 20*time.Second); err != nil {
		return 0, err
	}
	if err := l.stopSite(site); err != nil {
		return 0, err
	}
	time.Sleep(time.Second) // the stream sees the outage: nothing comes back from a stopped site
	started := time.Now()
	if err := l.startSite(ctx, site, false); err != nil {
		return 0, err
	}
	deadline := started.Add(timeout)
	for {
		for _, r := range s.replies() {
			if r.at.After(started) {
				return r.at.Sub(started), nil
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no reply from %s within %s of its start", to, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// vmPairs returns every unordered pair of VMs at different sites.
func (l *Lab) vmPairs() [][2]string {
	var pairs [][2]string
	for i, a := range l.Plan.VMs {
		for _, b := range l.Plan.VMs[i+1:] {
			if a.Site != b.Site {
				pairs = append(pairs, [2]string{a.Name, b.Name})
			}
		}
	}
	return pairs
}

// joinedWithout returns whether sites a and b are joined by the active
// peerings (and shared LANs) without the sites in dead.
func (l *Lab) joinedWithout(dead []string) func(a, b string) bool {
	joined := make(sets)
	for _, pe := range l.activePeerings() {
		if !contains(dead, pe.A.Name) && !contains(dead, pe.B.Name) {
			joined.union(pe.A.Name, pe.B.Name)
		}
	}
	for _, lan := range l.Plan.LANs {
		for _, s := range lan.Sites[1:] {
			joined.union(lan.Sites[0].Name, s.Name)
		}
	}
	return func(a, b string) bool {
		return !contains(dead, a) && !contains(dead, b) && joined.find(a) == joined.find(b)
	}
}

// A Failure is one failover experiment: kill -9 of a site or a cut of a
// peering, and its repair.
type Failure struct {
	Event  string // "kill b", "cut a b"
	Repair string // "start b", "heal a b"
	// Gaps are, per pair that kept a path, the longest gap from the
	// failure to the repair; RepairGaps the longest from the repair to the
	// end of the stream, for the same pairs. Losses are the longest
	// losses (LongestLoss) from the failure to the repair.
	Gaps, RepairGaps, Losses map[string]time.Duration
	// Cut are the pairs without a path during the failure.
	Cut []string
	// Paths is the pair matrix once the lab has converged after the
	// repair: every pair on a shortest path again.
	Paths Check
}

// Max returns the longest gap in gaps.
func Max(gaps map[string]time.Duration) (string, time.Duration) {
	var k string
	var d time.Duration
	for _, p := range sortedKeys(gaps) {
		if gaps[p] > d {
			k, d = p, gaps[p]
		}
	}
	return k, d
}

// MeasureFailure runs 10 ms streams between every two VMs at different
// sites, carries out event ("kill S" with SIGKILL, or "cut A B") once they
// flow, repairs it window later ("start S", "heal A B") and lets the
// streams run another window; then waits for convergence and measures the
// pair matrix (judged against the shortest paths when paths is set).
func (l *Lab) MeasureFailure(ctx context.Context, event string, window time.Duration, paths bool) (Failure, error) {
	f := Failure{Event: event, Gaps: map[string]time.Duration{}, RepairGaps: map[string]time.Duration{}, Losses: map[string]time.Duration{}}
	verb, rest, _ := strings.Cut(event, " ")
	var dead []string
	switch verb {
	case "kill":
		f.Repair = "start " + rest
		dead = []string{rest}
	case "cut":
		f.Repair = "heal " + rest
	default:
		return f, fmt.Errorf("failure %q: want kill S or cut A B", event)
	}
	pairs := l.vmPairs()
	ss, err := l.streams(pairs, 10*time.Millisecond, 2*window+3*time.Second)
	if err != nil {
		return f, err
	}
	defer stopStreams(ss)
	if err := waitFlowing(ss, 50, 20*time.Second); err != nil {
		return f, fmt.Errorf("before %s: %w", event, err)
	}
	var at time.Time
	if verb == "kill" {
		at, err = l.KillSite(rest)
	} else {
		at = time.Now()
		_, err = l.DoString(ctx, event)
	}
	if err != nil {
		return f, err
	}
	joined := l.joinedWithout(dead)
	time.Sleep(time.Until(at.Add(window)))
	repaired := time.Now()
	if _, err := l.DoString(ctx, f.Repair); err != nil {
		return f, err
	}
	time.Sleep(time.Until(repaired.Add(window)))
	end := time.Now()
	for i, pr := range pairs {
		name := pr[0] + "-" + pr[1]
		rs := ss[i].replies()
		if !joined(l.Plan.VM(pr[0]).Site.Name, l.Plan.VM(pr[1]).Site.Name) {
			f.Cut = append(f.Cut, name)
			continue
		}
		f.Gaps[name] = LongestGap(rs, at, repaired)
		f.Losses[name] = LongestLoss(rs, at, repaired)
		f.RepairGaps[name] = LongestGap(rs, repaired, end)
	}
	if c := l.Converge(ctx, time.Minute); !c.OK {
		return f, fmt.Errorf("after %s: not converged: %s", f.Repair, c.Waiting)
	}
	f.Paths = l.CheckShortestPaths(ctx, paths)
	return f, nil
}

// Failures lists the failover experiments of a lab: kill -9 of every site,
// then a cut of every peering.
func (l *Lab) Failures() []string {
	var ev []string
	for _, n := range l.Plan.Sites() {
		ev = append(ev, "kill "+n.Name)
	}
	for _, pe := range l.Plan.Peerings {
		ev = append(ev, "cut "+pe.A.Name+" "+pe.B.Name)
	}
	return ev
}

// ChurnResult is what a churn run saw.
type ChurnResult struct {
	Seed    int64
	Actions []string // "+1.2s cut a b"
	// UnicastDups and BroadcastDups count duplicate ICMP replies.
	UnicastDups, BroadcastDups int
	Replies                    int
	// End is the ping matrix and broadcast after everything was repaired.
	End []Check
	// HopLimitZero counts the frames that arrived at a mesh port with an
	// exhausted hop limit (dropped there, never delivered to a TAP), and
	// HopLimit those whose hop limit ran out on the way (a transient
	// loop ended), summed over every l2wg process of the run: each site's
	// counters are read just before it is killed and at the end.
	// Unsampled names the processes whose counters could not be read.
	HopLimitZero, HopLimit uint64
	Unsampled              []string
}

// addMeshDrops adds a site's hop-limit counters to res.
func (res *ChurnResult) addMeshDrops(st *SiteStatus) {
	if st.Mesh != nil {
		res.HopLimitZero += st.Mesh.Stats.FrameDrops["hop-limit-zero"]
		res.HopLimit += st.Mesh.Stats.FrameDrops["hop-limit"]
	}
}

// Churn cuts and heals peerings and kills (SIGKILL) and restarts sites at
// random, seeded, for d, with 50 ms unicast streams between every two VMs
// at different sites and a broadcast stream from the first VM; then heals
// and starts everything, waits for convergence and checks that every pair
// answers. logf gets every action.
func (l *Lab) Churn(ctx context.Context, seed int64, d time.Duration, logf func(string, ...any)) (ChurnResult, error) {
	res := ChurnResult{Seed: seed}
	rng := rand.New(rand.NewSource(seed))
	pairs := l.vmPairs()
	ss, err := l.streams(pairs, 50*time.Millisecond, d+5*time.Second)
	if err != nil {
		return res, err
	}
	bs, err := l.startStream(l.Plan.VMs[0].Name, "broadcast", 200*time.Millisecond, d+5*time.Second)
	if err != nil {
		stopStreams(ss)
		return res, err
	}
	ss = append(ss, bs)
	defer stopStreams(ss)
	if err := waitFlowing(ss[:len(pairs)], 5, 20*time.Second); err != nil {
		return res, err
	}
	start := time.Now()
	var killed, cut []string
	sites := l.Plan.Sites()
	for time.Since(start) < d && ctx.Err() == nil {
		time.Sleep(time.Duration(300+rng.Intn(1700)) * time.Millisecond)
		var choices []string
		for _, pe := range l.Plan.Peerings {
			k := pe.A.Name + " " + pe.B.Name
			if contains(cut, k) {
				choices = append(choices, "heal "+k)
			} else {
				choices = append(choices, "cut "+k)
			}
		}
		for _, n := range sites {
			if contains(killed, n.Name) {
				choices = append(choices, "start "+n.Name)
			} else if len(killed) < len(sites)-2 {
				choices = append(choices, "kill "+n.Name)
			}
		}
		a := choices[rng.Intn(len(choices))]
		verb, rest, _ := strings.Cut(a, " ")
		switch verb {
		case "kill":
			if st, serr := l.Status(ctx, rest); serr == nil {
				res.addMeshDrops(st)
			} else {
				res.Unsampled = append(res.Unsampled, fmt.Sprintf("%s before its kill at +%.1fs: %v", rest, time.Since(start).Seconds(), serr))
			}
			_, err = l.KillSite(rest)
			killed = append(killed, rest)
		case "start":
			_, err = l.DoString(ctx, a)
			killed = remove(killed, rest)
		case "cut":
			_, err = l.DoString(ctx, a)
			cut = append(cut, rest)
		case "heal":
			_, err = l.DoString(ctx, a)
			cut = remove(cut, rest)
		}
		line := fmt.Sprintf("+%.1fs %s", time.Since(start).Seconds(), a)
		res.Actions = append(res.Actions, line)
		logf("churn %s", line)
		if err != nil {
			return res, fmt.Errorf("churn %s: %w", line, err)
		}
	}
	for _, k := range cut {
		if _, err := l.DoString(ctx, "heal "+k); err != nil {
			return res, err
		}
	}
	for _, s := range killed {
		if _, err := l.DoString(ctx, "start "+s); err != nil {
			return res, err
		}
	}
	stopStreams(ss)
	for _, s := range ss[:len(pairs)] {
		rs := s.replies()
		res.Replies += len(rs)
		for _, r := range rs {
			if r.dup {
				res.UnicastDups++
			}
		}
	}
	res.BroadcastDups = duplicates(bs.replies())
	if c := l.Converge(ctx, 90*time.Second); !c.OK {
		return res, fmt.Errorf("after the churn: not converged: %s", c.Waiting)
	}
	res.End = []Check{l.CheckPingMatrix(ctx, 30*time.Second), l.CheckBroadcast(ctx, 10*time.Second)}
	var names []string
	for _, n := range sites {
		names = append(names, n.Name)
	}
	all, err := l.statuses(ctx, names)
	for _, n := range names {
		if st := all[n]; st != nil {
			res.addMeshDrops(st)
		} else {
			res.Unsampled = append(res.Unsampled, n+" at the end")
		}
	}
	if err != nil {
		res.Unsampled = append(res.Unsampled, err.Error())
	}
	return res, nil
}

// tapFrames returns the frames through each site's TAP port.
func (l *Lab) tapFrames(ctx context.Context, sites []string) (map[string]uint64, error) {
	all, err := l.statuses(ctx, sites)
	if err != nil {
		return nil, err
	}
	out := make(map[string]uint64)
	for _, s := range sites {
		for _, p := range all[s].Ports {
			if p.Name == tapName {
				out[s] = p.RxFrames + p.TxFrames
			}
		}
	}
	return out, nil
}

// Forwarder finds which of the sites of a shared LAN passes frames between
// it and the mesh: it runs 200 pings from VM from (outside the LAN) to VM
// to (on it) and returns the sites whose TAP port carried at least half of
// them, with each site's count.
func (l *Lab) Forwarder(ctx context.Context, lan []string, from, to string) ([]string, map[string]uint64, error) {
	before, err := l.tapFrames(ctx, lan)
	if err != nil {
		return nil, nil, err
	}
	dst := l.Plan.VM(to).Addr.Addr().String()
	if out, err := l.NS.ExecContext(ctx, from, "ping", "-n", "-q", "-c", "200", "-i", "0.005", "-W", "1", dst); err != nil {
		return nil, nil, fmt.Errorf("ping %s from %s: %v: %s", to, from, err, tail(string(out), 2))
	}
	after, err := l.tapFrames(ctx, lan)
	if err != nil {
		return nil, nil, err
	}
	var fwd []string
	delta := make(map[string]uint64)
	for _, s := range lan {
		delta[s] = after[s] - before[s]
		if delta[s] >= 200 { // 200 requests and 200 replies cross the forwarder's TAP
			fwd = append(fwd, s)
		}
	}
	return fwd, delta, nil
}

// HAResult is what the high-availability experiment saw.
type HAResult struct {
	Forwarder, After string // the forwarder before and after the restart
	Counts           map[string]uint64
	// KillGap is the longest gap of the streams into the LAN from the
	// kill of the forwarder; RestartGap from its restart.
	KillGap, RestartGap time.Duration
	// Dups counts duplicate replies to the broadcast and unicast streams
	// over the whole experiment.
	Dups int
	// Log holds the LAN sites' forwarder log lines ("mesh: appointed
	// forwarder", "mesh: LAN heard", ...) from the restart on: why the
	// forwarder after the restart is the one it is.
	Log []string
}

// MeasureHA finds the forwarder of the LAN of lan's sites, runs 10 ms
// streams from VM from to every VM on the LAN and a 100 ms broadcast
// stream from VM from, kills -9 the forwarder, starts it again window
// later and lets the streams run another restartWindow.
func (l *Lab) MeasureHA(ctx context.Context, lan []string, from string, window, restartWindow time.Duration) (HAResult, error) {
	var res HAResult
	var onLAN []string
	for _, s := range lan {
		onLAN = append(onLAN, l.firstVM(s))
	}
	fwd, counts, err := l.Forwarder(ctx, lan, from, onLAN[0])
	res.Counts = counts
	if err != nil {
		return res, err
	}
	if len(fwd) != 1 {
		return res, fmt.Errorf("forwarders of the LAN %v: %v (TAP frames %v); want exactly one", lan, fwd, counts)
	}
	res.Forwarder = fwd[0]
	var pairs [][2]string
	for _, v := range onLAN {
		pairs = append(pairs, [2]string{from, v})
	}
	total := window + restartWindow + 3*time.Second
	ss, err := l.streams(pairs, 10*time.Millisecond, total)
	if err != nil {
		return res, err
	}
	defer stopStreams(ss)
	bs, err := l.startStream(from, "broadcast", 100*time.Millisecond, total)
	if err != nil {
		return res, err
	}
	defer bs.p.Stop()
	if err := waitFlowing(ss, 50, 20*time.Second); err != nil {
		return res, err
	}
	killed, err := l.KillSite(res.Forwarder)
	if err != nil {
		return res, err
	}
	time.Sleep(time.Until(killed.Add(window)))
	marks := make(map[string]int)
	for _, s := range lan {
		marks[s] = len(readFile(l.LogPath(s)))
	}
	restarted := time.Now()
	if _, err := l.DoString(ctx, "start "+res.Forwarder); err != nil {
		return res, err
	}
	time.Sleep(time.Until(restarted.Add(restartWindow)))
	end := time.Now()
	for _, s := range lan {
		res.Log = append(res.Log, forwarderLines(s, readFile(l.LogPath(s)), marks[s])...)
	}
	for _, s := range ss {
		rs := s.replies()
		res.KillGap = max(res.KillGap, LongestGap(rs, killed, restarted))
		res.RestartGap = max(res.RestartGap, LongestGap(rs, restarted, end))
		res.Dups += duplicates(rs)
	}
	res.Dups += duplicates(bs.replies())
	if c := l.Converge(ctx, time.Minute); !c.OK {
		return res, fmt.Errorf("after the restart: not converged: %s", c.Waiting)
	}
	fwd, counts, err = l.Forwarder(ctx, lan, from, onLAN[0])
	res.Counts = counts
	if err != nil {
		return res, err
	}
	if len(fwd) != 1 {
		return res, fmt.Errorf("after the restart, forwarders of the LAN: %v (TAP frames %v); want exactly one", fwd, counts)
	}
	res.After = fwd[0]
	return res, nil
}

// forwarderLines returns the appointed-forwarder lines of site's log text
// after byte offset from, each prefixed with the site.
func forwarderLines(site, text string, from int) []string {
	if from > len(text) {
		from = 0 // the log was truncated: all of it is new
	}
	var out []string
	for _, line := range strings.Split(text[from:], "\n") {
		if strings.Contains(line, `msg="mesh: appointed forwarder"`) || strings.Contains(line, `msg="mesh: no longer the appointed forwarder"`) ||
			strings.Contains(line, `msg="mesh: LAN heard"`) {
			out = append(out, site+": "+line)
		}
	}
	return out
}
