package netns

import (
	"fmt"
	"net"
	"time"
)

// Listen announces on the local address inside ns, as net.Listen does. The
// lab closes the listener on Close if the caller has not.
func (l *Lab) Listen(ns, network, address string) (net.Listener, error) {
	var ln net.Listener
	err := l.Do(ns, func() error {
		var err error
		ln, err = net.Listen(network, address)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen %s %s in %s: %w", network, address, ns, err)
	}
	if !l.track(ln) {
		return nil, fmt.Errorf("listen %s %s in %s: lab closed", network, address, ns)
	}
	return ln, nil
}

// DialTimeout connects to address from inside ns, as net.DialTimeout does.
// address must be a literal IP and port: name resolution is not done in ns.
func (l *Lab) DialTimeout(ns, network, address string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := l.Do(ns, func() error {
		var err error
		c, err = net.DialTimeout(network, address, timeout)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s %s from %s: %w", network, address, ns, err)
	}
	if !l.track(c) {
		return nil, fmt.Errorf("dial %s %s from %s: lab closed", network, address, ns)
	}
	return c, nil
}
