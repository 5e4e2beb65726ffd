package wgsock

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestRemoveStaleKeepsLiveSockets(t *testing.T) {
	Dir = t.TempDir()
	nsPath := filepath.Join(t.TempDir(), "ns") // any file stands for the namespace's bind mount
	if err := os.WriteFile(nsPath, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(nsPath, &st); err != nil {
		t.Fatal(err)
	}
	ns := Netns{Name: "lab-hv1", Inode: st.Ino}

	// A socket whose process died: the file stays, nobody answers.
	dead := Path(Names("l2wg0", ns)[0])
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: dead, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	// A live one for another TAP in the same namespace.
	live := Path(Names("l2wg1", ns)[0])
	ll, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer ll.Close()

	if n := RemoveStale("l2wg0", "lab-hv1", nsPath); n != 1 {
		t.Errorf("removed %d sockets, want 1", n)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("stale socket still there: %v", err)
	}
	if n := RemoveStale("l2wg1", "lab-hv1", nsPath); n != 0 {
		t.Errorf("removed %d live sockets", n)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("live socket removed: %v", err)
	}
}

func TestNames(t *testing.T) {
	for _, c := range []struct {
		ns   Netns
		want []string
	}{
		{Netns{Initial: true, Inode: 4026531840}, []string{"l2wg0", "l2wg0@net0"}},
		{Netns{Name: "vpn", Inode: 0xF0000000 + 412}, []string{"l2wg0@vpn", "l2wg0@net412"}},
		{Netns{Name: "a-very-long-name", Inode: 0xF0000000 + 412}, []string{"l2wg0@net412", "l2wg0@a-very-long-name"}},
	} {
		got := Names("l2wg0", c.ns)
		if len(got) != len(c.want) || got[0] != c.want[0] || got[1] != c.want[1] {
			t.Errorf("Names(%+v) = %q, want %q", c.ns, got, c.want)
		}
	}
}
