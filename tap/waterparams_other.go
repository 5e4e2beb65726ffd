//go:build !linux && !darwin && !windows

package tap

import "github.com/songgao/water"

// waterParams: water has no TAP here; Open reports its error.
func waterParams(string) water.PlatformSpecificParams { return water.PlatformSpecificParams{} }
