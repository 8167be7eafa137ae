package results

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLockRunExclusive: two locks on one folder conflict even inside one process (each LockRun opens its own
// descriptor); the second says who holds the first; after Unlock the folder can be locked again.
func TestLockRunExclusive(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	ctx := context.Background()
	l1, err := LockRun(ctx, dir, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !l1.Created {
		t.Error("Created = false for a folder LockRun made")
	}
	_, err = LockRun(ctx, dir, false, nil)
	var busy *BusyError
	if !errors.As(err, &busy) {
		t.Fatalf("second lock: %v, want a *BusyError", err)
	}
	if busy.Holder == nil || busy.Holder.PID != os.Getpid() {
		t.Errorf("holder %+v, want pid %d", busy.Holder, os.Getpid())
	}
	for _, want := range []string{dir, fmt.Sprint(os.Getpid())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if err := l1.Unlock(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, LockFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left behind after Unlock: %v", LockFile, err)
	}
	l2, err := LockRun(ctx, dir, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if l2.Created {
		t.Error("Created = true for an existing folder")
	}
	_ = l2.Unlock()
}

// TestLockRunWait: a waiting LockRun reports the holder once and gets the lock when it is released; a cancelled
// wait returns the context's error.
func TestLockRunWait(t *testing.T) {
	dir := t.TempDir()
	l1, err := LockRun(context.Background(), dir, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := LockRun(ctx, dir, true, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled wait: %v", err)
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		_ = l1.Unlock()
	}()
	told := 0
	l2, err := LockRun(context.Background(), dir, true, func(*BusyError) { told++ })
	if err != nil {
		t.Fatal(err)
	}
	if told != 1 {
		t.Errorf("busy callback called %d times, want 1", told)
	}
	_ = l2.Unlock()
}

// TestLockRunRemovedFolder: a waiter whose folder was removed by the holder (a failed run cleaning up) does not
// keep a lock on the deleted directory: it locks the folder now at that path.
func TestLockRunRemovedFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	l1, err := LockRun(context.Background(), dir, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(150 * time.Millisecond)
		if err := l1.UnlockAndRemove(); err != nil {
			t.Error(err)
		}
	}()
	l2, err := LockRun(context.Background(), dir, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Unlock()
	if _, err := os.Stat(filepath.Join(dir, LockFile)); err != nil {
		t.Errorf("the lock is not on the folder at %s: %v", dir, err)
	}
}

// TestLockRunOtherProcess: the lock holds across processes, names the other process's pid, and is released by the
// kernel when that process is killed (no stale lock after kill -9).
func TestLockRunOtherProcess(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$")
	cmd.Env = append(os.Environ(), "RESULTS_LOCK_DIR="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.StdinPipe(); err != nil { // keeps the child alive until it is killed
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "locked" {
		t.Fatalf("child: %q, %v", line, err)
	}
	_, err = LockRun(context.Background(), dir, false, nil)
	var busy *BusyError
	if !errors.As(err, &busy) || busy.Holder == nil || busy.Holder.PID != cmd.Process.Pid {
		t.Fatalf("lock held by the child (pid %d): got %v", cmd.Process.Pid, err)
	}
	_ = cmd.Process.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := LockRun(ctx, dir, true, nil)
	if err != nil {
		t.Fatalf("after killing the holder: %v", err)
	}
	_ = l.Unlock()
}

// TestLockHelperProcess is the child of TestLockRunOtherProcess: it locks RESULTS_LOCK_DIR and waits to be killed.
func TestLockHelperProcess(t *testing.T) {
	dir := os.Getenv("RESULTS_LOCK_DIR")
	if dir == "" {
		t.Skip("helper process for TestLockRunOtherProcess")
	}
	if _, err := LockRun(context.Background(), dir, false, nil); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	os.Exit(0)
}
