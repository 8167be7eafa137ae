#!/usr/bin/env bash
# Installs Jupyter (Debian packages) and the GoNB Go kernel, then executes every notebook in notebooks/ headless,
# failing on the first cell error of any notebook.
#
# Usage: .ci/notebooks.sh [--check] [--no-install] [notebooks/NN-name.ipynb ...]
#   (default)     execute and write the outputs back into the notebooks (to commit them)
#   --check       execute into a temporary folder: the working tree is left untouched (CI)
#   --no-install  skip the install steps (everything already present)
# With no notebook named, all of notebooks/*.ipynb run, in name order.
#
# Installed (each step is skipped when already in place, so a second run only executes the notebooks):
#   apt-get: jupyter-nbconvert python3-ipykernel   (Debian 12 names; jupyter-nbconvert pulls python3-nbconvert,
#            python3-nbclient and python3-jupyter-client)
#   go:      github.com/janpfeifer/gonb@v0.11.5 (the version GoMLX v0.28.8 pins), golang.org/x/tools/cmd/goimports@v0.52.0
#            and golang.org/x/tools/gopls@v0.23.0 (GoNB runs goimports on every cell and gopls for completion; gopls
#            v0.24 needs Go 1.27)
#   kernel:  gonb --install (writes $(jupyter --data-dir)/kernels/gonb/kernel.json)
set -euo pipefail
cd "$(dirname "$0")/.."

GONB_VERSION=v0.11.5
TOOLS_VERSION=v0.52.0 # golang.org/x/tools, for goimports
GOPLS_VERSION=v0.23.0
TIMEOUT=600 # seconds per cell

check=0
install=1
notebooks=()
for arg in "$@"; do
  case "$arg" in
  --check) check=1 ;;
  --no-install) install=0 ;;
  -h | --help)
    sed -n '2,10p' "$0"
    exit 0
    ;;
  -*)
    echo "notebooks.sh: unknown flag $arg" >&2
    exit 2
    ;;
  *) notebooks+=("$arg") ;;
  esac
done
if [ ${#notebooks[@]} -eq 0 ]; then
  notebooks=(notebooks/*.ipynb)
fi

gobin="$(go env GOBIN)"
if [ -z "$gobin" ]; then
  gobin="$(go env GOPATH)/bin"
fi
export PATH="$gobin:$PATH"

# has_version BINARY MODULE VERSION: the Go binary exists and was built from MODULE at VERSION.
has_version() {
  [ -x "$gobin/$1" ] && go version -m "$gobin/$1" 2>/dev/null | grep -Eq "^[[:space:]]+(mod|dep)[[:space:]]+$2[[:space:]]+$3([[:space:]]|$)"
}

sudo_if_needed() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_all() {
  if ! dpkg -s jupyter-nbconvert python3-ipykernel >/dev/null 2>&1; then
    echo "notebooks.sh: installing jupyter-nbconvert python3-ipykernel (apt-get)"
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      jupyter-nbconvert python3-ipykernel >/dev/null
  fi

  if ! has_version gonb github.com/janpfeifer/gonb "$GONB_VERSION"; then
    echo "notebooks.sh: installing gonb $GONB_VERSION"
    if ! go install "github.com/janpfeifer/gonb@$GONB_VERSION"; then
      # `go install pkg@version` also asks the proxy for the module's version list (deprecation check); a proxy that
      # serves the version but not the list fails that. Building from a scratch module pins the same version.
      echo "notebooks.sh: go install failed; building gonb $GONB_VERSION from a scratch module"
      tmp="$(mktemp -d)"
      (cd "$tmp" && go mod init gonbbuild >/dev/null 2>&1 &&
        go get "github.com/janpfeifer/gonb@$GONB_VERSION" >/dev/null 2>&1 &&
        go build -o "$gobin/gonb" github.com/janpfeifer/gonb)
      rm -rf "$tmp"
    fi
  fi
  if ! has_version goimports golang.org/x/tools "$TOOLS_VERSION"; then
    echo "notebooks.sh: installing goimports ($TOOLS_VERSION)"
    go install "golang.org/x/tools/cmd/goimports@$TOOLS_VERSION"
  fi
  if ! has_version gopls golang.org/x/tools/gopls "$GOPLS_VERSION"; then
    echo "notebooks.sh: installing gopls $GOPLS_VERSION"
    go install "golang.org/x/tools/gopls@$GOPLS_VERSION"
  fi

  local spec
  spec="$(jupyter --data-dir)/kernels/gonb/kernel.json"
  if ! grep -q "\"$gobin/gonb\"" "$spec" 2>/dev/null; then
    echo "notebooks.sh: registering the GoNB kernel"
    gonb --install >/dev/null 2>&1
    grep -q "\"$gobin/gonb\"" "$spec" || {
      echo "notebooks.sh: gonb --install did not write $spec" >&2
      exit 1
    }
  fi
}

if [ $install -eq 1 ]; then
  install_all
fi

outdir=""
if [ $check -eq 1 ]; then
  outdir="$(mktemp -d)"
fi
logdir="$(mktemp -d)"
trap 'rm -rf "$logdir" ${outdir:+"$outdir"}' EXIT

failed=()
for nb in "${notebooks[@]}"; do
  name="$(basename "$nb" .ipynb)"
  args=(--to notebook --execute "--ExecutePreprocessor.timeout=$TIMEOUT" --ExecutePreprocessor.kernel_name=gonb
    --ExecutePreprocessor.record_timing=False)
  if [ $check -eq 1 ]; then
    args+=(--output-dir "$outdir")
  else
    args+=(--inplace)
  fi
  start=$(date +%s)
  # The kernel logs to stderr; keep it out of the way unless the notebook fails.
  if jupyter nbconvert "${args[@]}" "$nb" >"$logdir/$name.log" 2>&1; then
    echo "notebooks.sh: $nb ok ($(($(date +%s) - start)) s)"
  else
    echo "notebooks.sh: $nb FAILED after $(($(date +%s) - start)) s; last lines of its log:" >&2
    grep -v -E '^[IW][0-9]{4} ' "$logdir/$name.log" | tail -n 60 >&2
    failed+=("$nb")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "notebooks.sh: failed: ${failed[*]}" >&2
  exit 1
fi
