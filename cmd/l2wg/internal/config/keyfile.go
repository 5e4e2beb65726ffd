package config

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/l2wg/l2wg/tunnel"
)

// NewPrivateKey makes a Curve25519 private key, clamped as wg genkey clamps
// it (WireGuard clamps again on use, so either works).
func NewPrivateKey() ([32]byte, error) {
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return key, fmt.Errorf("make key: %w", err)
	}
	key[0] &= 248
	key[31] = key[31]&127 | 64
	return key, nil
}

// KeyPair is a key pair in base64, as wg genkey and wg pubkey print them.
type KeyPair struct {
	Private string `json:"-"`
	Public  string `json:"public"`
}

// NewKeyPair makes a private key and its public key, in base64.
func NewKeyPair() (KeyPair, error) {
	key, err := NewPrivateKey()
	if err != nil {
		return KeyPair{}, err
	}
	pub := tunnel.PublicKey(key)
	return KeyPair{Private: EncodeKey(key), Public: EncodeKey(pub)}, nil
}

// EncodeKey is a key in base64, as WireGuard writes it.
func EncodeKey(key [32]byte) string { return base64.StdEncoding.EncodeToString(key[:]) }

// ParseKey decodes a base64 WireGuard key.
func ParseKey(s string) ([32]byte, error) {
	var key [32]byte
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != 32 {
		return key, errors.New("not a WireGuard key (want 44 characters of base64 encoding 32 bytes, as from l2wg genkey / wg genkey)")
	}
	copy(key[:], b)
	return key, nil
}

// ReadKeyFile reads a private key file as written by wg genkey.
func ReadKeyFile(path string) ([32]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return [32]byte{}, err
	}
	return ParseKey(string(data))
}
