package device

import (
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/adapterlab/llama-adapter/models/pinned"
)

// pluginReinstall is the command that restores the installed XLA CPU plugin.
const pluginReinstall = "bash .ci/install-pjrt-cpu.sh"

// verifyPlugin checks a PJRT plugin before it is loaded, because a damaged shared library cannot fail cleanly once
// dlopen has it: a truncated file maps pages past its end and the process dies with SIGBUS and a Go stack dump.
//   - With a plugin.json beside it that pins plugin_sha256 (.ci/install-pjrt-cpu.sh writes one), the file's sha256
//     must be that one (hashed once per process; about 0.23 s for the 200 MB plugin).
//   - Any plugin must be an ELF file whose loadable segments all lie inside the file (a truncated copy does not).
//
// Errors name the plugin and the reinstall command.
func verifyPlugin(path string) error {
	hint := "reinstall with `" + pluginReinstall + "`, or choose another backend with $" + EnvVar
	pj := filepath.Join(filepath.Dir(path), "plugin.json")
	if data, err := os.ReadFile(pj); err == nil {
		var p PluginProvenance
		if err := json.Unmarshal(data, &p); err != nil {
			return fmt.Errorf("PJRT plugin %s: %s: %w (the install is damaged: %s)", path, pj, err, hint)
		}
		if p.PluginSHA256 != "" {
			if err := pinned.Verify(path, p.PluginSHA256, pj, pluginReinstall); err != nil {
				return fmt.Errorf("PJRT plugin: %w", err)
			}
			return nil // the pinned bytes: nothing more to check
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("PJRT plugin %s: %w", path, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("PJRT plugin: %w", err)
	}
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("PJRT plugin %s is not a readable shared library (truncated or corrupt?): %v; %s", path, err, hint)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Off+p.Filesz > uint64(st.Size()) {
			return fmt.Errorf("PJRT plugin %s is truncated: a loadable segment ends at byte %d of a %d-byte file; %s",
				path, p.Off+p.Filesz, st.Size(), hint)
		}
	}
	return nil
}

// pluginOf returns the plugin path of an XLA configuration string when it names one by absolute path.
func pluginOf(config string) string {
	name, opts, _ := strings.Cut(config, ":")
	switch name {
	case "xla", "stablehlo", "hlo", "shlo":
	default:
		return ""
	}
	plugin, _, _ := strings.Cut(opts, ",")
	if !filepath.IsAbs(plugin) {
		return ""
	}
	return plugin
}
