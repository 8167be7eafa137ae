#!/usr/bin/env bash
# Installs the XLA CPU PJRT plugin that models/device picks up when present, and prints its path.
#
# The plugin is OpenXLA's //xla/pjrt/c:pjrt_c_api_cpu_plugin.so as published on PyPI in the wheel
# lammps-jax-pjrt-cpu 0.11.2 (built from XLA commit 91888df6ce85102c30220e41d952065925e10886, the XLA of
# jaxlib 0.11.2; Apache-2.0, notices shipped next to the plugin). Only the wheel is fetched, with pip
# download --no-deps and a pinned sha256; nothing is imported or run with Python.
#
# Destination: $SQA_PJRT_CPU_DIR if set, else ${XDG_CACHE_HOME:-$HOME/.cache}/llama-adapter/pjrt-cpu/<version>/
# (the folder models/device looks in). Running it again when the plugin is there and intact does nothing.
#
# Exit status: 0 and the plugin's absolute path on stdout when installed; otherwise a warning on stderr and
# a non-zero status, never anything on stdout, so callers can write: if p=$(.ci/install-pjrt-cpu.sh); then ...
set -uo pipefail

readonly PACKAGE=lammps-jax-pjrt-cpu
readonly VERSION=0.11.2
readonly WHEEL=lammps_jax_pjrt_cpu-0.11.2-py3-none-manylinux_2_27_x86_64.whl
readonly WHEEL_SHA256=1319390d948b39f69f7dade496b7c385149d9ca6097a6b62114da113216d9ad1
readonly SO_IN_WHEEL=lammps_jax_pjrt_cpu/pjrt_c_api_cpu_plugin.so
readonly SO_SHA256=ad1309ac822b1b24d51b7f9947c7c9fa9ef5d67f390584cbc3d1fa2428fed9c2
readonly XLA_COMMIT=91888df6ce85102c30220e41d952065925e10886
# The file name keeps go-xla's plugin naming (pjrt_c_api_<name>_plugin.so).
readonly SO_NAME=pjrt_c_api_cpu_plugin.so

warn() { echo "install-pjrt-cpu: WARNING: $*" >&2; }

cache_root=${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}
dest=${SQA_PJRT_CPU_DIR:-$cache_root/llama-adapter/pjrt-cpu/$VERSION}
plugin=$dest/$SO_NAME

# shellcheck source=.ci/wheel-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/wheel-lib.sh"

if [[ -f $plugin && $(sha256_of "$plugin") == "$SO_SHA256" ]]; then
	echo "$plugin"
	exit 0
fi

if [[ $(uname -s) != Linux || $(uname -m) != x86_64 ]]; then
	warn "$PACKAGE $VERSION is only built for linux x86_64 (this is $(uname -s) $(uname -m)); not installed"
	exit 2
fi

if ! find_pip; then
	warn "neither pip3 nor python3 -m pip is available; cannot fetch $PACKAGE $VERSION"
	exit 3
fi

if ! mkdir -p "$dest"; then
	warn "cannot create $dest"
	exit 4
fi
# Work next to the destination so the final mv is a rename on one file system.
tmp=$(mktemp -d "$dest/.install.XXXXXX") || {
	warn "cannot create a temporary folder in $dest"
	exit 4
}
trap 'rm -rf "$tmp"' EXIT

echo "$PACKAGE==$VERSION --hash=sha256:$WHEEL_SHA256" >"$tmp/requirements.txt"
# --platform/--only-binary: the wheel is fetched as a file; whether this Python could install it is irrelevant.
if ! "${pip_cmd[@]}" download --quiet --no-deps --require-hashes --only-binary=:all: \
	--platform manylinux_2_27_x86_64 --python-version 3 --implementation py \
	--disable-pip-version-check --timeout 60 --retries 3 -d "$tmp/wheel" -r "$tmp/requirements.txt" >&2; then
	warn "pip download of $PACKAGE==$VERSION failed"
	exit 5
fi
whl=$tmp/wheel/$WHEEL
if [[ ! -f $whl || $(sha256_of "$whl") != "$WHEEL_SHA256" ]]; then
	warn "downloaded wheel $whl is missing or its sha256 is not $WHEEL_SHA256"
	exit 6
fi

for member in "$SO_IN_WHEEL" lammps_jax_pjrt_cpu-$VERSION.dist-info/licenses/LICENSE \
	lammps_jax_pjrt_cpu-$VERSION.dist-info/licenses/THIRD_PARTY_NOTICES; do
	if ! extract "$whl" "$member" "$tmp/$(basename "$member")"; then
		warn "cannot extract $member from $whl"
		exit 7
	fi
done
if [[ $(sha256_of "$tmp/$(basename "$SO_IN_WHEEL")") != "$SO_SHA256" ]]; then
	warn "extracted $SO_IN_WHEEL does not have sha256 $SO_SHA256"
	exit 8
fi
chmod 0755 "$tmp/$(basename "$SO_IN_WHEEL")"

# plugin.json is read by models/device to report where the plugin came from.
cat >"$tmp/plugin.json" <<EOF
{
  "package": "$PACKAGE",
  "version": "$VERSION",
  "wheel": "$WHEEL",
  "wheel_sha256": "$WHEEL_SHA256",
  "plugin_sha256": "$SO_SHA256",
  "xla_commit": "$XLA_COMMIT",
  "license": "Apache-2.0"
}
EOF
if ! { mv -f "$tmp/LICENSE" "$tmp/THIRD_PARTY_NOTICES" "$tmp/plugin.json" "$dest/" &&
	mv -f "$tmp/$(basename "$SO_IN_WHEEL")" "$plugin"; }; then
	warn "cannot move the plugin into $dest"
	exit 9
fi
echo "$plugin"
