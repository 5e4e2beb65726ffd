package dist

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// installed is what the package puts on the system, conffile last.
var installed = []string{
	"/usr/bin/l2wg",
	"/lib/systemd/system/l2wg@.service",
	"/usr/share/man/man8/l2wg.8.gz",
	"/usr/share/doc/l2wg/README-ops.md",
	"/etc/l2wg/node.toml",
}

// TestManPageHasEveryKey: every key of the README's configuration table
// is described in l2wg(8), with the README's default.
func TestManPageHasEveryKey(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	man, err := os.ReadFile("../man/l2wg.8")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Configuration reference\n")
	if !ok {
		t.Fatal("README.md has no Configuration reference")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	// | `[tunnel] mtu` | `1420` | ...  or  | `listen_port` | `51820` | ...
	row := regexp.MustCompile("(?m)^\\| `(?:\\[\\[?(\\w+)\\]\\]? )?(\\w+)` \\| ([^|]*) \\|")
	rows := row.FindAllStringSubmatch(section, -1)
	if len(rows) < 30 {
		t.Fatalf("found %d keys in README.md's configuration table; the pattern no longer matches it", len(rows))
	}
	sections := map[string]string{"": ".SS Top level", "tap": ".SS [tap]", "tunnel": ".SS [tunnel]",
		"switch": ".SS [switch]", "stp": ".SS [stp]", "mesh": ".SS [mesh]", "peer": ".SS [[peer]]"}
	text := string(man)
	for _, r := range rows {
		table, key := r[1], r[2]
		head, ok := sections[table]
		if !ok {
			t.Errorf("README table %q: no section for it in l2wg.8", table)
			continue
		}
		start := strings.Index(text, head+"\n")
		if start < 0 {
			t.Errorf("l2wg.8 has no %q", head)
			continue
		}
		body := text[start+len(head):]
		if end := strings.Index(body, "\n.SS "); end >= 0 {
			body = body[:end]
		}
		if end := strings.Index(body, "\n.SH "); end >= 0 {
			body = body[:end]
		}
		m := regexp.MustCompile(`(?m)^\.BR? ` + key + `(?: "? \(([^)]*)\)"?)?$`).FindStringSubmatch(body)
		if m == nil {
			t.Errorf("l2wg.8: %s has no entry for %s", head, key)
			continue
		}
		def := strings.ReplaceAll(strings.TrimSpace(r[3]), "`", "")
		manDef := strings.NewReplacer(`\(dq`, `"`, `\-`, "-").Replace(m[1])
		if def == "required" || def == "none" || def == "off" {
			continue
		}
		if !strings.HasPrefix(manDef, strings.Fields(def)[0]) && !strings.HasPrefix(def, manDef) {
			t.Errorf("l2wg.8: [%s] %s default %q, README says %q", table, key, manDef, def)
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestDebianPackage builds the amd64 package, checks what it holds, installs
// it, runs the binary, verifies the unit, removes and purges it, and checks
// that the system is as before.
func TestDebianPackage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (dpkg -i)")
	}
	for _, tool := range []string{"dpkg-deb", "dpkg", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s", tool)
		}
	}
	if exec.Command("dpkg-query", "-W", "l2wg").Run() == nil {
		t.Skip("an l2wg package is installed on this machine; not touching it")
	}
	for _, p := range append(installed, "/etc/l2wg") {
		if _, err := os.Lstat(p); err == nil {
			t.Skipf("%s exists; not touching this machine", p)
		}
	}
	out := t.TempDir()
	run(t, "./dist.sh", out, "v0.0.0-7-gabcdef0", "amd64:amd64")
	deb := filepath.Join(out, "l2wg_0.0.0+7+gabcdef0_amd64.deb")
	if _, err := os.Stat(filepath.Join(out, "l2wg-linux-amd64")); err != nil {
		t.Errorf("no static binary beside the package: %v", err)
	}
	if ldd, _ := exec.Command("file", filepath.Join(out, "l2wg-linux-amd64")).Output(); len(ldd) > 0 && !bytes.Contains(ldd, []byte("statically linked")) {
		t.Errorf("binary is not static: %s", ldd)
	}

	contents := run(t, "dpkg-deb", "--contents", deb)
	for _, p := range installed {
		if !regexp.MustCompile(`(?m) root/root .* \.` + regexp.QuoteMeta(p) + `$`).MatchString(contents) {
			t.Errorf("dpkg-deb --contents does not list %s owned by root:\n%s", p, contents)
		}
	}
	if !regexp.MustCompile(`(?m)^drwxr-xr-x .* \./$`).MatchString(contents) {
		t.Errorf("the package's ./ is not mode 0755 (dpkg would make / so):\n%s", contents)
	}
	if !regexp.MustCompile(`(?m)^-rwxr-xr-x .* \./usr/bin/l2wg$`).MatchString(contents) {
		t.Errorf("/usr/bin/l2wg is not mode 0755:\n%s", contents)
	}
	if strings.Contains(contents, ".key") {
		t.Errorf("the package ships a key:\n%s", contents)
	}
	fields := run(t, "dpkg-deb", "--field", deb, "Package", "Version", "Architecture")
	if want := "Package: l2wg\nVersion: 0.0.0+7+gabcdef0\nArchitecture: amd64\n"; fields != want {
		t.Errorf("control fields:\n%s\nwant:\n%s", fields, want)
	}
	if conf := run(t, "dpkg-deb", "--info", deb, "conffiles"); strings.TrimSpace(conf) != "/etc/l2wg/node.toml" {
		t.Errorf("conffiles: %q", conf)
	}

	t.Cleanup(func() { exec.Command("dpkg", "--purge", "l2wg").Run() })
	run(t, "dpkg", "-i", deb)
	if v := run(t, "/usr/bin/l2wg", "version"); v != "l2wg v0.0.0-7-gabcdef0\n" {
		t.Errorf("l2wg version: %q", v)
	}
	unitText, err := os.ReadFile("/lib/systemd/system/l2wg@.service")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unitText), "\nExecStart=/usr/bin/l2wg up -c /etc/l2wg/%i.toml\n") {
		t.Errorf("installed unit does not run /usr/bin/l2wg:\n%s", unitText)
	}
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		// verify instantiates the template and checks that ExecStart's
		// binary exists and every directive parses.
		cmd := exec.Command("systemd-analyze", "verify", "/lib/systemd/system/l2wg@.service")
		cmd.Dir = t.TempDir()
		if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	} else {
		t.Log("no systemd-analyze: unit not verified")
	}
	if _, err := exec.LookPath("man"); err == nil {
		if where := strings.TrimSpace(run(t, "man", "-w", "l2wg")); where != "/usr/share/man/man8/l2wg.8.gz" {
			t.Errorf("man -w l2wg: %q", where)
		}
		page := run(t, "man", "-P", "cat", "l2wg")
		if !strings.Contains(page, "l2wg - Layer-2 VPN switch") || !strings.Contains(page, "reassembly_total_bytes") {
			t.Errorf("man l2wg does not render the page:\n%.300s", page)
		}
	}
	// The example config is valid once the operator has made a key.
	dir := t.TempDir()
	example, err := os.ReadFile("/etc/l2wg/node.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "node.toml"), example, 0o644); err != nil {
		t.Fatal(err)
	}
	key := run(t, "/usr/bin/l2wg", "genkey")
	if err := os.WriteFile(filepath.Join(dir, "node.key"), []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "/usr/bin/l2wg", "check", "-c", filepath.Join(dir, "node.toml"))

	run(t, "dpkg", "-r", "l2wg")
	for _, p := range installed[:len(installed)-1] {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("dpkg -r left %s", p)
		}
	}
	if _, err := os.Stat("/etc/l2wg/node.toml"); err != nil {
		t.Errorf("dpkg -r removed the conffile (only a purge should): %v", err)
	}
	run(t, "dpkg", "--purge", "l2wg")
	for _, p := range append(installed, "/etc/l2wg", "/usr/share/doc/l2wg") {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("after purge %s is still there", p)
		}
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f", "${Status}", "l2wg").CombinedOutput(); err == nil && !slices.Contains([]string{"", "unknown ok not-installed"}, string(out)) {
		t.Errorf("dpkg still knows l2wg after purge: %q", out)
	}
}
