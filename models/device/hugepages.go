package device

import (
	"os"
	"runtime"
	"strings"
	"syscall"
)

// HugePageTunable is the glibc tunable that makes malloc advise the kernel to back its large blocks with
// transparent huge pages (glibc ≥ 2.35; older versions and other C libraries ignore it).
const HugePageTunable = "glibc.malloc.hugetlb=1"

// HugePagesEnvVar set to 0 keeps UseHugePages from re-executing the program.
const HugePagesEnvVar = "SQA_HUGEPAGES"

// UseHugePages re-executes the running program (same path, arguments and environment) with HugePageTunable added
// to GLIBC_TUNABLES, unless it is already there, $SQA_HUGEPAGES is 0, or the system is not Linux. Mains call it
// first thing: the tunable is read only when a process starts.
//
// Why: XLA's CPU runtime allocates an execution's temporaries as one large block (212 MiB for a stories260K
// training step at 8×256 tokens), which glibc maps fresh and unmaps on every call; with 4 KiB pages, a third of
// the step went into page faults. With huge pages the same step is 1.5-1.8× faster. It returns only when it did
// not re-execute (including when exec fails, which leaves the program running as it was).
func UseHugePages() {
	if runtime.GOOS != "linux" || os.Getenv(HugePagesEnvVar) == "0" {
		return
	}
	cur := os.Getenv("GLIBC_TUNABLES")
	if strings.Contains(cur, "glibc.malloc.hugetlb") {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	val := HugePageTunable
	if cur != "" {
		val = cur + ":" + HugePageTunable
	}
	env := []string{"GLIBC_TUNABLES=" + val}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GLIBC_TUNABLES=") { // a duplicate would shadow ours: C's getenv takes the first
			env = append(env, kv)
		}
	}
	_ = syscall.Exec(exe, os.Args, env)
}
