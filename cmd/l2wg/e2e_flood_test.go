package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/l2wg/l2wg/frag"
	"github.com/l2wg/l2wg/tunnel"
)

// floodRSSBound is the peak RSS an l2wg must stay under whatever a peer
// sends (issue 14: 64 MiB through the whole bench).
const floodRSSBound = 64 << 20

// floodTime is how long the hostile peer floods.
const floodTime = 5 * time.Second

// TestE2EFloodMemoryBound: a configured peer turns hostile and floods l2wg,
// as fast as it can encrypt, with first fragments of 64 KiB frames that
// never complete and with 64-byte frames from ever new source MACs. The
// receiving l2wg's peak RSS (VmHWM) stays under the bound, the reassembly
// counts what it evicted, and the l2wg still answers.
//
// The hostile peer is a wireguard-go device in the test process, its UDP
// socket in a namespace of its own, cabled to the hypervisor's; it writes
// l2wg's inner packets (label header and chunk) itself.
func TestE2EFloodMemoryBound(t *testing.T) {
	tp := newTopo(t)
	// The flood goes through the peer's own switch port, whose state is
	// waited for: the spanning tree's (the mesh has one port for every peer).
	tp.mesh = "rstp"
	tp.addHV("hv1")
	tp.makeKeys()
	tp.must(tp.lab.AddNS("bad"))
	tp.underlay("hv1", "bad", "ul0", "10.0.0.1", "10.0.0.2")

	var badPriv [32]byte
	if _, err := rand.Read(badPriv[:]); err != nil {
		t.Fatal(err)
	}
	badPub := tunnel.PublicKey(badPriv)
	hv1Pub, err := base64.StdEncoding.DecodeString(tp.hvs["hv1"].Keys.Public)
	if err != nil || len(hv1Pub) != 32 {
		t.Fatalf("hv1's public key %q: %v", tp.hvs["hv1"].Keys.Public, err)
	}
	hv := tp.startL2WG("hv1", nil, peerConf{Name: "bad", PublicKey: base64.StdEncoding.EncodeToString(badPub[:])})

	ctun := tuntest.NewChannelTUN()
	dev := device.NewDevice(ctun.TUN(), conn.NewStdNetBind(), device.NewLogger(device.LogLevelError, "bad: "))
	t.Cleanup(dev.Close)
	go func() { // l2wg's probes and BPDUs to the hostile peer: read and drop
		for range ctun.Inbound {
		}
	}()
	src, dst := tunnel.LabelOf(badPub), tunnel.LabelOf([32]byte(hv1Pub))
	uapi := fmt.Sprintf("private_key=%s\nlisten_port=0\npublic_key=%s\nendpoint=10.0.0.1:%d\nallowed_ip=%s/32\n",
		hex.EncodeToString(badPriv[:]), hex.EncodeToString(hv1Pub), l2wgPort, dst)
	// The bind opens its sockets on Up, in the namespace of the thread.
	tp.must(tp.lab.Do("bad", func() error {
		if err := dev.IpcSet(uapi); err != nil {
			return err
		}
		return dev.Up()
	}))

	var sent [2]atomic.Uint64 // first fragments, small frames
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		floodPackets(ctun.Outbound, stop, src, dst, &sent)
	}()
	defer func() {
		close(stop)
		wg.Wait()
	}()

	// The flood starts the handshake; the peer's port forwards 8 s later
	// (short timers), and only then do its small frames reach the switch.
	var st showStatus
	var showErr error
	if !poll(30*time.Second, 200*time.Millisecond, func() bool {
		st, showErr = tp.show("hv1")
		return showErr == nil && portState(st, "bad") == "forwarding"
	}) {
		t.Fatalf("the hostile peer's port never forwards: state %q, %v", portState(st, "bad"), showErr)
	}
	before := st
	hwmBefore := vmHWM(t, hv.Proc.PID)
	sentBefore := [2]uint64{sent[0].Load(), sent[1].Load()}
	time.Sleep(floodTime) // the flood runs meanwhile: this is its length, not a wait for a state
	hwm := vmHWM(t, hv.Proc.PID)
	st, err = tp.show("hv1")
	tp.must(err)
	frags, small := sent[0].Load()-sentBefore[0], sent[1].Load()-sentBefore[1]

	r0, r1 := before.Reassembly, st.Reassembly
	rx := portRxFrames(st, "bad") - portRxFrames(before, "bad")
	t.Logf("in %v the hostile peer sent %d first fragments and %d 64-byte frames (%.0f packets/s); l2wg received %d fragments, evicted %d frames, timed out %d, holds %d bytes in %d frames; its port took %d frames; VmHWM %.1f MiB before the %v, %.1f MiB after (bound %d MiB)",
		floodTime, frags, small, float64(frags+small)/floodTime.Seconds(), r1.Fragments-r0.Fragments, r1.Evicted-r0.Evicted,
		r1.Timeouts-r0.Timeouts, r1.BytesHeld, r1.InProgress, rx, float64(hwmBefore)/(1<<20), floodTime, float64(hwm)/(1<<20), floodRSSBound>>20)

	if hwm > floodRSSBound {
		t.Errorf("l2wg's VmHWM after the flood is %.1f MiB; want at most %d MiB", float64(hwm)/(1<<20), floodRSSBound>>20)
	}
	got := r1.Fragments - r0.Fragments
	if got < 1000 {
		t.Fatalf("l2wg received %d fragments in %v of flood; the flood did not arrive", got, floodTime)
	}
	// Every first fragment starts a frame that never completes: all but what
	// the peer's cap holds must have been evicted (or timed out), counted.
	perPeerFrames := uint64(frag.DefaultMaxBytesPerPeer / frag.AccountedBytes(frag.MaxStreamLen))
	if dropped := (r1.Evicted - r0.Evicted) + (r1.Timeouts - r0.Timeouts); dropped+perPeerFrames+uint64(r0.InProgress) < got {
		t.Errorf("reassembly dropped %d incomplete frames of %d first fragments received (the peer's cap holds %d); want the rest counted", dropped, got, perPeerFrames)
	}
	if r1.BytesHeld > frag.DefaultMaxBytesPerPeer {
		t.Errorf("reassembly holds %d bytes for one peer; its cap is %d", r1.BytesHeld, frag.DefaultMaxBytesPerPeer)
	}
	if rx < 1000 {
		t.Errorf("the hostile peer's port took %d frames during the flood; want its 64-byte frames to arrive", rx)
	}
	tp.checkAlive()
}

