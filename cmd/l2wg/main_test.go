package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `l2wg <command> --help` (or -h) prints the command's usage to stdout and
// succeeds.
func TestCommandHelp(t *testing.T) {
	for _, cmd := range []string{"up", "check", "show", "reload", "capture", "genkey", "pubkey"} {
		for _, flag := range []string{"--help", "-h"} {
			var stdout, stderr strings.Builder
			err := run([]string{cmd, flag}, strings.NewReader(""), &stdout, &stderr)
			if err != nil || !strings.Contains(stdout.String(), "usage: l2wg "+cmd) || stderr.Len() != 0 {
				t.Errorf("l2wg %s %s: err %v, stdout %q, stderr %q; want the usage on stdout", cmd, flag, err, stdout.String(), stderr.String())
			}
		}
	}
	var stdout, stderr strings.Builder
	if err := run([]string{"show", "--bogus"}, nil, &stdout, &stderr); err == nil || !strings.Contains(stderr.String(), "usage: l2wg show") {
		t.Errorf("a bad flag: err %v, stderr %q; want a failure with the usage on stderr", err, stderr.String())
	}
}

// l2wg check warns about a private key file others may read, naming the
// file and its mode.
func TestCheckWarnsAboutKeyFileMode(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "node.key")
	if err := os.WriteFile(key, []byte("yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(key, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	path := filepath.Join(dir, "node.toml")
	if err := os.WriteFile(path, []byte("private_key_file = \"node.key\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	if err := run([]string{"check", "-c", path}, nil, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), key+" has mode 0644") || !strings.Contains(stdout.String(), path+": ok") {
		t.Errorf("stdout %q, stderr %q; want ok and a warning naming %s and its mode", stdout.String(), stderr.String(), key)
	}
}
