package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/config"
	"github.com/l2wg/l2wg/tunnel"
)

// cmdGenkey prints a new Curve25519 private key in base64, clamped as
// wg genkey clamps it.
func cmdGenkey(stdout, stderr io.Writer) error {
	if f, ok := stdout.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o077 != 0 {
			fmt.Fprintln(stderr, "Warning: writing to world accessible file.\nConsider setting the umask to 077 and trying again.")
		}
	}
	key, err := config.NewPrivateKey()
	if err != nil {
		return fmt.Errorf("genkey: %w", err)
	}
	_, err = fmt.Fprintln(stdout, config.EncodeKey(key))
	return err
}

// cmdPubkey reads a base64 private key on stdin and prints its public key.
func cmdPubkey(stdin io.Reader, stdout io.Writer) error {
	line, err := bufio.NewReader(io.LimitReader(stdin, 1024)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("pubkey: read stdin: %w", err)
	}
	key, err := config.ParseKey(line)
	if err != nil {
		return fmt.Errorf("pubkey: stdin: %w", err)
	}
	_, err = fmt.Fprintln(stdout, config.EncodeKey(tunnel.PublicKey(key)))
	return err
}
