// Package testbin builds the l2wg binary for the tests that run it as a
// real process (the end-to-end tests and the lab's), once per test process.
package testbin

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

var (
	once sync.Once
	dir  string
	bin  string
	err  error
)

// L2WG returns the path of an l2wg binary built from this checkout, building
// it on first use; the test fails if it does not build.
func L2WG(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		dir, err = os.MkdirTemp("", "l2wg-test-bin-")
		if err != nil {
			return
		}
		bin = filepath.Join(dir, "l2wg")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		// Static, as make build and the .deb build it.
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/l2wg/l2wg/cmd/l2wg")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, e := cmd.CombinedOutput(); e != nil {
			err = fmt.Errorf("go build l2wg: %w\n%s", e, out)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// Cleanup removes the built binary; TestMain calls it after m.Run.
func Cleanup() {
	if dir != "" {
		os.RemoveAll(dir)
	}
}
