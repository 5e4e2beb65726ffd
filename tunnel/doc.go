// Package tunnel embeds a wireguard-go device as l2wg's encrypted transport
// and makes every WireGuard peer a port of the learning switch.
//
// wireguard-go accepts any tun.Device; this package gives it an in-memory one
// (no kernel TUN): frames the switch sends to a peer port are split into
// tunnel-sized chunks by package frag, each chunk behind a 20-byte IPv4
// "label" header, and handed to wireguard-go as if they were IP packets.
//
// # Labels
//
// wireguard-go picks the peer of an outgoing packet by the inner destination
// address and checks the inner source of a received packet against the peer's
// allowed IPs. The inner header is therefore a routing label and nothing more:
// each node's label is an IPv4 address derived from its public key
// (LabelOf), every peer gets allowed_ip = label/32, and the source label of a
// received packet names the port it came in on, already authenticated by
// WireGuard. Operators allocate nothing; two configured keys with the same
// label are a configuration error (probability about n²/2³³ for n peers).
//
// IPv4 rather than IPv6 because the header rides in every tunnel packet: 20
// bytes instead of 40 leaves 20 more bytes per chunk for frame data. The
// header fields wireguard-go ignores (ID, flags, TTL, checksum) are left
// constant; wireguard-go validates the version, total length and source.
//
// A packet is
//
//	| IPv4 label header (20) | frag chunk (2 or 12 byte header + data) |
//
// and a chunk is at most MTU-20 bytes, so every tunnel packet fits the
// configured tunnel MTU (1420 by default) and WireGuard never needs the
// underlay to fragment.
package tunnel
