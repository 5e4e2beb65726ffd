#!/bin/sh
# dist.sh OUT VERSION [TARGET...]: static l2wg binaries in OUT, and a Debian
# package for each target that has a Debian architecture. make cross and
# make dist call it; the packaging test calls it for amd64.
#
# A target is GOARCH[-variant]:debian-arch, the variant being GOARM for arm
# and GOMIPS for mips; "-" as the Debian architecture builds the binary only.
# With BINARIES_ONLY=1 no package is built (make cross); with CHECK_ONLY=1
# nothing is written, every package is compiled (make arch-test).
set -eu

out=$1 version=$2
shift 2
[ $# -gt 0 ] || set -- $(cat "$(dirname "$0")/targets")
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)

# A Debian version starts with a digit: a tag v1.2 (v1.2-3-gabc after it)
# becomes 1.2 (1.2+3+gabc); a bare commit (no tag yet) 0~gabc, also when
# its hash begins with a digit.
debversion=$(printf '%s' "$version" | sed -e 's/^v//' -e 's/-/+/g')
case $version in
v[0-9]*.* | [0-9]*.*) ;;
*) debversion="0~g$debversion" ;;
esac

for target in "$@"; do
	goarch=${target%%:*} debarch=${target#*:}
	arch=${goarch%%-*} variant=
	[ "$arch" = "$goarch" ] || variant=${goarch#*-}
	bin="$out/l2wg-linux-$goarch"
	case $arch in
	arm) export GOARM=${variant:-7} ;;
	mips | mipsle) export GOMIPS=${variant:-softfloat} ;;
	esac
	if [ "${CHECK_ONLY:-}" = 1 ]; then
		# make arch-test: does every package compile? With go test's flags,
		# so the test builds of 386, arm and arm64 reuse these.
		echo "build ./... for linux/$goarch"
		(cd "$top" && CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build ./...)
		continue
	fi
	echo "build $bin"
	(cd "$top" && CGO_ENABLED=0 GOOS=linux GOARCH=$arch \
		go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$bin" ./cmd/l2wg)
	[ "${BINARIES_ONLY:-}" != 1 ] && [ "$debarch" != - ] || continue

	root=$(mktemp -d)
	chmod 0755 "$root" # the package's ./ (mktemp makes it 0700)
	trap 'rm -rf "$root"' EXIT
	install -D -m 0755 "$bin" "$root/usr/bin/l2wg"
	install -d -m 0755 "$root/lib/systemd/system"
	sed 's|/usr/local/bin/l2wg|/usr/bin/l2wg|g' "$top/cmd/l2wg/systemd/l2wg@.service" >"$root/lib/systemd/system/l2wg@.service"
	chmod 0644 "$root/lib/systemd/system/l2wg@.service"
	install -D -m 0644 "$here/node.toml" "$root/etc/l2wg/node.toml"
	install -d -m 0755 "$root/usr/share/man/man8"
	gzip -9n <"$top/cmd/l2wg/man/l2wg.8" >"$root/usr/share/man/man8/l2wg.8.gz"
	chmod 0644 "$root/usr/share/man/man8/l2wg.8.gz"
	install -D -m 0644 "$top/cmd/l2wg/systemd/README-ops.md" "$root/usr/share/doc/l2wg/README-ops.md"
	install -d -m 0755 "$root/DEBIAN"
	size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
	sed -e "s/@VERSION@/$debversion/" -e "s/@ARCH@/$debarch/" -e "s/@SIZE@/$size/" "$here/control" >"$root/DEBIAN/control"
	echo /etc/l2wg/node.toml >"$root/DEBIAN/conffiles"
	for script in postinst prerm postrm; do
		install -m 0755 "$here/$script" "$root/DEBIAN/$script"
	done
	deb="$out/l2wg_${debversion}_$debarch.deb"
	dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
	echo "package $deb"
	rm -rf "$root"
	trap - EXIT
done
