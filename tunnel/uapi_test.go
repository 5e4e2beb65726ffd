package tunnel

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// uapiExchange sends one request and reads the answer up to and including
// its "errno=" line and the empty line after it.
func uapiExchange(t *testing.T, c net.Conn, r *bufio.Reader, req string) (body []string, errno string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatalf("write %q: %v", req, err)
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read answer to %q: %v (so far %q)", req, err, body)
		}
		line = strings.TrimSuffix(line, "\n")
		if v, ok := strings.CutPrefix(line, "errno="); ok {
			if end, _ := r.ReadString('\n'); end != "\n" {
				t.Fatalf("answer to %q: %q after errno, want an empty line", req, end)
			}
			return body, v
		}
		body = append(body, line)
	}
}

func TestServeUAPIGetAnswersSetRefuses(t *testing.T) {
	a, b, _, _ := pair(t, DefaultMTU)
	srv, cli := net.Pipe()
	var refused [][]string
	done := make(chan error, 1)
	go func() { done <- a.ServeUAPI(srv, func(keys []string) { refused = append(refused, keys) }) }()
	r := bufio.NewReader(cli)

	bPub := PublicKey(b.privateKey)
	bHex := hex.EncodeToString(bPub[:])
	body, errno := uapiExchange(t, cli, r, "get=1\n\n")
	if errno != "0" {
		t.Fatalf("get: errno=%s; want 0", errno)
	}
	if !slices.Contains(body, "public_key="+bHex) || !slices.ContainsFunc(body, func(l string) bool { return strings.HasPrefix(l, "listen_port=") }) {
		t.Fatalf("get: %q; want peer b's public_key and a listen_port", body)
	}

	set := fmt.Sprintf("set=1\nprivate_key=%s\npublic_key=%s\nremove=true\n\n", strings.Repeat("11", 32), bHex)
	if _, errno := uapiExchange(t, cli, r, set); errno != fmt.Sprint(-int(UAPIRefused)) {
		t.Fatalf("set: errno=%s; want %d (EPERM)", errno, -int(UAPIRefused))
	}
	if len(refused) != 1 || !slices.Equal(refused[0], []string{"private_key", "public_key", "remove"}) {
		t.Fatalf("refused callback got %q; want the keys of the set, no values", refused)
	}
	st, err := a.Status()
	if err != nil || len(st.Peers) != 1 {
		t.Fatalf("after a refused remove: %+v, %v; want peer b still there", st, err)
	}
	if pk := st.PublicKey; pk == "" || pk == "ERERERERERERERERERERERERERERERERERERERERERE=" {
		t.Fatalf("after a refused private_key: public key %q", pk)
	}

	// The connection still works after a refusal, as wireguard-go's does.
	if _, errno := uapiExchange(t, cli, r, "get=1\n\n"); errno != "0" {
		t.Fatalf("second get: errno=%s", errno)
	}
	cli.Close()
	if err := <-done; err != nil {
		t.Fatalf("ServeUAPI after the client closed: %v; want nil", err)
	}
}

func TestServeUAPIRejectsGarbage(t *testing.T) {
	a, _, _, _ := pair(t, DefaultMTU)
	cases := []struct{ name, req string }{
		{"unknown operation", "put=1\n\n"},
		{"get with a body", "get=1\nx=y\n"},
		{"line too long", "set=1\n" + strings.Repeat("x", maxUAPILine+10) + "\n\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv, cli := net.Pipe()
			done := make(chan error, 1)
			go func() { done <- a.ServeUAPI(srv, nil) }()
			go func() { cli.Write([]byte(c.req)); cli.Close() }()
			select {
			case err := <-done:
				srv.Close()
				if err == nil {
					t.Fatalf("ServeUAPI(%q) = nil; want an error", c.req)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("ServeUAPI did not return")
			}
		})
	}
}
