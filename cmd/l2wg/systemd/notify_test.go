package systemd

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestNotify(t *testing.T) {
	for _, abstract := range []bool{false, true} {
		t.Run(fmt.Sprintf("abstract=%v", abstract), func(t *testing.T) {
			addr := filepath.Join(t.TempDir(), "notify")
			if abstract {
				addr = fmt.Sprintf("@l2wg-notify-test/%d/%d", os.Getpid(), time.Now().UnixNano())
			}
			c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			t.Setenv("NOTIFY_SOCKET", addr)
			sent, err := Notify("READY=1\nSTATUS=switching")
			if !sent || err != nil {
				t.Fatalf("Notify: %v, %v", sent, err)
			}
			buf := make([]byte, 256)
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, err := c.Read(buf)
			if err != nil || string(buf[:n]) != "READY=1\nSTATUS=switching" {
				t.Fatalf("received %q, %v", buf[:n], err)
			}
		})
	}
}

func TestNotifyWithoutSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if sent, err := Notify("READY=1"); sent || err != nil {
		t.Fatalf("without NOTIFY_SOCKET: %v, %v; want nothing sent, no error", sent, err)
	}
	t.Setenv("NOTIFY_SOCKET", "vsock:2:1234")
	if _, err := Notify("READY=1"); err == nil {
		t.Fatal("NOTIFY_SOCKET vsock: no error; want one (not supported)")
	}
}
