// Package dist holds l2wg's release packaging, not Go code: dist.sh builds
// the static binaries (make cross) and a Debian package per architecture in
// targets (make dist) from control, the maintainer scripts, the example
// node.toml here, the systemd unit in ../systemd and the man page in ../man.
// Its tests check the man page against the README's reference and build,
// install, verify and remove the amd64 package.
package dist
