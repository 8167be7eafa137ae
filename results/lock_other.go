//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package results

import (
	"fmt"
	"os"
	"runtime"
)

// flockExclusive: run-folder locks need flock(2); without it a run refuses to start rather than run unguarded.
func flockExclusive(*os.File) (bool, error) {
	return false, fmt.Errorf("run-folder locks are not implemented on %s", runtime.GOOS)
}
