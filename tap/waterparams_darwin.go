package tap

import "github.com/songgao/water"

// waterParams names the TAP; on macOS TAPs come from the tuntaposx driver.
func waterParams(name string) water.PlatformSpecificParams {
	return water.PlatformSpecificParams{Name: name, Driver: water.MacOSDriverTunTapOSX}
}
