package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
	"github.com/adapterlab/llama-adapter/experiments/lib/train"
	"github.com/adapterlab/llama-adapter/models/safetensors"
	"github.com/adapterlab/llama-adapter/results"
)

// A run folder is a contract between the processes that work on it: one at a time (an OS lock), each checks that
// what the folder recorded (inputs by content digest, settings) is what it is about to run before it writes
// anything, and the run is complete only once every final file has been written and verified (complete.json).

// runFolder is a run folder locked by this process.
type runFolder struct {
	dir  string
	lock *results.RunLock
}

// openRunFolder locks dir (creating it), or says who holds it; with cfg.Wait it waits for the holder.
func openRunFolder(ctx context.Context, cfg Config, dir string, out io.Writer) (*runFolder, error) {
	lock, err := results.LockRun(ctx, dir, cfg.Wait, func(b *results.BusyError) {
		fmt.Fprintf(out, "%v: waiting for it to finish (-wait)…\n", b)
	})
	var busy *results.BusyError
	if errors.As(err, &busy) {
		return nil, fmt.Errorf("%w: wait for it with -wait, or run in another folder (-run ID or -runs DIR)", err)
	} else if err != nil {
		return nil, err
	}
	return &runFolder{dir: dir, lock: lock}, nil
}

// close releases the folder. When the run failed (*errp != nil) in a folder it created and left nothing to resume
// from, the folder is removed; when a checkpoint stays, the error says so.
func (rf *runFolder) close(errp *error) {
	if rf == nil {
		return
	}
	if *errp == nil || errors.Is(*errp, errRecordMismatch) {
		if err := rf.lock.Unlock(); err != nil && *errp == nil {
			*errp = err
		}
		return
	}
	if step, ok := rf.checkpointStep(); ok {
		*errp = fmt.Errorf("%w\nrun folder %s keeps the checkpoint of step %d: rerun the same command to resume from it", *errp, rf.dir, step)
		_ = rf.lock.Unlock()
		return
	}
	if !rf.lock.Created {
		_ = rf.lock.Unlock()
		return
	}
	// Created by this process and nothing to resume from: what it holds (config.json, a partial log) is ours.
	entries, _ := os.ReadDir(rf.dir)
	for _, e := range entries {
		if e.Name() != results.LockFile {
			_ = os.RemoveAll(filepath.Join(rf.dir, e.Name()))
		}
	}
	if err := rf.lock.UnlockAndRemove(); err != nil {
		*errp = fmt.Errorf("%w\n(the failed run's folder could not be removed: %v)", *errp, err)
	}
}

// checkpointStep returns the optimizer step of the folder's checkpoint, when it has a readable one.
func (rf *runFolder) checkpointStep() (int, bool) {
	f, err := safetensors.Open(filepath.Join(rf.dir, CheckpointFile))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	var pos train.Position
	if json.Unmarshal([]byte(f.Metadata["position"]), &pos) != nil {
		return 0, false
	}
	return pos.Step, true
}

// keptMessage says what a failed training left behind, for the non-finite loss error.
func (rf *runFolder) keptMessage() string {
	if step, ok := rf.checkpointStep(); ok {
		return fmt.Sprintf("the checkpoint of step %d (%s) is kept", step, filepath.Join(rf.dir, CheckpointFile))
	}
	return "no checkpoint had been written yet, so nothing is kept"
}

// complete reports whether the folder holds a finished run: complete.json whose files all still match, or (runs
// recorded before complete.json existed) a summary marked complete and no checkpoint. A complete.json whose
// files changed is an error. summary.json's own flag is never set by this version: complete.json, written last,
// is the one record of completeness.
func (rf *runFolder) complete() (*results.Summary, bool, error) {
	s, err := results.ReadSummary(rf.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	} else if err != nil {
		return nil, false, fmt.Errorf("run %s: %w", rf.dir, err)
	}
	if _, err := results.VerifyComplete(rf.dir); err == nil {
		return s, true, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("%w; delete the folder (or run with -force) to run it again", err)
	}
	_, ckptErr := os.Stat(filepath.Join(rf.dir, CheckpointFile))
	return s, s.Complete && errors.Is(ckptErr, fs.ErrNotExist), nil
}

