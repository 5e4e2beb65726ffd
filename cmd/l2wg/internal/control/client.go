package control

import (
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// reloadTimeout bounds a reload (adding peers resolves their endpoints).
const reloadTimeout = 30 * time.Second

// Dial connects to the control socket at addr and sends request (one
// line); the caller reads the answer.
func Dial(addr, request string, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("unix", addr, 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("no l2wg answers at %s in this network namespace: %w", addr, err)
	}
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintln(c, request); err != nil {
		c.Close()
		return nil, fmt.Errorf("ask l2wg: %w", err)
	}
	return c, nil
}

// ask sends request and decodes the JSON answer into v.
func ask(addr, request string, timeout time.Duration, v any) error {
	c, err := Dial(addr, request, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := json.NewDecoder(c).Decode(v); err != nil {
		return fmt.Errorf("read l2wg's answer (are you root?): %w", err)
	}
	return nil
}

// Query asks the l2wg at addr for its status; request is "status" or
// "fdb" (with the forwarding database).
func Query(addr, request string) (Status, error) {
	var st Status
	err := ask(addr, request, requestTimeout, &st)
	return st, err
}

// Reload asks the l2wg at addr to reload its config.
func Reload(addr string) (ReloadResult, error) {
	var res ReloadResult
	err := ask(addr, "reload", reloadTimeout, &res)
	return res, err
}
