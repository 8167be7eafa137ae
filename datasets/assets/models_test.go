package assets

import (
	"os"
	"path/filepath"
	"regexp"
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
