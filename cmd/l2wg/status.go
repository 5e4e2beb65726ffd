package main

import (
	"time"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/frag"
	"github.com/l2wg/l2wg/tunnel"
)

// The JSON that `l2wg show --json` prints and the control socket serves.
// Field names are stable; new fields may be added.

type showStatus struct {
	Interface  showInterface  `json:"interface"`
	Peers      []showPeer     `json:"peers"`
	Ports      []showPort     `json:"ports"`
	Switch     showSwitch     `json:"switch"`
	STP        *showSTP       `json:"stp,omitempty"`
	Reassembly frag.Stats     `json:"reassembly"`
	Tunnel     showTunnel     `json:"tunnel"`
	FDB        []showFDBEntry `json:"fdb,omitempty"`
}

type showInterface struct {
	TAP         string `json:"tap"`
	MTU         int    `json:"mtu"`
	Bridge      string `json:"bridge,omitempty"`
	Offload     bool   `json:"offload"`
	Persistent  bool   `json:"persistent"`
	IsolateHost bool   `json:"isolate_host"`
	PublicKey   string `json:"public_key"`
	ListenPort  int    `json:"listen_port"`
	TunnelMTU   int    `json:"tunnel_mtu"`
	Label       string `json:"label"`
	Version     string `json:"version"`
	PID         int    `json:"pid"`
}

type showPeer struct {
	Name                string     `json:"name"`
	PublicKey           string     `json:"public_key"`
	Endpoint            string     `json:"endpoint,omitempty"`
	LatestHandshake     *time.Time `json:"latest_handshake,omitempty"`
	RxBytes             uint64     `json:"rx_bytes"`
	TxBytes             uint64     `json:"tx_bytes"`
	PersistentKeepalive int        `json:"persistent_keepalive"` // seconds, 0 = off
	Port                int        `json:"port"`
	Live                bool       `json:"live"` // has a WireGuard session
}

type showPort struct {
	ID       int               `json:"id"`
	Name     string            `json:"name"`
	State    string            `json:"state"`
	RxFrames uint64            `json:"rx_frames"`
	RxBytes  uint64            `json:"rx_bytes"`
	TxFrames uint64            `json:"tx_frames"`
	TxBytes  uint64            `json:"tx_bytes"`
	Drops    map[string]uint64 `json:"drops,omitempty"`
}

type showSwitch struct {
	FDBEntries   int               `json:"fdb_entries"`
	FDBLimit     int               `json:"fdb_limit"`
	AgeingTime   float64           `json:"ageing_time"` // seconds
	StationMoves uint64            `json:"station_moves"`
	Drops        map[string]uint64 `json:"drops,omitempty"`
}

// showTunnel is what the tunnel itself dropped (see tunnel.Drops).
type showTunnel struct {
	Drops map[string]uint64 `json:"drops,omitempty"`
}

func tunnelDropMap(d tunnel.Drops) map[string]uint64 {
	m := make(map[string]uint64)
	for k, v := range map[string]uint64{
		"malformed": d.Malformed, "unknown-peer": d.UnknownPeer, "too-big": d.TooBig, "closed": d.Closed, "control-queue-full": d.Control,
	} {
		if v > 0 {
			m[k] = v
		}
	}
	return m
}

type showFDBEntry struct {
	MAC  string  `json:"mac"`
	Port int     `json:"port"`
	Name string  `json:"port_name"`
	Age  float64 `json:"age"` // seconds since last seen
}

func dropMap(d bridge.Drops) map[string]uint64 {
	m := make(map[string]uint64)
	for i, n := range d {
		if n > 0 {
			m[bridge.DropReason(i).String()] = n
		}
	}
	return m
}

// status gathers the node's state; withFDB adds the forwarding database.
func (n *node) status(withFDB bool) showStatus {
	now := time.Now()
	st := showStatus{
		Interface: showInterface{
			TAP: n.tap.Name(), MTU: n.cfg.TAPMTU, Bridge: n.cfg.TAPBridge, Offload: n.tap.Offload(),
			Persistent: n.cfg.TAPPersistent, IsolateHost: n.cfg.IsolateHost,
			TunnelMTU: n.cfg.TunnelMTU, Label: n.tun.Self().String(), Version: version, PID: pid,
		},
		Reassembly: n.tun.ReassemblyStats(),
		Tunnel:     showTunnel{Drops: tunnelDropMap(n.tun.Drops())},
	}
	if ts, err := n.tun.Status(); err == nil {
		st.Interface.PublicKey = ts.PublicKey
		st.Interface.ListenPort = ts.ListenPort
		for _, p := range ts.Peers {
			sp := showPeer{
				Name: p.Name, PublicKey: p.PublicKey, Endpoint: p.Endpoint, RxBytes: p.RxBytes, TxBytes: p.TxBytes,
				PersistentKeepalive: int(p.PersistentKeepalive / time.Second), Port: int(p.Port), Live: p.Live(now),
			}
			if !p.LastHandshake.IsZero() {
				hs := p.LastHandshake
				sp.LatestHandshake = &hs
			}
			st.Peers = append(st.Peers, sp)
		}
	}
	for _, p := range n.br.Ports() {
		st.Ports = append(st.Ports, showPort{
			ID: int(p.ID), Name: p.Name, State: p.State.String(),
			RxFrames: p.Counters.RxFrames, RxBytes: p.Counters.RxBytes,
			TxFrames: p.Counters.TxFrames, TxBytes: p.Counters.TxBytes,
			Drops: dropMap(p.Counters.Drops),
		})
	}
	bs := n.br.Stats()
	st.Switch = showSwitch{
		FDBEntries: bs.FDBEntries, FDBLimit: bs.FDBLimit, AgeingTime: n.br.AgeingTime().Seconds(),
		StationMoves: bs.StationMoves, Drops: dropMap(bs.Drops),
	}
	st.STP = n.stpStatus()
	if withFDB {
		for _, e := range n.br.FDB() {
			st.FDB = append(st.FDB, showFDBEntry{MAC: e.MAC.String(), Port: int(e.Port), Name: e.PortName, Age: e.Age.Seconds()})
		}
	}
	return st
}
