package uapi

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/wgsock"
)

func TestUAPINames(t *testing.T) {
	cases := []struct {
		name string
		ns   wgsock.Netns
		want []string
	}{
		{"host namespace", wgsock.Netns{Initial: true, Inode: 4026531833}, []string{"l2wg0", "l2wg0@net4026531833"}},
		{"host namespace, inode unknown", wgsock.Netns{Initial: true}, []string{"l2wg0"}},
		{"named namespace", wgsock.Netns{Name: "vpn", Inode: 4026532252}, []string{"l2wg0@vpn", "l2wg0@net412"}},
		{"long name: the short form first", wgsock.Netns{Name: "l2wgt4711-1-hv1", Inode: 4026532252}, []string{"l2wg0@net412", "l2wg0@l2wgt4711-1-hv1"}},
		{"unnamed namespace", wgsock.Netns{Inode: 4026532252}, []string{"l2wg0@net412"}},
		{"name too long for a socket path", wgsock.Netns{Name: strings.Repeat("n", 100), Inode: 0xF0000007}, []string{"l2wg0@net7"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := wgsock.Names("l2wg0", c.ns); !slices.Equal(got, c.want) {
				t.Errorf("wgsock.Names = %q; want %q", got, c.want)
			}
		})
	}
}

// withUAPIDir points wgsock.Dir at a temporary directory for one test.
func withUAPIDir(t *testing.T) string {
	t.Helper()
	// Short: a unix socket path holds 107 bytes.
	dir, err := os.MkdirTemp("", "uapi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	old := wgsock.Dir
	wgsock.Dir = dir
	t.Cleanup(func() { wgsock.Dir = old })
	return dir
}

func TestListenUAPINeverTakesOver(t *testing.T) {
	withUAPIDir(t)
	log := slog.New(slog.DiscardHandler)

	// A live process holds l2wg0: the next name is used.
	live, err := net.Listen("unix", wgsock.Path("l2wg0"))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	u, err := listen([]string{"l2wg0", "l2wg0@net7"}, log)
	if err != nil {
		t.Fatal(err)
	}
	if u.name != "l2wg0@net7" {
		t.Fatalf("with l2wg0 live, listen took %q; want l2wg0@net7", u.name)
	}
	if st, err := os.Stat(u.path); err != nil || st.Mode().Perm() != 0o600 || st.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket %s: %v, %v; want a socket with mode 0600", u.path, st.Mode(), err)
	}
	if _, err := listen([]string{"l2wg0", "l2wg0@net7"}, log); err == nil || !strings.Contains(err.Error(), errInUse.Error()) {
		t.Fatalf("every name live: %v; want an error saying in use", err)
	}
	u.Close()
	if _, err := os.Stat(u.path); !os.IsNotExist(err) {
		t.Fatalf("after close, %s: %v; want it removed", u.path, err)
	}
	if _, err := os.Stat(wgsock.Path("l2wg0")); err != nil {
		t.Fatalf("the live process's socket was touched: %v", err)
	}
}

func TestListenUAPIReplacesStaleAndRemovesOnlyItsOwn(t *testing.T) {
	withUAPIDir(t)
	log := slog.New(slog.DiscardHandler)

	// A stale socket: the file exists, nobody listens.
	stale, err := net.Listen("unix", wgsock.Path("l2wg0"))
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	u, err := listen([]string{"l2wg0"}, log)
	if err != nil || u.name != "l2wg0" {
		t.Fatalf("over a stale socket: %v, %v; want l2wg0 taken", u, err)
	}
	c, err := net.Dial("unix", u.path)
	if err != nil {
		t.Fatalf("dial the new socket: %v", err)
	}
	c.Close()

	// Someone replaces the file meanwhile: close leaves theirs alone.
	os.Remove(u.path)
	other, err := net.Listen("unix", u.path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	u.Close()
	if _, err := os.Stat(u.path); err != nil {
		t.Fatalf("close removed a socket that was not its own: %v", err)
	}
}

func TestCurrentNetns(t *testing.T) {
	ns, err := CurrentNetns()
	if err != nil {
		t.Skipf("no /proc/self/ns/net here: %v", err)
	}
	var want uint64
	if link, err := os.Readlink("/proc/self/ns/net"); err == nil {
		fmt.Sscanf(link, "net:[%d]", &want)
	}
	if ns.Inode != want {
		t.Errorf("inode %d; want %d (from /proc/self/ns/net)", ns.Inode, want)
	}
}
