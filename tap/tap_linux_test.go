package tap

import (
	"errors"
	"net"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// paths runs a subtest for the fast path and for the plain (water) path.
func paths(t *testing.T, fn func(t *testing.T, offload bool)) {
	for _, tc := range []struct {
		name    string
		offload bool
	}{
		{"offload", true},
		{"plain", false},
	} {
		t.Run(tc.name, func(t *testing.T) { fn(t, tc.offload) })
	}
}

func mustOpen(t *testing.T, cfg Config) *Device {
	t.Helper()
	d, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func macString(m [6]byte) string { return net.HardwareAddr(m[:]).String() }

func TestOpenSetsUpAndCloseRemoves(t *testing.T) {
	paths(t, func(t *testing.T, offload bool) {
		ns := newNetns(t)
		ns.enter(t)
		mac := [6]byte{0x02, 0x12, 0x34, 0x56, 0x78, 0x9a}
		d, err := Open(Config{Name: "l2wgt0", MTU: 1400, MAC: mac, Offload: offload})
		if err != nil {
			t.Fatal(err)
		}
		l := ns.link(t, "l2wgt0")
		if l == nil {
			t.Fatal("no link l2wgt0 after Open")
		}
		if l.MTU != 1400 || l.Address != macString(mac) || !l.up() || l.LinkInfo.Kind != "tun" {
			t.Errorf("link = mtu %d, address %s, flags %v, kind %q; want mtu 1400, %s, UP, tun",
				l.MTU, l.Address, l.Flags, l.LinkInfo.Kind, macString(mac))
		}
		if d.Name() != "l2wgt0" || d.MAC() != mac || d.MTU() != 1400 || d.Offload() != offload {
			t.Errorf("Name, MAC, MTU, Offload = %q, %s, %d, %t", d.Name(), macString(d.MAC()), d.MTU(), d.Offload())
		}
		wantBuf := 1400 + FrameOverhead
		if offload {
			wantBuf = MaxOffloadFrameLen
		}
		if d.BufLen() != wantBuf {
			t.Errorf("BufLen = %d, want %d", d.BufLen(), wantBuf)
		}
		if _, ok, err := d.BridgeMAC(); ok || err != nil {
			t.Errorf("BridgeMAC of a TAP in no bridge = %t, %v", ok, err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if ns.link(t, "l2wgt0") != nil {
			t.Error("l2wgt0 still there after Close")
		}
		if err := d.Close(); !errors.Is(err, os.ErrClosed) {
			t.Errorf("second Close = %v, want os.ErrClosed", err)
		}
	})
}

func TestOpenKeepsKernelMACAndDefaultMTU(t *testing.T) {
	ns := newNetns(t)
	ns.enter(t)
	d := mustOpen(t, Config{Name: "l2wgt0", Offload: true})
	l := ns.link(t, "l2wgt0")
	if l.MTU != DefaultMTU || l.Address != macString(d.MAC()) || d.MAC() == ([6]byte{}) {
		t.Errorf("link mtu %d, address %s; Device.MAC %s", l.MTU, l.Address, macString(d.MAC()))
	}
}

func TestOpenBusy(t *testing.T) {
	paths(t, func(t *testing.T, offload bool) {
		ns := newNetns(t)
		ns.enter(t)
		mustOpen(t, Config{Name: "l2wgt0", Offload: offload})
		_, err := Open(Config{Name: "l2wgt0", Offload: offload})
		if !errors.Is(err, unix.EBUSY) || err.Error() != `open tap "l2wgt0": device or resource busy` {
			t.Errorf("second Open = %v, want EBUSY", err)
		}
		if ns.link(t, "l2wgt0") == nil {
			t.Error("failed second Open removed the TAP")
		}
	})
}

func TestOpenNameTakenByOtherLink(t *testing.T) {
	ns := newNetns(t)
	ns.enter(t)
	ns.ip(t, "link", "add", "l2wgt0", "type", "bridge")
	_, err := Open(Config{Name: "l2wgt0", Offload: true})
	if err == nil || !strings.HasPrefix(err.Error(), `open tap "l2wgt0": `) {
		t.Errorf("Open over a bridge = %v, want an error", err)
	}
}

func TestPersistent(t *testing.T) {
	for _, tc := range []struct {
		name                string
		firstOff, secondOff bool
	}{
		{"offload then offload", true, true},
		{"plain then plain", false, false},
		{"offload then plain", true, false},
		{"plain then offload", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newNetns(t)
			ns.enter(t)
			mac := [6]byte{0x02, 0, 0, 0, 0, 0x42}
			d, err := Open(Config{Name: "l2wgp0", MTU: 9000, MAC: mac, Persistent: true, Offload: tc.firstOff})
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			l := ns.link(t, "l2wgp0")
			if l == nil || l.MTU != 9000 || l.Address != macString(mac) {
				t.Fatalf("persistent TAP after Close: %+v", l)
			}

			// Reuse: zero MAC keeps the address; MTU follows the config.
			d, err = Open(Config{Name: "l2wgp0", MTU: 1500, Persistent: true, Offload: tc.secondOff})
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			if d.MAC() != mac || d.MTU() != 1500 {
				t.Errorf("reopened: MAC %s, MTU %d; want %s, 1500", macString(d.MAC()), d.MTU(), macString(mac))
			}
			d.Close()
			if ns.link(t, "l2wgp0") == nil {
				t.Fatal("persistent TAP gone after the second Close")
			}

			// Persistent false clears the flag: the TAP goes with Close.
			d, err = Open(Config{Name: "l2wgp0", Offload: tc.secondOff})
			if err != nil {
				t.Fatalf("reopen non-persistent: %v", err)
			}
			d.Close()
			if ns.link(t, "l2wgp0") != nil {
				t.Error("TAP reopened without Persistent still there after Close")
			}
		})
	}
}

func TestBridge(t *testing.T) {
	paths(t, func(t *testing.T, offload bool) {
		ns := newNetns(t)
		ns.enter(t)
		ns.ip(t, "link", "add", "br0", "type", "bridge")
		ns.ip(t, "link", "add", "br1", "type", "bridge")
		ns.ip(t, "link", "add", "vth0", "type", "veth", "peer", "name", "vth1")

		d, err := Open(Config{Name: "l2wgb0", Bridge: "br0", Persistent: true, Offload: offload})
		if err != nil {
			t.Fatal(err)
		}
		if l := ns.link(t, "l2wgb0"); l.Master != "br0" || !l.up() {
			t.Errorf("master %q, flags %v; want br0, UP", l.Master, l.Flags)
		}
		brMAC, ok, err := d.BridgeMAC()
		if want := ns.link(t, "br0").Address; !ok || err != nil || macString(brMAC) != want {
			t.Errorf("BridgeMAC = %s, %t, %v; want %s", macString(brMAC), ok, err, want)
		}
		// Read afresh: the bridge takes a new address.
		ns.ip(t, "link", "set", "br0", "address", "02:00:00:00:0b:00")
		if brMAC, ok, _ := d.BridgeMAC(); !ok || macString(brMAC) != "02:00:00:00:0b:00" {
			t.Errorf("BridgeMAC after change = %s, %t", macString(brMAC), ok)
		}
		ns.ip(t, "link", "set", "l2wgb0", "nomaster")
		if _, ok, err := d.BridgeMAC(); ok || err != nil {
			t.Errorf("BridgeMAC after nomaster = %t, %v", ok, err)
		}
		ns.ip(t, "link", "set", "l2wgb0", "master", "br0")
		d.Close()

		// A reused TAP moves to the bridge of the new config.
		d = mustOpen(t, Config{Name: "l2wgb0", Bridge: "br1", Offload: offload})
		if l := ns.link(t, "l2wgb0"); l.Master != "br1" {
			t.Errorf("after reopen with br1: master %q", l.Master)
		}
		d.Close()

		for _, tc := range []struct {
			name, bridge, want string
		}{
			{"missing", "nobr0", `open tap "l2wgb1": attach to bridge "nobr0": no such bridge`},
			{"veth", "vth0", `open tap "l2wgb1": attach to bridge "vth0": not a bridge (a "veth" link)`},
		} {
			_, err := Open(Config{Name: "l2wgb1", Bridge: tc.bridge, Offload: offload})
			if err == nil || err.Error() != tc.want {
				t.Errorf("%s: Open = %v, want %s", tc.name, err, tc.want)
			}
			if ns.link(t, "l2wgb1") != nil {
				t.Errorf("%s: failed Open left l2wgb1 behind", tc.name)
			}
		}
	})
}
