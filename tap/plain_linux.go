package tap

import (
	"errors"
	"fmt"
	"os"

	"github.com/songgao/water"
)

// openPlain opens the portable path with songgao/water: IFF_TAP|IFF_NO_PI.
func openPlain(name string, persist bool) (*os.File, string, error) {
	ifce, err := water.New(water.Config{
		DeviceType: water.TAP,
		PlatformSpecificParams: water.PlatformSpecificParams{
			Name:    name,
			Persist: persist,
		},
	})
	if err != nil {
		var se *os.SyscallError
		if errors.As(err, &se) {
			err = se.Err // "ioctl: " says nothing to an operator
		}
		return nil, "", err
	}
	f, ok := ifce.ReadWriteCloser.(*os.File)
	if !ok {
		ifce.Close()
		return nil, "", fmt.Errorf("water returned a %T, not an *os.File", ifce.ReadWriteCloser)
	}
	return f, ifce.Name(), nil
}
