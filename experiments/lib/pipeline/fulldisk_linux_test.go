//go:build linux

package pipeline

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// fullDiskSupported says fillDisk can provoke a full disk here.
const fullDiskSupported = true

// fillDisk makes every later write through this process's open descriptors of path fail as on a full disk: it
// points them at /dev/full, whose writes fail with ENOSPC. The failure comes from the OS, so the code under test
// needs no hook for it.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	want, err := filepath.EvalSymlinks(path)
	if err != nil {
		t.Errorf("fill disk: %v", err)
		return
	}
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Errorf("fill disk: %v", err)
		return
	}
	defer full.Close()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Errorf("fill disk: %v", err)
		return
	}
	n := 0
	for _, e := range fds {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err != nil || target != want {
			continue
		}
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if err := syscall.Dup3(int(full.Fd()), fd, syscall.O_CLOEXEC); err != nil {
			t.Errorf("fill disk: descriptor %d of %s: %v", fd, path, err)
			return
		}
		n++
	}
	if n == 0 {
		t.Errorf("fill disk: %s is not open in this process", path)
	}
}
