package lab

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
)

// The topologies shipped with l2wg: lab run two-hypervisors finds them by
// name.
//
//go:embed topologies/*.toml
var shipped embed.FS

// Shipped returns the names of the shipped topologies.
func Shipped() []string {
	entries, _ := fs.ReadDir(shipped, "topologies")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".toml"))
	}
	sort.Strings(names)
	return names
}

// ShippedText returns the file of a shipped topology.
func ShippedText(name string) ([]byte, bool) {
	data, err := shipped.ReadFile(path.Join("topologies", name+".toml"))
	return data, err == nil
}

// Load loads a topology by shipped name or by path: a name that is a
// shipped topology and not an existing file is the shipped one.
func Load(nameOrPath string) (*Topology, error) {
	if _, err := os.Stat(nameOrPath); err != nil {
		if data, ok := ShippedText(nameOrPath); ok {
			t, err := Parse(nameOrPath+".toml", data)
			if err != nil {
				return nil, err
			}
			t.Source = nameOrPath
			if t.Name == "" {
				t.Name = nameOrPath
			}
			return t, nil
		}
		if !strings.ContainsAny(nameOrPath, "/.") {
			return nil, fmt.Errorf("no topology %q: not a file, and not one of the shipped ones (%s)", nameOrPath, strings.Join(Shipped(), ", "))
		}
	}
	return LoadFile(nameOrPath)
}
