package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/config"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/control"
)

// TestE2EReloadAllOrNothing is the two-hypervisors lab's case, as issue 11
// tells it: a reload that turns host isolation off and moves listen_port
// to a port another socket holds fails on the port, and host isolation is
// still on — in force and in `l2wg show`. Putting the old file back changes
// nothing; a reload of isolate_host alone then shows it off.
func TestE2EReloadAllOrNothing(t *testing.T) {
	t.Parallel()
	tp := newTopo(t)
	tp.addHV("hv1")
	tp.makeKeys()
	hv := tp.startL2WG("hv1", nil)
	bin := l2wgBinary(t)

	// Another l2wg in hv1 holds UDP port busyPort.
	const busyPort = 51999
	blocker, err := config.Marshal(&config.File{
		PrivateKeyFile: filepath.Base(hv.Keys.PrivateFile), ListenPort: config.Ptr(busyPort),
		TAP: config.FileTAP{Name: "l2wgb"},
	})
	tp.must(err)
	p, err := tp.lab.Start("hv1", bin, "up", "-c", writeFile(t, tp.dir, "blocker.toml", string(blocker)))
	tp.must(err)
	t.Cleanup(func() { p.Stop() })
	if !poll(15*time.Second, 50*time.Millisecond, func() bool {
		_, err := tp.lab.Exec("hv1", bin, "show", "-i", "l2wgb")
		return err == nil
	}) {
		t.Fatalf("the l2wg holding port %d does not answer", busyPort)
	}

	shown := func() (bool, int) {
		t.Helper()
		out, err := tp.lab.Exec("hv1", bin, "show", "--json", "-i", "l2wg0")
		if err != nil {
			t.Fatalf("l2wg show: %v: %s", err, out)
		}
		var st control.Status
		tp.must(json.Unmarshal(out, &st))
		return st.Interface.IsolateHost, st.Interface.ListenPort
	}
	reload := func(conf string) (string, error) {
		t.Helper()
		writeFile(t, tp.dir, "hv1.toml", conf)
		out, err := tp.lab.Exec("hv1", bin, "reload", "-i", "l2wg0")
		return string(out), err
	}
	orig := nodeConf{
		PrivateKeyFile: filepath.Base(hv.Keys.PrivateFile), ListenPort: l2wgPort, TAPName: "l2wg0", Bridge: "br0",
	}.render()
	portLine := fmt.Sprintf("listen_port = %d\n", l2wgPort)

	out, err := reload(strings.Replace(orig, portLine, fmt.Sprintf("listen_port = %d\nisolate_host = false\n", busyPort), 1))
	if err == nil || !strings.Contains(out, "listen_port") || !strings.Contains(out, "nothing changed") {
		t.Errorf("reload onto a busy port: err %v, output %q; want a failure on listen_port that changed nothing", err, out)
	}
	if iso, port := shown(); !iso || port != l2wgPort {
		t.Errorf("after the failed reload show says isolate_host %v, listen_port %d; want true, %d", iso, port, l2wgPort)
	}
	out, err = reload(orig)
	if err != nil || strings.TrimSpace(out) != "nothing changed" {
		t.Errorf("reload of the old file: err %v, output %q; want \"nothing changed\"", err, out)
	}
	out, err = reload(strings.Replace(orig, portLine, portLine+"isolate_host = false\n", 1))
	if err != nil || !strings.Contains(out, "isolate_host false") {
		t.Errorf("reload of isolate_host = false: err %v, output %q", err, out)
	}
	if iso, _ := shown(); iso {
		t.Error("show says isolate_host true after a reload turned it off")
	}
}
