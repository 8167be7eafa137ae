package device

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstalledPluginWrongHash: an installed plugin whose bytes are not the ones plugin.json pins is never
// loaded: the backend falls back to the pure-Go one, and the note (and the warning) says the plugin is corrupt or
// changed and how to reinstall it.
func TestInstalledPluginWrongHash(t *testing.T) {
	dir := isolate(t)
	writeFile(t, filepath.Join(dir, pluginFileName), "\x7fELF not really a plugin")
	writeFile(t, filepath.Join(dir, "plugin.json"), `{"package":"lammps-jax-pjrt-cpu","version":"0.11.2",
		"plugin_sha256":"ad1309ac822b1b24d51b7f9947c7c9fa9ef5d67f390584cbc3d1fa2428fed9c2"}`)
	b, info, err := NewWithInfo()
	if err != nil {
		t.Fatalf("installed plugin with a wrong hash: %v, want the pure-Go fallback", err)
	}
	defer b.Finalize()
	if info.Name != "go" || !strings.Contains(info.Note, "corrupt or changed") || !strings.Contains(info.Note, "bash .ci/install-pjrt-cpu.sh") {
		t.Errorf("info %+v: want the go backend with a note naming the corruption and the reinstall command", info)
	}
	// Chosen explicitly, the same plugin is an error with the same hint.
	t.Setenv(PluginEnvVar, filepath.Join(dir, pluginFileName))
	if _, info, err := NewWithInfo(); err == nil || !strings.Contains(err.Error(), "bash .ci/install-pjrt-cpu.sh") {
		t.Errorf("explicit: %v (%+v), want an error with the reinstall command", err, info)
	}
}

// TestTruncatedPluginNoCrash: a truncated copy of the real plugin (a download or copy cut short) used to die with
// SIGBUS inside dlopen and a Go stack dump. Without plugin.json there is no hash to compare, and the ELF check
// (every loadable segment inside the file) refuses it; with the installed plugin.json the hash does.
func TestTruncatedPluginNoCrash(t *testing.T) {
	real := InstalledPlugin()
	if real == "" {
		t.Skip("the XLA CPU plugin is not installed (bash .ci/install-pjrt-cpu.sh)")
	}
	dir := isolate(t)
	src, err := os.Open(real)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	st, _ := src.Stat()
	cut := filepath.Join(t.TempDir(), pluginFileName)
	dst, err := os.Create(cut)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(dst, src, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	t.Setenv(PluginEnvVar, cut) // explicit, no plugin.json beside it
	if _, _, err := NewWithInfo(); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("explicit truncated plugin: %v, want an error saying it is truncated", err)
	}
	// Installed with the real plugin.json: the hash check refuses it and the run falls back.
	t.Setenv(PluginEnvVar, "")
	if err := os.Rename(cut, filepath.Join(dir, pluginFileName)); err != nil {
		t.Fatal(err)
	}
	pj, err := os.ReadFile(filepath.Join(filepath.Dir(real), "plugin.json"))
	if err != nil {
		t.Skipf("no plugin.json beside %s: %v", real, err)
	}
	writeFile(t, filepath.Join(dir, "plugin.json"), string(pj))
	b, info, err := NewWithInfo()
	if err != nil {
		t.Fatalf("installed truncated plugin: %v, want the fallback", err)
	}
	defer b.Finalize()
	if info.Name != "go" || !strings.Contains(info.Note, "corrupt or changed") {
		t.Errorf("info %+v", info)
	}
}
