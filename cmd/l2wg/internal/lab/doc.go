// Package lab is l2wg lab: l2wg networks in network namespaces, built from a
// topology file, for operators who want to try a topology before they
// deploy it and for the project's own end-to-end tests.
//
// A topology (topology.go) names routers, sites (hypervisors, each with a VM
// bridge, VMs and an l2wg) and the underlay links between them, with
// impairments per link, NAT routers, which sites peer, and events (cut a
// link, stop a site, roam) for lab run. MakePlan (plan.go) works it out:
// interface names, addresses, static routes, NAT boundaries, endpoints and
// keepalives. Build (lab.go) makes it with the netns package: namespaces,
// veth pairs, TAP pairs for impaired links, bridges, routes, nftables NAT,
// keys and node.toml per site, the relay and one `l2wg up` per site.
//
// Impairments need no tc netem: an impaired link is a TAP at each end, and
// the relay process (relay.go, `l2wg lab relay`) moves frames between them
// through a shaper per direction (impair.go) that delays, jitters, drops,
// duplicates, reorders and rate-limits from a seeded random source. The
// seed is in the report; the n-th frame of a direction meets the same fate
// in every run with the same seed.
//
// A lab keeps its state in a directory (/run/l2wg-lab/NAME: state.json,
// topology, configs, keys, logs) and its namespaces are named
// l2wglab-NAME-*, so lab status, exec, cut, stop and down work from any
// invocation, and lab down removes everything after a crash too: processes
// by recorded pid and start time (and only when their command line still
// names the lab), namespaces by prefix.
//
// Converge (converge.go) polls `l2wg show --json` of every site until the
// WireGuard sessions are up and the spanning tree is one tree; the checks
// (checks.go) ping between every two VMs with full-size DF frames, send a
// broadcast ping, ARP for the hypervisors from the VMs, read the spanning
// tree, and check NAT and roaming. Run (run.go) strings it together into a
// report.
//
// The mesh protocol (issue 13): a topology's [mesh] protocol goes to every
// site's node.toml (meshconf.go); sites with [[site]] lan share one LAN
// behind their TAPs (lan.go). The pair matrix (meshpaths.go) compares every
// VM pair's round trip with the best underlay path through the peerings,
// each peering weighed by the round trip measured between its hypervisors;
// [checks] shortest_paths judges it once the sites run the shortest-path
// mesh. meshmeasure.go measures the first frame after each handshake, a
// restart with a persistent TAP, failover of every site and peering, seeded
// churn and a high-availability pair, whatever protocol the sites run.
package lab