// RunComplete reports whether dir holds a complete run (see runFolder.complete) and returns its summary.
func RunComplete(dir string) (*results.Summary, bool, error) {
	return (&runFolder{dir: dir}).complete()
}

// clearForRerun empties the folder (keeping the lock) for -force, only when it is the recorded run of that name:
// its config.json names it. Anything else (a folder of other files, a copy of another run) is refused untouched.
func (rf *runFolder) clearForRerun() error {
	fr, err := readFolderRecord(rf.dir)
	if err != nil {
		return fmt.Errorf("-force: %s is not a recorded run (%v): not deleting it", rf.dir, err)
	}
	if fr.RunID != filepath.Base(rf.dir) {
		return fmt.Errorf("-force: %s records run %q, not %q: not deleting it", rf.dir, fr.RunID, filepath.Base(rf.dir))
	}
	entries, err := os.ReadDir(rf.dir)
	if err != nil {
		return fmt.Errorf("-force: %w", err)
	}
	for _, e := range entries {
		if e.Name() == results.LockFile {
			continue
		}
		if err := os.RemoveAll(filepath.Join(rf.dir, e.Name())); err != nil {
			return fmt.Errorf("-force: %w", err)
		}
	}
	return nil
}

// folderRecord is config.json: the run id, the nested settings, the resolved inputs (absolute paths and content
// digests of every input file), the backend and command line, and, after -force-resume, what differed when it was
// forced. Files written before the nested form hold the settings flat at the top level (read by readFolderRecord).
type folderRecord struct {
	RunID   string            `json:"run_id"`
	Config  Config            `json:"config"`
	Paths   map[string]string `json:"resolved_paths"`
	Digests map[string]string `json:"digests"`
	Backend string            `json:"backend_resolved"`
	Devices string            `json:"devices,omitempty"`
	// Command is the command line that started the run (the process's arguments).
	Command      []string `json:"command"`
	ForcedResume []string `json:"forced_resume,omitempty"`
}

