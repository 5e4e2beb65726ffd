package config

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/l2wg/l2wg/tunnel"
)

// CheckListenAddr checks a host:port to listen on (metrics_listen): a port
// as tunnel.SplitEndpoint checks it, and a host that is empty (every
// address), an IP address or a name.
func CheckListenAddr(s string) error {
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if host == "" {
		s = "0.0.0.0" + s // every address: only the port is to check
	}
	host, _, err = tunnel.SplitEndpoint(s)
	if err != nil {
		return err
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	for _, r := range host {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return fmt.Errorf("host %q: neither an IP address nor a host name", host)
		}
	}
	return nil
}
