package lab

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// roamTopology is a hub and a rover behind NAT, without a spanning tree
// (no loop), so it forwards at once.
const roamTopology = `
name = "roam"
[stp]
enabled = false
[[router]]
name = "inet"
[[router]]
name = "home"
nat = true
uplink = "inet"
[[site]]
name = "hub"
vms = ["vm1"]
[[site]]
name = "rover"
vms = ["vm2"]
[[link]]
a = "hub"
b = "inet"
delay = "1ms"
[[link]]
a = "home"
b = "inet"
[[link]]
a = "home"
b = "rover"
`

// TestBuildAPI drives a lab from Go, as the project's end-to-end tests can:
// Build, Converge, commands in the VMs, actions, checks, Down. The rover sits
// behind NAT, the hub has no endpoint for it; the rover roams to a new
// address and the traffic resumes without a change to the hub's config.
func TestBuildAPI(t *testing.T) {
	t.Parallel()
	needRoot(t, "nft")
	top, err := Parse("roam.toml", []byte(roamTopology))
	if err != nil {
		t.Fatal(err)
	}
	tl := newTestLab(t, "api")
	ctx := context.Background()
	l, err := Build(ctx, top, Options{L2WG: tl.bin, StateRoot: tl.root, Name: tl.name})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := l.Down(); err != nil {
			t.Error(err)
		}
	}()
	if l.STP {
		t.Errorf("STP = true; the topology turns it off")
	}
	if c := l.Converge(ctx, 30*time.Second); !c.OK {
		t.Fatalf("not converged: %s", c.Waiting)
	}
	vm1 := l.Plan.VM("vm1").Addr.Addr()
	ping := func(from string, to netip.Addr, wait time.Duration) bool {
		r := l.ping(ctx, from, to, time.Now().Add(wait))
		return r.received > 0
	}
	if !ping("vm2", vm1, 10*time.Second) {
		t.Fatal("vm2 (behind NAT) cannot ping vm1")
	}
	for _, c := range []Check{l.CheckPingMatrix(ctx, 10*time.Second), l.CheckBroadcast(ctx, 5*time.Second), l.CheckHypervisorsInvisible(ctx), l.CheckNAT(ctx)} {
		if c.Status != statusOK {
			t.Errorf("%s: %s: %s %v", c.Name, c.Status, c.Summary, c.Details)
		}
	}

	// Roam: new addresses for the rover and its NAT; the hub follows.
	hubConf := fileHash(l.ConfPath("hub"))
	before := l.snapshotRoam(ctx, "rover")
	did, err := l.DoString(ctx, "roam rover")
	if err != nil {
		t.Fatal(err)
	}
	t.Log(did)
	if !strings.Contains(did, "home/inet 10.0.2.1 -> 10.0.2.3") {
		t.Errorf("roam: %s; want home's public address to move from 10.0.2.1 to 10.0.2.3", did)
	}
	start := time.Now()
	if !ping("vm2", vm1, 15*time.Second) {
		t.Fatal("no traffic after roaming")
	}
	t.Logf("traffic resumed %s after the move", time.Since(start).Round(10*time.Millisecond))
	if c := l.checkRoamed(ctx, "rover", before); c.Status != statusOK {
		t.Errorf("roaming: %s %v", c.Summary, c.Details)
	}
	if fileHash(l.ConfPath("hub")) != hubConf {
		t.Error("the hub's node.toml changed")
	}
	// The hub can start the conversation too, now that it knows where the
	// rover is.
	if !ping("vm1", l.Plan.VM("vm2").Addr.Addr(), 10*time.Second) {
		t.Error("vm1 cannot ping vm2 after roaming")
	}

	// Cut the hub's access link: nothing passes; heal it: traffic resumes.
	if _, err := l.DoString(ctx, "cut hub inet"); err != nil {
		t.Fatal(err)
	}
	if r := l.ping(ctx, "vm2", vm1, time.Now()); r.received > 0 {
		t.Error("vm2 reaches vm1 through a cut link")
	}
	if _, err := l.DoString(ctx, "heal hub inet"); err != nil {
		t.Fatal(err)
	}
	if !ping("vm2", vm1, 15*time.Second) {
		t.Error("no traffic after healing the link")
	}
	// Stop and start the hub's l2wg.
	if _, err := l.DoString(ctx, "stop hub"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.DoString(ctx, "stop hub"); err == nil {
		t.Error("stopping a stopped site: no error")
	}
	if _, err := l.DoString(ctx, "start hub"); err != nil {
		t.Fatal(err)
	}
	// The restarted hub has no endpoint for the rover and cannot start a
	// handshake; the rover's WireGuard starts one when its data has gone
	// unanswered for 15 s (keepalive + rekey timeout).
	start = time.Now()
	if !ping("vm2", vm1, 40*time.Second) {
		t.Error("no traffic within 40s after restarting the hub")
	}
	t.Logf("traffic resumed %s after the hub restarted", time.Since(start).Round(100*time.Millisecond))
}
