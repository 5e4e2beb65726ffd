// Package tomlpos finds where keys are in a TOML document, so that config
// errors found after decoding (a bad endpoint, a duplicate peer) can name
// the line, as the decoder's own errors do.
package tomlpos

import (
	"fmt"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// KeyLines maps each key path of a TOML document to the line it is on:
// "listen_port", "tap.mtu", "peer[2].endpoint", and "peer[2]" for the
// [[peer]] header itself. Arrays of tables are numbered from 1.
func KeyLines(data []byte) (map[string]int, error) {
	lines := make(map[string]int)
	counts := make(map[string]int)
	var p unstable.Parser
	p.Reset(data)
	prefix := ""
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			name := joinKey(e.Key())
			if e.Kind == unstable.ArrayTable {
				counts[name]++
				name = fmt.Sprintf("%s[%d]", name, counts[name])
			}
			prefix = name
			lines[name] = lineOf(&p, e)
		case unstable.KeyValue:
			name := joinKey(e.Key())
			if prefix != "" {
				name = prefix + "." + name
			}
			lines[name] = lineOf(&p, e)
		}
	}
	return lines, p.Error()
}

func joinKey(it unstable.Iterator) string {
	var parts []string
	for it.Next() {
		parts = append(parts, string(it.Node().Data))
	}
	return strings.Join(parts, ".")
}

// lineOf finds the line of an expression by its first key part.
func lineOf(p *unstable.Parser, e *unstable.Node) int {
	it := e.Key()
	if it.Next() {
		if n := it.Node(); n.Raw.Length > 0 {
			return p.Shape(n.Raw).Start.Line
		}
	}
	if e.Raw.Length > 0 {
		return p.Shape(e.Raw).Start.Line
	}
	return 0
}
