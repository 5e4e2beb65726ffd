package tap

import "github.com/songgao/water"

// waterParams names the TAP-Windows adapter to open.
func waterParams(name string) water.PlatformSpecificParams {
	return water.PlatformSpecificParams{ComponentID: "tap0901", InterfaceName: name, Network: "192.168.1.10/24"}
}
