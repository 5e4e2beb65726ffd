package config

import (
	"fmt"
	"strings"
)

// Delta is what changes from one config to the next, as Diff finds it.
type Delta struct {
	Keys    []Change     // settings that differ, in the table's order
	Removed []Peer       // peers gone, or renamed (removed and added again)
	Added   []Peer       // new peers, and renamed ones
	Changed []PeerChange // peers kept whose endpoint, keepalive or cost differ
}

// Change is one setting that differs.
type Change struct {
	Key      *Key
	Old, New any
}

// PeerChange is a peer kept (same key, same name) whose settings differ.
type PeerChange struct {
	Old, New Peer
	Keys     []*Key // the peer's keys that differ, in the table's order
}

// Diff compares two configs key by key of the table, and peers by public
// key.
func Diff(old, next *Config) Delta {
	var d Delta
	for _, k := range Keys {
		if k.value == nil {
			continue
		}
		if o, n := k.value(old), k.value(next); o != n {
			d.Keys = append(d.Keys, Change{Key: k, Old: o, New: n})
		}
	}
	was, now := peerIndex(old), peerIndex(next)
	for _, p := range old.Peers {
		if n, ok := now[p.PublicKey]; !ok || n.Name != p.Name {
			d.Removed = append(d.Removed, p)
		}
	}
	for _, p := range next.Peers {
		o, ok := was[p.PublicKey]
		switch {
		case !ok || o.Name != p.Name:
			d.Added = append(d.Added, p)
		case o != p:
			c := PeerChange{Old: o, New: p}
			for _, k := range Keys {
				if k.peerValue != nil && k.peerValue(&o) != k.peerValue(&p) {
					c.Keys = append(c.Keys, k)
				}
			}
			d.Changed = append(d.Changed, c)
		}
	}
	return d
}

func peerIndex(c *Config) map[[32]byte]Peer {
	m := make(map[[32]byte]Peer, len(c.Peers))
	for _, p := range c.Peers {
		m[p.PublicKey] = p
	}
	return m
}

// Empty reports whether nothing changes.
func (d Delta) Empty() bool {
	return len(d.Keys) == 0 && len(d.Removed) == 0 && len(d.Added) == 0 && len(d.Changed) == 0
}

// RestartOnly is an error for every change of d that a running node cannot
// apply, naming next's file, line and key; nil if there is none.
func (d Delta) RestartOnly(next *Config) error {
	var errs Errors
	for _, c := range d.Keys {
		if c.Key.Live {
			continue
		}
		msg := fmt.Sprintf("changed from %v to %v: this setting takes a restart", c.Old, c.New)
		if c.Key.Path == "private_key_file" {
			msg = "changed: this setting takes a restart (l2wg reload applies " + liveList() + ")"
		}
		errs = append(errs, &Error{File: next.File, Line: next.Line(c.Key.Path), Field: c.Key.Path, Msg: msg})
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// liveList names the keys reload applies.
func liveList() string {
	var live []string
	for _, k := range Keys {
		if k.Live && k.value != nil {
			live = append(live, k.Path)
		}
	}
	return "peers, " + strings.Join(live, ", ")
}
