/* SPDX-License-Identifier: MIT
 *
 * l2wg: not part of upstream wireguard-go (see L2WG-PATCH.md).
 */

package conn

import (
	"net"
	"testing"
)

// TestMessagesResetAfterUse: after a receive of datagrams (IPv4, with UDP
// GRO where the kernel offers it) and after a send, the bind's pooled
// messages hold nothing of them (no length, flags, address or control
// data), though the bind resets only the messages it used.
func TestMessagesResetAfterUse(t *testing.T) {
	bind := NewStdNetBind().(*StdNetBind)
	fns, port, err := bind.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer bind.Close()
	if bind.ipv4 == nil {
		t.Skip("no IPv4 socket")
	}
	peer, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(port)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	check := func(after string) {
		t.Helper()
		msgs := bind.getMessages()
		defer bind.putMessages(msgs)
		for i, m := range *msgs {
			if m.N != 0 || m.NN != 0 || m.Flags != 0 || m.Addr != nil {
				t.Fatalf("after %s: message %d keeps N %d NN %d flags %d addr %v", after, i, m.N, m.NN, m.Flags, m.Addr)
			}
		}
	}
	for round := range 3 {
		for i := range 3 {
			if _, err := peer.Write(make([]byte, 100+i)); err != nil {
				t.Fatal(err)
			}
		}
		bufs := make([][]byte, bind.BatchSize())
		for i := range bufs {
			bufs[i] = make([]byte, 2048)
		}
		sizes := make([]int, len(bufs))
		eps := make([]Endpoint, len(bufs))
		got := 0
		for got < 3 {
			n, err := fns[0](bufs, sizes, eps) // IPv4 first
			if err != nil {
				t.Fatal(err)
			}
			for i := range n {
				if sizes[i] != 100+got {
					t.Fatalf("round %d: datagram %d: %d bytes, want %d", round, got, sizes[i], 100+got)
				}
				got++
			}
			check("a receive")
		}
		ep, err := bind.ParseEndpoint(peer.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		if err := bind.Send([][]byte{make([]byte, 64), make([]byte, 64)}, ep); err != nil {
			t.Fatal(err)
		}
		check("a send")
		buf := make([]byte, 128)
		for range 2 {
			if n, err := peer.Read(buf); err != nil || n != 64 {
				t.Fatalf("round %d: read %d bytes, %v; want 64", round, n, err)
			}
		}
	}
}
