package main

import (
	"errors"
	"io"
)

// cmdLab runs `l2wg lab ...` (see cmd/l2wg/internal/lab).
func cmdLab(args []string, stdout, stderr io.Writer) error {
	return errors.New("lab: not built yet")
}
