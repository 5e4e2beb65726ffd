package frag

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteFuzzCorpus regenerates the seed corpora under testdata/fuzz when
// FRAG_WRITE_CORPUS=1; go test runs them as seeds of the fuzz targets.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("FRAG_WRITE_CORPUS") != "1" {
		t.Skip("set FRAG_WRITE_CORPUS=1 to regenerate testdata/fuzz")
	}
	write := func(target, name string, values ...string) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		text := "go test fuzz v1\n"
		for _, v := range values {
			text += v + "\n"
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, seed := range reassembleSeeds() {
		write("FuzzReassemble", fmt.Sprintf("seed%02d", i), fmt.Sprintf("[]byte(%q)", seed))
	}
	roundTrips := []struct {
		name     string
		frame    []byte
		maxChunk uint16
		offload  []byte
		seed     uint64
	}{
		{"superframe-1392-offload", printable(MaxFrameLen), 1392, []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 10},
		{"1514-576", randomBytes(11, 1514), 576, nil, 11},
		{"1419-1420", randomBytes(12, 1419), 1420, nil, 12},
		{"1409-1420-offload", randomBytes(13, 1409), 1420, []byte{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}, 13},
		{"14-min", randomBytes(14, MinFrameLen), 16, nil, 14},
		{"13-refused", randomBytes(15, 13), 1420, nil, 15},
		{"200-minchunk", randomBytes(16, 200), MinChunk, nil, 16},
		{"200-below-minchunk", randomBytes(17, 200), MinChunk - 1, nil, 17},
	}
	for _, rt := range roundTrips {
		write("FuzzRoundTrip", rt.name, fmt.Sprintf("[]byte(%q)", rt.frame), fmt.Sprintf("uint16(%d)", rt.maxChunk),
			fmt.Sprintf("[]byte(%q)", rt.offload), fmt.Sprintf("uint64(%d)", rt.seed))
	}
}

// printable returns n bytes of text, which the corpus stores compactly.
func printable(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}