// readFolderRecord reads dir's config.json in either form.
func readFolderRecord(dir string) (*folderRecord, error) {
	path := filepath.Join(dir, ConfigFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var fr folderRecord
	if err := json.Unmarshal(data, &fr); err != nil { // Config reads the nested form or, flat, the whole file
		return nil, fmt.Errorf("%s is malformed: %w", path, err)
	}
	var probe struct {
		Config json.RawMessage `json:"config"`
	}
	if json.Unmarshal(data, &probe) == nil && len(probe.Config) == 0 { // the flat form: the settings are the top-level keys
		if err := json.Unmarshal(data, &fr.Config); err != nil {
			return nil, fmt.Errorf("%s is malformed: %w", path, err)
		}
	}
	return &fr, nil
}

// resolved is the record a run is about to write (the zero-shot cache keys on its digests).
type resolved = folderRecord

// errRecordMismatch marks a refused resume or skip (the folder is left exactly as it was).
var errRecordMismatch = errors.New("the run folder's record does not match this run")

// currentRecord resolves what this run would record: settings, absolute paths and content digests of every input
// file (the data's resolved files, not only its folder).
func currentRecord(cfg Config, modelPath, tokPath, backend string) (folderRecord, error) {
	r := folderRecord{RunID: cfg.RunID, Config: cfg, Paths: map[string]string{}, Digests: map[string]string{}, Backend: backend,
		Devices: cfg.Devices, Command: os.Args}
	clipPath := cfg.Vision.CLIP
	if assets.IsModelName(clipPath) {
		if p, err := assets.ModelPath(clipPath); err == nil {
			clipPath = p // a pinned tower is recorded by its installed file's digest
		}
	}
	inputs := map[string]string{"model": modelPath, "tokenizer": tokPath, "clip": clipPath, "data": cfg.Data.Dir,
		"problems": cfg.Data.ProblemsFile, "splits": cfg.Data.SplitsFile}
	if src, err := scienceqa.Open(cfg.Data.Dir, scienceqa.OpenOptions{Problems: cfg.Data.ProblemsFile, Splits: cfg.Data.SplitsFile}); err == nil {
		inputs["problems"], inputs["splits"] = src.Problems, src.Splits
		if cfg.Data.Captions {
			inputs["captions"] = src.Captions
		}
		for _, p := range src.Parquet {
			inputs["parquet:"+filepath.Base(p)] = p
		}
	}
	for name, p := range inputs {
		if p == "" || p == "random" {
			continue
		}
		if abs, err := filepath.Abs(p); err == nil {
			r.Paths[name] = abs
		}
		st, err := os.Stat(p)
		if err != nil || st.IsDir() {
			continue
		}
		d, err := fileDigest(p)
		if err != nil {
			return r, fmt.Errorf("hashing %s: %w", p, err)
		}
		r.Digests[name] = d
	}
	return r, nil
}

// checkRecord compares the folder's config.json (if any) with cur. A recorded digest that differs or whose input
// is gone, or a changed setting, is an error naming each difference and the ways on, unless cfg.ForceResume,
// which returns the differences to be recorded. Digests this version records and the folder's did not are not
// differences (nothing was recorded to compare with).
func (rf *runFolder) checkRecord(cfg Config, cur folderRecord, out io.Writer) ([]string, error) {
	path := filepath.Join(rf.dir, ConfigFile)
	old, err := readFolderRecord(rf.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("run folder %s: %w", rf.dir, err)
	}
	diffs, err := results.DiffRecords(old.Config.comparedSettings(), cur.Config.comparedSettings())
	if err != nil {
		return nil, err
	}
	var names []string
	for name := range old.Digests {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		now, ok := cur.Digests[name]
		where := cur.Paths[name]
		if where == "" {
			where = old.Paths[name]
		}
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s %s: recorded sha256 %s, now missing", name, where, old.Digests[name]))
		case now != old.Digests[name]:
			diffs = append(diffs, fmt.Sprintf("%s %s: recorded sha256 %s, now %s (its content changed)", name, where, old.Digests[name], now))
		}
	}
	if len(diffs) == 0 {
		return nil, nil
	}
	if cfg.ForceResume {
		fmt.Fprintf(out, "-force-resume: continuing %s although it was recorded with other inputs or settings:\n  %s\n", rf.dir, strings.Join(diffs, "\n  "))
		return diffs, nil
	}
	return nil, fmt.Errorf("%w: run folder %s (%s) was recorded with other inputs or settings:\n  %s\n"+
		"Nothing in it was changed. To run the current inputs, use a new run folder (-run NEWID or -runs DIR); to continue "+
		"this one with them anyway, add -force-resume (config.json then records the change)",
		errRecordMismatch, rf.dir, path, strings.Join(diffs, "\n  "))
}

// writeRecord writes config.json (after checkRecord passed).
func (rf *runFolder) writeRecord(fr folderRecord, forced []string) error {
	if forced != nil {
		// Keep the history of forced resumes, so the record says the run did not see one set of inputs.
		if old, err := readFolderRecord(rf.dir); err == nil {
			fr.ForcedResume = append(fr.ForcedResume, old.ForcedResume...)
		}
		fr.ForcedResume = append(fr.ForcedResume, forced...)
	}
	data, err := json.MarshalIndent(fr, "", "  ")
	if err != nil {
		return fmt.Errorf("run %s: encoding %s: %w", rf.dir, ConfigFile, err)
	}
	return results.WriteFileAtomic(filepath.Join(rf.dir, ConfigFile), append(data, '\n'), 0o644)
}

// markComplete verifies every final file of the folder and writes complete.json last. Final files are all the
// folder's files but the lock, the checkpoint (removed afterwards) and temporary files; safetensors files are
// opened, which verifies their checksum.
func (rf *runFolder) markComplete() error {
	entries, err := os.ReadDir(rf.dir)
	if err != nil {
		return fmt.Errorf("run %s: %w", rf.dir, err)
	}
	var files []results.FinalFile
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || name == results.LockFile || name == CheckpointFile || name == results.CompleteFile || strings.HasPrefix(name, ".") {
			continue
		}
		ff := results.FinalFile{Name: name}
		if strings.HasSuffix(name, ".safetensors") {
			ff.Check = func(p string) error {
				f, err := safetensors.Open(p)
				if err != nil {
					return err
				}
				return f.Close()
			}
		}
		files = append(files, ff)
	}
	return results.MarkComplete(rf.dir, files)
}
