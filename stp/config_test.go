package stp

import (
	"errors"
	"testing"
	"time"
)

func TestConfigValidation(t *testing.T) {
	s := time.Second
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // "" for valid
	}{
		{"defaults", DefaultConfig(mac1), ""},
		{"zero timers take the defaults", Config{MAC: mac1}, ""},
		{"smallest timers", Config{MAC: mac1, HelloTime: 1 * s, MaxAge: 6 * s, ForwardDelay: 4 * s}, ""},
		{"largest timers", Config{MAC: mac1, HelloTime: 10 * s, MaxAge: 40 * s, ForwardDelay: 30 * s}, ""},
		{"fractional hello", Config{MAC: mac1, HelloTime: 1500 * time.Millisecond}, ""},
		{"hello too short", Config{MAC: mac1, HelloTime: 500 * time.Millisecond},
			"stp: hello_time 500ms: must be between 1s and 10s"},
		{"hello too long", Config{MAC: mac1, HelloTime: 11 * s},
			"stp: hello_time 11s: must be between 1s and 10s"},
		{"max age too short", Config{MAC: mac1, MaxAge: 5 * s},
			"stp: max_age 5s: must be between 6s and 40s"},
		{"max age too long", Config{MAC: mac1, MaxAge: 41 * s},
			"stp: max_age 41s: must be between 6s and 40s"},
		{"forward delay too short", Config{MAC: mac1, ForwardDelay: 3 * s},
			"stp: forward_delay 3s: must be between 4s and 30s"},
		{"forward delay too long", Config{MAC: mac1, ForwardDelay: 31 * s},
			"stp: forward_delay 31s: must be between 4s and 30s"},
		{"max age beyond the forward delay", Config{MAC: mac1, MaxAge: 30 * s, ForwardDelay: 15 * s},
			"stp: max_age 30s: must be at most 2*(forward_delay-1s) = 28s (forward_delay 15s)"},
		{"max age under the hello time", Config{MAC: mac1, HelloTime: 4 * s, MaxAge: 8 * s},
			"stp: max_age 8s: must be at least 2*(hello_time+1s) = 10s (hello_time 4s)"},
		{"zero address", Config{},
			"stp: address 000000000000: must be a unicast address, not all zeros"},
		{"group address", Config{MAC: GroupAddress},
			"stp: address 0180c2000000: must be a unicast address, not all zeros"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := New(tt.cfg, labEpoch)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				st := b.Status()
				if st.BridgeID != NewBridgeID(tt.cfg.Priority, tt.cfg.MAC) || !st.IsRoot() {
					t.Errorf("status %+v", st)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || err.Error() != tt.wantErr {
				t.Fatalf("New: %v, want %q", err, tt.wantErr)
			}
			// A rejected SetTimers changes nothing.
			ok, _ := New(DefaultConfig(mac1), labEpoch)
			if _, err := ok.SetTimers(tt.cfg.HelloTime, tt.cfg.MaxAge, tt.cfg.ForwardDelay, labEpoch); err == nil && ce.Field != "address" {
				t.Errorf("SetTimers accepted what New refused")
			}
			if st := ok.Status(); st.BridgeHelloTime != DefaultHelloTime || st.BridgeMaxAge != DefaultMaxAge || st.BridgeForwardDelay != DefaultForwardDelay {
				t.Errorf("rejected SetTimers changed the timers: %+v", st)
			}
		})
	}
}

func TestSetTimers(t *testing.T) {
	b, _ := New(DefaultConfig(mac1), labEpoch)
	if _, err := b.SetTimers(time.Second, 10*time.Second, 6*time.Second, labEpoch); err != nil {
		t.Fatal(err)
	}
	st := b.Status()
	if st.HelloTime != time.Second || st.MaxAge != 10*time.Second || st.ForwardDelay != 6*time.Second {
		t.Errorf("root does not use its new timers: %+v", st)
	}
	// A non-root keeps the root's timers in use.
	b.AddPort(1, DefaultPortConfig(), labEpoch)
	b.Enable(1, labEpoch)
	b.Receive(1, config(idR, 0, idR, 0), labEpoch)
	if _, err := b.SetTimers(0, 0, 0, labEpoch); err != nil {
		t.Fatal(err)
	}
	st = b.Status()
	if st.ForwardDelay != DefaultForwardDelay || st.BridgeForwardDelay != DefaultForwardDelay {
		t.Errorf("timers %+v", st)
	}
}

func TestPortValidation(t *testing.T) {
	tests := []struct {
		name    string
		no      PortNo
		cfg     PortConfig
		wantErr string
		is      error
	}{
		{"default", 1, DefaultPortConfig(), "", nil},
		{"zero config", 2, PortConfig{}, "", nil},
		{"largest", MaxPortNo, PortConfig{Priority: 240, PathCost: MaxPathCost}, "", nil},
		{"port 0", 0, DefaultPortConfig(), "stp: port 0: must be between 1 and 4095", nil},
		{"port 4096", 4096, DefaultPortConfig(), "stp: port 4096: must be between 1 and 4095", nil},
		{"odd priority", 3, PortConfig{Priority: 100}, "stp: port_priority 100: must be a multiple of 16 between 0 and 240", nil},
		{"cost too high", 3, PortConfig{PathCost: MaxPathCost + 1}, "stp: path_cost 200000001: must be between 1 and 200000000", nil},
		{"duplicate", 1, DefaultPortConfig(), "stp: add port 1: port exists", ErrPortExists},
	}
	b, _ := New(DefaultConfig(mac1), labEpoch)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.AddPort(tt.no, tt.cfg, labEpoch)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				p, _ := statusPort(b, tt.no)
				want := tt.cfg.PathCost
				if want == 0 {
					want = DefaultPathCost
				}
				if p.PathCost != want {
					t.Errorf("path cost %d, want %d", p.PathCost, want)
				}
				if p.State != Disabled || p.ID != NewPortID(tt.cfg.Priority, tt.no) {
					t.Errorf("new port %+v", p)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Fatalf("AddPort: %v, want %q", err, tt.wantErr)
			}
		})
	}
	if _, err := b.SetPortCost(1, MaxPathCost+1, labEpoch); err == nil {
		t.Error("SetPortCost accepted a cost out of range")
	}
	if _, err := b.SetPortPriority(1, 8, labEpoch); err == nil {
		t.Error("SetPortPriority accepted 8")
	}
	for name, f := range map[string]func() ([]Action, error){
		"SetPortCost":     func() ([]Action, error) { return b.SetPortCost(99, 1, labEpoch) },
		"SetPortPriority": func() ([]Action, error) { return b.SetPortPriority(99, 16, labEpoch) },
		"SetRootGuard":    func() ([]Action, error) { return b.SetRootGuard(99, true, labEpoch) },
		"RemovePort":      func() ([]Action, error) { return b.RemovePort(99, labEpoch) },
	} {
		if _, err := f(); !errors.Is(err, ErrNoSuchPort) {
			t.Errorf("%s on an unknown port: %v", name, err)
		}
	}
	if acts, err := b.SetPortCost(1, 0, labEpoch); err != nil || acts != nil {
		t.Errorf("SetPortCost 0: %v %v", acts, err)
	}
	if p, _ := statusPort(b, 1); p.PathCost != DefaultPathCost {
		t.Errorf("cost 0 gives %d", p.PathCost)
	}
}
