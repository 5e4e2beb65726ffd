package config

import (
	"bytes"
	"fmt"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
)

// Marshal writes f as node.toml, each line of header first as a comment.
// What Parse reads back from it is f.
func Marshal(f *File, header ...string) ([]byte, error) {
	var b bytes.Buffer
	for _, h := range header {
		for _, line := range strings.Split(h, "\n") {
			fmt.Fprintf(&b, "# %s\n", line)
		}
	}
	enc := toml.NewEncoder(&b)
	enc.SetIndentTables(false)
	if err := enc.Encode(f); err != nil {
		return nil, fmt.Errorf("write node.toml: %w", err)
	}
	return b.Bytes(), nil
}