// floodPackets writes inner packets to the hostile device's TUN until stop:
// alternately the first fragment of a new 64 KiB frame and a 64-byte frame
// from a new source MAC to an unknown unicast destination.
func floodPackets(out chan<- []byte, stop <-chan struct{}, src, dst tunnel.Label, sent *[2]atomic.Uint64) {
	const maxChunk = 1400 - 20 // inner MTU 1420 less the label header
	big := make([]byte, frag.MaxFrameLen)
	copy(big, []byte{0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x00})
	small := make([]byte, 64)
	copy(small, []byte{0x02, 0, 0, 0, 0, 0x03, 0x02, 0, 0, 0, 0, 0, 0x08, 0x00})
	sp := frag.NewSplitter()
	for i := uint32(0); ; i++ {
		frame, k := big, 0
		if i%2 == 1 {
			binary.BigEndian.PutUint32(small[8:], i) // a new source MAC each time
			frame, k = small, 1
		}
		c := sp.Split(nil, frame, maxChunk)
		p := make([]byte, 20+maxChunk) // the device copies it after the send
		n := c.Next(p[20:])
		putLabel(p, src, dst, 20+n)
		select {
		case <-stop:
			return
		case out <- p[:20+n]:
			sent[k].Add(1)
		}
	}
}

// putLabel writes the IPv4 label header l2wg puts before every chunk.
func putLabel(b []byte, src, dst tunnel.Label, total int) {
	b[0], b[1] = 0x45, 0
	binary.BigEndian.PutUint16(b[2:], uint16(total))
	b[8], b[9] = 64, 253
	copy(b[12:16], src[:])
	copy(b[16:20], dst[:])
}

func portState(st showStatus, name string) string {
	for _, p := range st.Ports {
		if p.Name == name {
			return p.State
		}
	}
	return ""
}

func portRxFrames(st showStatus, name string) uint64 {
	for _, p := range st.Ports {
		if p.Name == name {
			return p.RxFrames
		}
	}
	return 0
}

// vmHWM returns the peak RSS of process pid in bytes, from /proc/pid/status.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	return procStatusKB(t, pid, "VmHWM:")
}
