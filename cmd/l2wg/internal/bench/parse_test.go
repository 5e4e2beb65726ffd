package main

import (
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// Trimmed iperf3 3.12 -J output: the parts the benchmark reads, in their
// real places.
const (
	iperfTCPJSON = `{
	"start":	{"version":	"iperf 3.12"},
	"intervals":	[],
	"end":	{
		"streams":	[],
		"sum_sent":	{"start": 0, "end": 10.00048, "seconds": 10.00048, "bytes": 2806120448, "bits_per_second": 2243819325.1, "retransmits": 9, "sender": true},
		"sum_received":	{"start": 0, "end": 10.001099, "seconds": 10.001099, "bytes": 2806054647, "bits_per_second": 2242379342.7, "sender": true},
		"cpu_utilization_percent":	{"host_total": 50.1}
	}
}
`
	iperfUDPJSON = `warning: UDP block size 1472 exceeds TCP MSS 1448, may result in fragmentation / drops
{
	"start":	{"version":	"iperf 3.12"},
	"intervals":	[],
	"end":	{
		"streams":	[],
		"sum":	{"start": 0, "end": 3.000163, "seconds": 3.000163, "bytes": 62449600, "bits_per_second": 499555336.9, "jitter_ms": 0.0028, "lost_packets": 1566, "packets": 42425, "lost_percent": 3.69, "sender": true},
		"sum_sent":	{"start": 0, "end": 3.000083, "seconds": 3.000083, "bytes": 62449600, "bits_per_second": 499555336.9, "jitter_ms": 0, "lost_packets": 0, "packets": 42425, "lost_percent": 0, "sender": true},
		"sum_received":	{"start": 0, "end": 3.000163, "seconds": 3.000163, "bytes": 60144448, "bits_per_second": 481077168.4, "jitter_ms": 0.0028, "lost_packets": 1566, "packets": 42425, "lost_percent": 3.69, "sender": false}
	}
}
`
	iperfErrorJSON = `{
	"start":	{"connected":	[], "version":	"iperf 3.12"},
	"intervals":	[],
	"end":	{
	},
	"error":	"unable to connect to server: Connection refused"
}
`
)

func TestParseIperf(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    iperfResult
		wantErr string
	}{
		{"TCP", iperfTCPJSON, iperfResult{Mbps: 2242.3793427, Bytes: 2806054647}, ""},
		{"UDP after a warning", iperfUDPJSON, iperfResult{Mbps: 481.0771684, Bytes: 60144448, LostPercent: 3.69}, ""},
		{"iperf3 error", iperfErrorJSON, iperfResult{}, "iperf3: unable to connect to server: Connection refused"},
		{"no JSON", "iperf3: error - unable to connect\n", iperfResult{}, "no JSON"},
		{"nothing received", `{"end": {"sum_received": {"bytes": 0}}}`, iperfResult{}, "receiver got nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseIperf([]byte(tt.out))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseIperf error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseIperf: %v", err)
			}
			if math.Abs(got.Mbps-tt.want.Mbps) > 1e-6 || got.Bytes != tt.want.Bytes || got.LostPercent != tt.want.LostPercent {
				t.Errorf("parseIperf = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestIperfArgs(t *testing.T) {
	tests := []struct {
		name string
		test iperfTest
		want string
	}{
		{"TCP", iperfTest{Seconds: 10, Streams: 1}, "iperf3 -c 192.168.77.21 -p 5201 -t 10 -J"},
		{"TCP 4", iperfTest{Seconds: 10, Streams: 4}, "iperf3 -c 192.168.77.21 -p 5201 -t 10 -J -P 4"},
		{"UDP", iperfTest{Seconds: 3, UDPLen: 1472, UDPRate: "2G"}, "iperf3 -c 192.168.77.21 -p 5201 -t 3 -J -u -l 1472 -b 2G"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(tt.test.args(vmAddr2), " "); got != tt.want {
				t.Errorf("args = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParsePingTimes(t *testing.T) {
	out := `PING 192.168.77.21 (192.168.77.21) 56(84) bytes of data.
64 bytes from 192.168.77.21: icmp_seq=1 ttl=64 time=0.313 ms
From 192.168.77.11 icmp_seq=2 Destination Host Unreachable
64 bytes from 192.168.77.21: icmp_seq=3 ttl=64 time=12.5 ms
64 bytes from 192.168.77.21: icmp_seq=4 ttl=64 time=1.02 s
64 bytes from 192.168.77.21: icmp_seq=5 ttl=64 (truncated)

--- 192.168.77.21 ping statistics ---
5 packets transmitted, 4 received, +1 errors, 20% packet loss, time 40ms
rtt min/avg/max/mdev = 0.313/341.0/1020.0/480.1 ms
`
	want := []float64{0.313, 12.5, 1020}
	if got := parsePingTimes([]byte(out)); !slices.Equal(got, want) {
		t.Errorf("parsePingTimes = %v, want %v", got, want)
	}
	r := summarizeRTT(want, 5)
	if r.Sent != 5 || r.Received != 3 || r.P99 != 1020 || math.Abs(r.Mean-344.271) > 0.001 {
		t.Errorf("summarizeRTT = %+v", r)
	}
}

func TestPingDiag(t *testing.T) {
	tests := []struct {
		name, out, want string
	}{
		{"local error", "PING x\nping: local error: message too long, mtu=1450\n\n--- x ping statistics ---\n1 packets transmitted, 0 received, +1 errors, 100% packet loss, time 0ms\n",
			"ping: local error: message too long, mtu=1450"},
		{"frag needed", "PING x\nFrom 192.168.77.11 icmp_seq=1 Frag needed and DF set (mtu = 1450)\n\n--- x ping statistics ---\n1 packets transmitted, 0 received\n",
			"From 192.168.77.11 icmp_seq=1 Frag needed and DF set (mtu = 1450)"},
		{"silence", "PING x\n\n--- x ping statistics ---\n1 packets transmitted, 0 received, 100% packet loss, time 0ms\n",
			"1 packets transmitted, 0 received, 100% packet loss, time 0ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pingDiag([]byte(tt.out)); got != tt.want {
				t.Errorf("pingDiag = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseCPUSeconds(t *testing.T) {
	// A comm with a space and a parenthesis, utime 1234, stime 566.
	stat := "4711 (wire guard) x) S 1 4711 4711 0 -1 4194560 2130 0 0 0 1234 566 0 0 20 0 9 0 218104 2998272 392 18446744073709551615\n"
	got, err := parseCPUSeconds([]byte(stat))
	if err != nil || got != 18 {
		t.Errorf("parseCPUSeconds = %v, %v, want 18", got, err)
	}
	if _, err := parseCPUSeconds([]byte("4711 (x) S 1 2")); err == nil {
		t.Error("parseCPUSeconds accepted a short line")
	}
}

func TestParseVmHWM(t *testing.T) {
	status := "Name:\tl2wg\nVmPeak:\t 1300000 kB\nVmHWM:\t   65536 kB\nVmRSS:\t   30000 kB\n"
	got, err := parseVmHWM([]byte(status))
	if err != nil || got != 65536*1024 {
		t.Errorf("parseVmHWM = %v, %v, want %d", got, err, 65536*1024)
	}
	if _, err := parseVmHWM([]byte("Name:\tx\n")); err == nil {
		t.Error("parseVmHWM accepted a status without VmHWM")
	}
}

func TestParseFastdKeys(t *testing.T) {
	out := "Secret: a099738caa7c4c9464e8309f9185b9428e4a80cedf40186ce596c8df2a08c470\nPublic: 99913c92cecfde1c787ce3744ab0a2101a84d90bf00a16af5c234bd55b81ffe7\n"
	k, err := parseFastdKeys(out)
	if err != nil || !strings.HasPrefix(k.Private, "a0997") || !strings.HasPrefix(k.Public, "99913") {
		t.Errorf("parseFastdKeys = %+v, %v", k, err)
	}
	if _, err := parseFastdKeys("Secret: a0\n"); err == nil {
		t.Error("parseFastdKeys accepted output without a public key")
	}
}

func TestCommandLine(t *testing.T) {
	got := commandLine([]string{"-reps", "3", "-out", "my results.md", "-only", "l2wg,tinc"})
	want := "go run ./cmd/l2wg/internal/bench -reps 3 -out 'my results.md' -only l2wg,tinc"
	if got != want {
		t.Errorf("commandLine = %q, want %q", got, want)
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-quick", "-reps", "5"})
	if err != nil || o.Reps != 1 || o.Seconds != 3 || o.IdlePings != 100 {
		t.Errorf("-quick: %+v, %v; want 1 repetition of 3 s tests", o, err)
	}
	o, err = parseFlags([]string{"-rtt", "-ping-interval", "200ms"})
	if err != nil || !o.RTTOnly || o.IdleGap != 200*time.Millisecond {
		t.Errorf("-rtt -ping-interval 200ms: %+v, %v", o, err)
	}
	if _, err := parseFlags([]string{"-reps", "0"}); err == nil {
		t.Error("-reps 0 accepted")
	}
	if _, err := parseFlags([]string{"extra"}); err == nil {
		t.Error("a stray argument accepted")
	}
}

func TestSelectContestants(t *testing.T) {
	keys := func(cs []contestant) string {
		var k []string
		for _, c := range cs {
			k = append(k, c.Key())
		}
		return strings.Join(k, ",")
	}
	tests := []struct {
		name string
		o    options
		want string
	}{
		{"default", options{}, "wg,vxlan,tinc,l2wg"},
		{"fastd", options{Fastd: true}, "wg,vxlan,tinc,fastd,l2wg"},
		{"only, in run order", options{Only: "l2wg, wg,fastd"}, "wg,fastd,l2wg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, err := selectContestants(binaries{}, tt.o)
			if err != nil || keys(cs) != tt.want {
				t.Errorf("selectContestants = %q, %v, want %q", keys(cs), err, tt.want)
			}
		})
	}
	if _, err := selectContestants(binaries{}, options{Only: "openvpn"}); err == nil {
		t.Error("unknown contestant accepted")
	}
	cs, err := selectContestants(binaries{L2WG: "a", L2WGB: "b"}, options{Only: "l2wg-b,fastd,l2wg"})
	if err != nil || keys(cs) != "fastd,l2wg,l2wg-b" || cs[2].(l2wg).bin != "b" {
		t.Errorf("-l2wg-b: %q, %v, want fastd,l2wg,l2wg-b with the second binary last", keys(cs), err)
	}
}

func TestParseStartTicks(t *testing.T) {
	stat := "4711 (wire guard) x) S 1 4711 4711 0 -1 4194560 2130 0 0 0 1234 566 0 0 20 0 9 0 218104 2998272 392 18446744073709551615\n"
	got, err := parseStartTicks([]byte(stat))
	if err != nil || got != 218104 {
		t.Errorf("parseStartTicks = %v, %v, want 218104", got, err)
	}
	if _, err := parseStartTicks([]byte("4711 (x) S 1 2 3 4 5 6 7 8 9 10 11 12")); err == nil {
		t.Error("parseStartTicks accepted a short line")
	}
}

// sinceFirstStart of this test process is its age: not negative, and it
// grows with the wall clock.
func TestSinceFirstStart(t *testing.T) {
	a, err := sinceFirstStart([]int{os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	b, err := sinceFirstStart([]int{os.Getpid(), os.Getppid()})
	if err != nil {
		t.Fatal(err)
	}
	if a < 0 || b < a+0.03 {
		t.Errorf("sinceFirstStart: %.2f s, then %.2f s 50 ms later with the parent too; want a >= 0 and b >= a + 0.03", a, b)
	}
}
