// Package netns builds small network labs out of Linux network namespaces:
// hypervisors, VMs and routers as namespaces, joined by veth pairs and Linux
// bridges, with processes started inside them and Go code run inside them.
//
// A [Lab] owns everything it creates. Its namespaces carry a prefix unique to
// the process and the lab ("l2wgt4711-3-hv1"), so parallel labs, parallel test
// runs and the cleanup of a crashed run never touch each other. Interfaces live
// inside the lab's namespaces, so their names need no prefix ("eth0", "br0")
// and only have to respect the kernel's 15-byte limit (IFNAMSIZ-1).
//
// Methods take the lab's short namespace names ("hv1"); [Lab.Name] gives the
// full name for tools that need it (ip netns exec, ip -n).
//
// Links, addresses and bridges are set up with iproute2's ip(8), whose
// behaviour every network engineer already knows; Go code that must run inside
// a namespace (raw AF_PACKET sockets, TCP endpoints) goes through [Lab.Do],
// which moves one locked OS thread into the namespace and back. A socket keeps
// the namespace it was created in, so it may be used from any goroutine after
// Do returns.
//
// [Lab.Close] stops the processes the lab started (SIGTERM, then SIGKILL),
// closes its sockets and deletes its namespaces, which removes every veth, TAP
// and bridge inside them. [CleanupStale] removes namespaces left behind by a
// lab whose process died without closing it.
//
// Everything here needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and Linux.
package netns
