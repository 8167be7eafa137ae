package results

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// LockFile is the file in a locked run folder that says which process holds the lock. The lock itself is
// an OS lock on the folder, which the kernel releases when the process ends however it ends, so a killed
// run never leaves a stale lock; the file is only information for a second process.
const LockFile = "lock.json"

// lockPoll is how often a waiting LockRun retries.
const lockPoll = 100 * time.Millisecond

// LockHolder identifies the process holding a run folder's lock.
type LockHolder struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Started time.Time `json:"started"`
	Command []string  `json:"command,omitempty"`
}

// BusyError is LockRun's error when another process holds the folder's lock.
type BusyError struct {
	Dir    string
	Holder *LockHolder // nil when lock.json was missing or unreadable
}

func (e *BusyError) Error() string {
	if e.Holder == nil {
		return fmt.Sprintf("run folder %s is in use by another process (it has not recorded itself in %s)", e.Dir, LockFile)
	}
	h := e.Holder
	return fmt.Sprintf("run folder %s is in use by pid %d on %s since %s (%s)", e.Dir, h.PID, h.Host,
		h.Started.Format(time.RFC3339), strings.Join(h.Command, " "))
}

// RunLock is a held lock on a run folder.
type RunLock struct {
	Dir string
	// Created reports that LockRun made the folder (it did not exist), so a run that fails before writing
	// anything worth keeping may remove it again.
	Created bool
	f       *os.File // the folder, open and locked
}

// LockRun takes the exclusive lock on run folder dir, creating the folder if needed. If another process (or
// another LockRun in this one) holds it, LockRun returns a *BusyError naming the holder, or with wait set
// calls busy (when not nil) once and retries until the lock is free or ctx ends. It then records this
// process in dir/lock.json. Release the lock with Unlock.
func LockRun(ctx context.Context, dir string, wait bool, busy func(*BusyError)) (*RunLock, error) {
	told := false
	for {
		l, err := tryLockRun(dir)
		var b *BusyError
		if err == nil || !errors.As(err, &b) || !wait {
			return l, err
		}
		if !told && busy != nil {
			busy(b)
		}
		told = true
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("results: waiting for the lock on %s: %w", dir, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
}

// tryLockRun makes one attempt.
func tryLockRun(dir string) (*RunLock, error) {
	created := false
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		created = true
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("results: lock %s: %w", dir, err)
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("results: lock %s: %w", dir, err)
	}
	locked, err := flockExclusive(f)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("results: lock %s: %w", dir, err)
	}
	if !locked {
		_ = f.Close()
		return nil, &BusyError{Dir: dir, Holder: readHolder(dir)}
	}
	// The previous holder may have removed the folder (a failed run cleaning up) between our Open and our
	// lock: a lock on a deleted directory guards nothing, so check that dir is still the folder we locked.
	if st, err := f.Stat(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("results: lock %s: %w", dir, err)
	} else if now, err := os.Stat(dir); err != nil || !os.SameFile(st, now) {
		_ = f.Close()
		return tryLockRun(dir)
	}
	host, _ := os.Hostname()
	h := LockHolder{PID: os.Getpid(), Host: host, Started: time.Now().UTC().Truncate(time.Second), Command: os.Args}
	if err := WriteJSONAtomic(filepath.Join(dir, LockFile), h); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("results: lock %s: %w", dir, err)
	}
	return &RunLock{Dir: dir, Created: created, f: f}, nil
}

// readHolder reads a folder's lock.json; nil when it is missing or does not parse (the holder may be
// writing it at this moment).
func readHolder(dir string) *LockHolder {
	data, err := os.ReadFile(filepath.Join(dir, LockFile))
	if err != nil {
		return nil
	}
	var h LockHolder
	if json.Unmarshal(data, &h) != nil {
		return nil
	}
	return &h
}

// Unlock removes lock.json and releases the lock. It is safe to call more than once.
func (l *RunLock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := os.Remove(filepath.Join(l.Dir, LockFile))
	if errors.Is(err, fs.ErrNotExist) {
		err = nil // the folder itself may have been removed by its owner
	}
	if cerr := l.f.Close(); cerr != nil && err == nil { // closing the descriptor releases the lock
		err = cerr
	}
	l.f = nil
	if err != nil {
		return fmt.Errorf("results: unlock %s: %w", l.Dir, err)
	}
	return nil
}

// UnlockAndRemove removes lock.json and the folder, which must otherwise be empty, then releases the lock. The
// folder goes while the lock is held, so a process waiting for it never works in a folder being deleted.
func (l *RunLock) UnlockAndRemove() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := os.Remove(filepath.Join(l.Dir, LockFile))
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		err = os.Remove(l.Dir)
	}
	if uerr := l.Unlock(); err == nil {
		err = uerr
	}
	if err != nil {
		return fmt.Errorf("results: remove run folder %s: %w", l.Dir, err)
	}
	return nil
}
