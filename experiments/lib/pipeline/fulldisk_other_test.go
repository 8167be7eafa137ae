//go:build !linux

package pipeline

import "testing"

// fullDiskSupported says fillDisk can provoke a full disk here: it needs Linux's /dev/full and /proc/self/fd.
const fullDiskSupported = false

func fillDisk(t *testing.T, _ string) { t.Error("fillDisk needs Linux") }
