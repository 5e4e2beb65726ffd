package config

// File is node.toml as written. Every field is optional in TOML; defaults
// and ranges come from the table of keys (keys.go) and are applied by
// Parse. Marshal writes a File back (the one node.toml writer: the lab and
// the benchmark use it too).
type File struct {
	PrivateKeyFile string `toml:"private_key_file,omitempty"`
	ListenPort     *int   `toml:"listen_port,omitempty"`
	IsolateHost    *bool  `toml:"isolate_host,omitempty"`
	LogLevel       string `toml:"log_level,omitempty"`
	MetricsListen  string `toml:"metrics_listen,omitempty"`

	TAP    FileTAP    `toml:"tap,omitempty"`
	Tunnel FileTunnel `toml:"tunnel,omitempty"`
	Switch FileSwitch `toml:"switch,omitempty"`
	STP    FileSTP    `toml:"stp,omitempty"`
	Mesh   FileMesh   `toml:"mesh,omitempty"`

	Peers []FilePeer `toml:"peer,omitempty"`
}

// FileTAP is the [tap] table.
type FileTAP struct {
	Name       string  `toml:"name,omitempty"`
	MTU        *int    `toml:"mtu,omitempty"`
	Bridge     string  `toml:"bridge,omitempty"`
	Persistent bool    `toml:"persistent,omitempty"`
	Offload    *bool   `toml:"offload,omitempty"`
	VLANs      *string `toml:"vlans,omitempty"`
	Untagged   *bool   `toml:"untagged,omitempty"`
}

// FileTunnel is the [tunnel] table.
type FileTunnel struct {
	MTU                  *int   `toml:"mtu,omitempty"`
	ProbeInterval        string `toml:"probe_interval,omitempty"`
	ProbeLoss            *int   `toml:"probe_loss,omitempty"`
	ReassemblyTimeout    string `toml:"reassembly_timeout,omitempty"`
	ReassemblyPeerBytes  *int   `toml:"reassembly_peer_bytes,omitempty"`
	ReassemblyTotalBytes *int   `toml:"reassembly_total_bytes,omitempty"`
	ReresolveAfter       string `toml:"reresolve_after,omitempty"`
}

// FileSwitch is the [switch] table.
type FileSwitch struct {
	AgeingTime    string `toml:"ageing_time,omitempty"`
	MaxFDBEntries *int   `toml:"max_fdb_entries,omitempty"`
	StormLimit    *int   `toml:"storm_limit,omitempty"`
}

// FileSTP is the [stp] table.
type FileSTP struct {
	Enabled      *bool  `toml:"enabled,omitempty"`
	Priority     *int   `toml:"priority,omitempty"`
	HelloTime    string `toml:"hello_time,omitempty"`
	MaxAge       string `toml:"max_age,omitempty"`
	ForwardDelay string `toml:"forward_delay,omitempty"`
	TAP          string `toml:"tap,omitempty"`
	TAPCost      *int   `toml:"tap_cost,omitempty"`
	BPDUGuard    bool   `toml:"bpdu_guard,omitempty"`
	Protocol     string `toml:"protocol,omitempty"`
}

// FileMesh is the [mesh] table.
type FileMesh struct {
	Protocol string `toml:"protocol,omitempty"`
}

// FilePeer is one [[peer]].
type FilePeer struct {
	Name                string  `toml:"name,omitempty"`
	PublicKey           string  `toml:"public_key,omitempty"`
	Endpoint            string  `toml:"endpoint,omitempty"`
	PersistentKeepalive *int    `toml:"persistent_keepalive,omitempty"`
	Cost                any     `toml:"cost,omitempty"` // an integer, or "auto"
	VLANs               *string `toml:"vlans,omitempty"`
	Untagged            *bool   `toml:"untagged,omitempty"`
}

// Ptr returns a pointer to v, for the optional fields of a File.
func Ptr[T any](v T) *T { return &v }
