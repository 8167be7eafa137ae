#!/usr/bin/env bash
# Installs Jupyter (Debian packages) and the GoNB Go kernel, then executes every notebook in notebooks/ headless,
# failing on the first cell error of any notebook.
#
# Usage: .ci/notebooks.sh [--check] [--no-install] [notebooks/NN-name.ipynb ...]
#   (default)     execute and write the outputs back into the notebooks (to commit them)
#   --check       execute into a temporary folder: the working tree is left untouched (CI); fails on any cell error
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

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT

# cell_errors NOTEBOOK: prints each failed cell (source and outputs, HTML tags stripped) and exits 1 if there is one.
# GoNB reports compile errors as HTML output next to the error, so the error alone would not say what went wrong.
cell_errors() {
  python3 - "$1" <<'PY'
import html, json, re, sys
nb = json.load(open(sys.argv[1]))
bad = 0
for i, cell in enumerate(nb["cells"]):
    outs = cell.get("outputs", [])
    if not any(o.get("output_type") == "error" for o in outs):
        continue
    bad += 1
    print(f"--- cell {i} failed:\n" + "".join(cell["source"])[:1500] + "\n--- its outputs:")
    for o in outs:
        if "text" in o:
            print("".join(o["text"])[-3000:])
        data = o.get("data", {})
        for mime in ("text/plain", "text/html"):
            if mime in data:
                text = re.sub(r"(?s)<style.*?</style>|<[^>]+>", "", "".join(data[mime]))
                print(re.sub(r"\n\s*\n+", "\n", html.unescape(text)).strip()[-3000:])
                break
        if o.get("output_type") == "error":
            print(o.get("ename", ""), o.get("evalue", ""))
sys.exit(1 if bad else 0)
PY
}

# As the tests do, a check skips (with a warning) the notebooks that read the shared assets when those are absent
# ($SQA_ASSETS, else ../shared/assets beside the checkout): they are data outside the repository.
assets_dir="${SQA_ASSETS:-$(pwd)/../shared/assets}"
failed=()
for nb in "${notebooks[@]}"; do
  name="$(basename "$nb" .ipynb)"
  if [ $check -eq 1 ] && [ ! -d "$assets_dir" ] && grep -q 'assets\.\(Path\|Golden\)' "$nb"; then
    echo "notebooks.sh: WARNING: skipping $nb: it reads the shared assets and $assets_dir is missing (set \$SQA_ASSETS)" >&2
    continue
  fi
  out="$workdir/$name.ipynb"
  start=$(date +%s)
  # --allow-errors keeps the failed cell's output (checked below); the kernel runs in the notebook's own folder.
  # The kernel logs to stderr: kept out of the way unless the run itself fails (timeout, dead kernel).
  if jupyter nbconvert --to notebook --execute --allow-errors "--ExecutePreprocessor.timeout=$TIMEOUT" \
    --ExecutePreprocessor.kernel_name=gonb --ExecutePreprocessor.record_timing=False \
    --output-dir "$workdir" --output "$name" "$nb" >"$workdir/$name.log" 2>&1; then
    if cell_errors "$out" >"$workdir/$name.errors"; then
      echo "notebooks.sh: $nb ok ($(($(date +%s) - start)) s)"
      if [ $check -eq 0 ]; then
        cp "$out" "$nb"
      fi
      continue
    fi
    echo "notebooks.sh: $nb FAILED after $(($(date +%s) - start)) s:" >&2
    cat "$workdir/$name.errors" >&2
  else
    echo "notebooks.sh: $nb FAILED after $(($(date +%s) - start)) s; last lines of its log:" >&2
    grep -v -E '^[IW][0-9]{4} ' "$workdir/$name.log" | tail -n 40 >&2
  fi
  failed+=("$nb")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "notebooks.sh: failed: ${failed[*]}" >&2
  exit 1
fi
