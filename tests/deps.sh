#!/usr/bin/env bash
# deps.sh - install everything tagexport needs to build, test and demo on
# Debian 12.  Idempotent: does nothing when all packages are present.
set -euo pipefail

PACKAGES=(
	gcc make cmake pkg-config git curl jq iproute2 time bc ca-certificates
	libgit2-dev libcurl4-openssl-dev libyaml-dev libjansson-dev libssl-dev zlib1g-dev
	libmicrohttpd-dev libcmocka-dev
	libpq-dev postgresql # the server's postgres queue; tests run their own (pg_lib.sh)
	buildah runc containernetworking-plugins docker-registry skopeo busybox-static bash-static apache2-utils openssl
	clang-format python3 clang libclang-rt-14-dev
	wrk webhook perl
	openssh-server openssh-client lighttpd
	chromium
	golang-go golang-github-masterminds-sprig-dev # the Go oracle of tests/oracle
	golang-1.19-src libbz2-dev # Go's regexp test data (tests/unit/test_regex.c)
	qemu-user-static binfmt-support # foreign-platform Stapel shell stages (t25)
)

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

# t25 builds an arm64 base image from Debian's arm64 busybox-static (one
# file, extracted from the package: it cannot be installed next to the
# amd64 one) and runs it under qemu-user through binfmt_misc.
ARM64_BUSYBOX=/usr/local/lib/tagexport/busybox-arm64
arm64_extras() {
	local tmp
	mountpoint -q /proc/sys/fs/binfmt_misc ||
		$SUDO mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || true
	[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] ||
		$SUDO update-binfmts --enable qemu-aarch64 || true
	[ -x "$ARM64_BUSYBOX" ] && return 0
	[ "$(dpkg --print-architecture)" = arm64 ] && {
		$SUDO install -D -m 0755 /bin/busybox "$ARM64_BUSYBOX"
		return 0
	}
	dpkg --print-foreign-architectures | grep -qx arm64 || {
		$SUDO dpkg --add-architecture arm64
		$SUDO apt-get update -qq
	}
	tmp=$(mktemp -d)
	(cd "$tmp" && apt-get download -qq busybox-static:arm64 && dpkg-deb -x busybox-static_*_arm64.deb x) &&
		$SUDO install -D -m 0755 "$tmp/x/bin/busybox" "$ARM64_BUSYBOX"
	rm -rf "$tmp"
}

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	arm64_extras
	exit 0
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# The Debian packages start a system registry on :5000, sshd on :22,
# lighttpd on :80 and PostgreSQL on :5432 where systemd runs; tests and the
# demo start their own on free loopback ports instead.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	for unit in docker-registry ssh lighttpd postgresql; do
		$SUDO systemctl disable --now "$unit" >/dev/null 2>&1 || true
	done
fi
arm64_extras
