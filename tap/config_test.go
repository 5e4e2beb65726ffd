package tap

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // substring of the error; "" for none
	}{
		{"minimal", Config{Name: "l2wg0"}, ""},
		{"full", Config{Name: "l2wg0", MTU: 9000, MAC: [6]byte{2, 0, 0, 0, 0, 1}, Bridge: "br0", Persistent: true, Offload: true}, ""},
		{"fifteen bytes", Config{Name: "abcdefghijklmno"}, ""},
		{"no name", Config{}, "name: is required"},
		{"sixteen bytes", Config{Name: "abcdefghijklmnop"}, `name: "abcdefghijklmnop" is 16 bytes: must be at most 15`},
		{"slash", Config{Name: "a/b"}, "must not contain"},
		{"space", Config{Name: "a b"}, "must not contain"},
		{"dot", Config{Name: "."}, "not a valid interface name"},
		{"mtu low", Config{Name: "t", MTU: 67}, "mtu 67: must be between 68 and 65535"},
		{"mtu high", Config{Name: "t", MTU: 65536}, "mtu 65536: must be between 68 and 65535"},
		{"mtu negative", Config{Name: "t", MTU: -1}, "mtu -1"},
		{"multicast mac", Config{Name: "t", MAC: [6]byte{1, 0, 0x5e, 0, 0, 1}}, "mac 01:00:5e:00:00:01: must be a unicast address"},
		{"bridge name", Config{Name: "t", Bridge: "br:0"}, "bridge name:"},
		{"own bridge", Config{Name: "t", Bridge: "t"}, "its own bridge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("validate = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("validate = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	_, err := Open(Config{Name: "t", MTU: 10})
	if err == nil || err.Error() != `open tap "t": mtu 10: must be between 68 and 65535` {
		t.Errorf("Open = %v", err)
	}
}
