package main

import (
	"errors"
	"io"
	"os"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/lab"
)

// cmdLab runs `l2wg lab ...` (see cmd/l2wg/internal/lab).
func cmdLab(args []string, stdout, stderr io.Writer) error {
	err := lab.Main(args, os.Stdin, stdout, stderr)
	var le *lab.ExitError
	if errors.As(err, &le) {
		return &exitError{code: le.Code, err: le.Err}
	}
	return err
}
