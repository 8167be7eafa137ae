package scienceqa

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Options selects the files of the official layout and how strictly they are read.
type Options struct {
	// Problems is the problems file (a JSON map pid → problem), e.g. <root>/problems.json. Required.
	Problems string
	// Splits is pid_splits.json; empty: the splits are taken from each problem's "split" field.
	Splits string
	// Images is the folder holding <split>/<pid>/<image>; empty: "images" beside the problems file.
	Images string
	// Captions is captions.json ({"captions": {pid: text}}); empty: no captions.
	Captions string
	// Lenient skips invalid records (counted in Dataset.Report) instead of failing on the first.
	Lenient bool
	// NoImageCheck skips checking that referenced image files exist (the references are kept): scoring needs
	// only whether a problem has an image, not the file.
	NoImageCheck bool
}

// DirOptions returns the Options of an official data folder: problems.json, pid_splits.json and images/ in dir,
// plus captions.json when it exists there.
func DirOptions(dir string) Options {
	o := Options{
		Problems: filepath.Join(dir, "problems.json"),
		Splits:   filepath.Join(dir, "pid_splits.json"),
		Images:   filepath.Join(dir, "images"),
	}
	if _, err := os.Stat(filepath.Join(dir, "captions.json")); err == nil {
		o.Captions = filepath.Join(dir, "captions.json")
	}
	return o
}

// Dataset is a set of validated problems with their splits.
type Dataset struct {
	// Problems are sorted by pid (numerically for official pids).
	Problems []*Problem
	// Splits maps a split name to its pids, in file order: pid_splits.json when given (train, val, test,
	// minitrain, minival, minitest), else the problems' own split fields. Pids may name problems that are not
	// in Problems (e.g. problems_test.json with the full pid_splits.json).
	Splits map[string][]string
	// Report counts what was read and skipped.
	Report Report

	byPID map[string]*Problem
}

// Get returns the problem with the given pid.
func (d *Dataset) Get(pid string) (*Problem, bool) {
	p, ok := d.byPID[pid]
	return p, ok
}

// Split returns the problems of split name that are in the data set, in the split's order, and how many pids
// the split lists in all. It fails for an unknown split name.
func (d *Dataset) Split(name string) (problems []*Problem, listed int, err error) {
	pids, ok := d.Splits[name]
	if !ok {
		names := make([]string, 0, len(d.Splits))
		for k := range d.Splits {
			names = append(names, k)
		}
		sort.Strings(names)
		return nil, 0, fmt.Errorf("scienceqa: unknown split %q (have %v)", name, names)
	}
	for _, pid := range pids {
		if p, ok := d.byPID[pid]; ok {
			problems = append(problems, p)
		}
	}
	return problems, len(pids), nil
}

// newDataset indexes problems (sorted by pid) and derives the splits from them when splits is nil.
func newDataset(problems []*Problem, splits map[string][]string, rep Report) *Dataset {
	SortByPID(problems)
	d := &Dataset{Problems: problems, Splits: splits, Report: rep, byPID: make(map[string]*Problem, len(problems))}
	for _, p := range problems {
		d.byPID[p.PID] = p
	}
	if d.Splits == nil {
		d.Splits = map[string][]string{}
		for _, p := range problems {
			d.Splits[p.Split] = append(d.Splits[p.Split], p.PID)
		}
	}
	return d
}

// officialRecord is one problem as problems.json stores it. Pointers tell a missing or null field from an
// empty one where that matters.
type officialRecord struct {
	Question *string  `json:"question"`
	Choices  []string `json:"choices"`
	Answer   *int     `json:"answer"`
	Hint     *string  `json:"hint"`
	Image    *string  `json:"image"`
	Split    *string  `json:"split"`
	Task     *string  `json:"task"`
	Grade    *string  `json:"grade"`
	Subject  *string  `json:"subject"`
	Topic    *string  `json:"topic"`
	Category *string  `json:"category"`
	Skill    *string  `json:"skill"`
	Lecture  *string  `json:"lecture"`
	Solution *string  `json:"solution"`
}

func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// ParseProblemsJSON decodes a problems.json document (a JSON object pid → problem) into problems, without
// validation or image lookup; name is used in errors. A pid that appears twice is an error naming it. A record that does not decode is reported as a
// ValidationError with ReasonMalformed in errs (in pid order), the others are returned.
func ParseProblemsJSON(name string, data []byte) (problems []*Problem, errs []*ValidationError, err error) {
	// Decoded entry by entry, not into a map: a map keeps the last of duplicate pids silently.
	keys, vals, err := jsonObjectEntries(data)
	if err != nil {
		return nil, nil, fmt.Errorf("scienceqa: %s: not a JSON object of pid → problem: %w", name, err)
	}
	raw := make(map[string]json.RawMessage, len(keys))
	for i, pid := range keys {
		if _, dup := raw[pid]; dup {
			return nil, nil, fmt.Errorf("scienceqa: %s: pid %s appears twice (records %d and %d of the object)", name, pid,
				indexOf(keys, pid)+1, i+1)
		}
		raw[pid] = vals[i]
	}
	pids := make([]string, 0, len(raw))
	for pid := range raw {
		pids = append(pids, pid)
	}
	sort.Slice(pids, func(i, j int) bool { return pidLess(pids[i], pids[j]) })
	for _, pid := range pids {
		var r officialRecord
		bad := func(msg string) {
			errs = append(errs, &ValidationError{File: name, PID: pid, Reason: ReasonMalformed, Msg: msg})
		}
		if err := json.Unmarshal(raw[pid], &r); err != nil {
			bad(err.Error())
			continue
		}
		switch {
		case r.Question == nil:
			bad("no question")
			continue
		case r.Answer == nil:
			bad("no answer")
			continue
		}
		p := &Problem{
			PID: pid, Split: str(r.Split), Question: *r.Question, Choices: r.Choices, Answer: *r.Answer,
			Hint: str(r.Hint), Task: str(r.Task), Grade: str(r.Grade), Subject: str(r.Subject),
			Topic: str(r.Topic), Category: str(r.Category), Skill: str(r.Skill), Lecture: str(r.Lecture),
			Solution: str(r.Solution),
		}
		// Image holds the file name for now; LoadOfficial turns it into a path.
		p.Image.Path = str(r.Image)
		problems = append(problems, p)
	}
	return problems, errs, nil
}

func indexOf(keys []string, k string) int {
	for i, x := range keys {
		if x == k {
			return i
		}
	}
	return -1
}

// LoadOfficial reads and validates the official layout. In strict mode (the default) the first invalid record
// is an error naming the file and pid; with Options.Lenient invalid records are skipped and counted in
// Dataset.Report. Image files are checked to exist (stat only; nothing is decoded) unless o.NoImageCheck.
func LoadOfficial(o Options) (*Dataset, error) {
	if o.Problems == "" {
		return nil, errors.New("scienceqa: no problems file given")
	}
	data, err := os.ReadFile(o.Problems)
	if err != nil {
		return nil, fmt.Errorf("scienceqa: %w", err)
	}
	name := o.Problems // errors name the full path
	problems, errs, err := ParseProblemsJSON(name, data)
	if err != nil {
		return nil, err
	}
	var rep Report
	rep.Read = len(problems) + len(errs)
	fail := func(e *ValidationError) error {
		if !o.Lenient {
			return e
		}
		rep.add(e)
		return nil
	}
	for _, e := range errs {
		if err := fail(e); err != nil {
			return nil, err
		}
	}

	var splits map[string][]string
	if o.Splits != "" {
		if splits, err = readSplits(o.Splits); err != nil {
			return nil, err
		}
	}
	// splitOf maps a pid to its official split according to pid_splits.json.
	splitOf := map[string]string{}
	for _, s := range splitOrder { // readSplits refused a pid under two of them
		for _, pid := range splits[s] {
			splitOf[pid] = s
		}
	}

	var captions map[string]string
	if o.Captions != "" {
		if captions, err = ReadCaptions(o.Captions); err != nil {
			return nil, err
		}
	}
	images := o.Images
	if images == "" {
		images = filepath.Join(filepath.Dir(o.Problems), "images")
	}

	kept := problems[:0]
	for _, p := range problems {
		if p.Split == "" {
			p.Split = splitOf[p.PID] // records without a split field take it from pid_splits.json
		}
		if s, ok := splitOf[p.PID]; ok && s != p.Split {
			e := &ValidationError{File: name, PID: p.PID, Reason: ReasonSplitMismatch,
				Msg: fmt.Sprintf("split %q but %s lists it under %q", p.Split, o.Splits, s)}
			if err := fail(e); err != nil {
				return nil, err
			}
			continue
		}
		if p.Image.Path != "" && knownSplits[p.Split] { // an unknown split fails validation below, before any stat
			path, msg := imagePath(images, p.Split, p.PID, p.Image.Path)
			if msg != "" {
				if err := fail(&ValidationError{File: name, PID: p.PID, Reason: ReasonUnsafePath, Msg: msg}); err != nil {
					return nil, err
				}
				continue
			}
			p.Image.Path = path
		}
		p.Caption = captions[p.PID]
		if e := validate(name, p, !o.NoImageCheck); e != nil {
			if err := fail(e); err != nil {
				return nil, err
			}
			continue
		}
		kept = append(kept, p)
	}
	rep.Kept = len(kept)
	return newDataset(kept, splits, rep), nil
}

// imagePath joins images/<split>/<pid>/<image>, the file a record names. The pid and the image come from the data,
// so the pid must be one path element (the split is one of knownSplits) and the image must stay inside the
// problem's own folder: a record must not make the loader open (and train on) a file elsewhere, such as another
// problem's image or a file outside the data folder. msg says what is wrong, "" when the path is safe. The check
// is lexical: symbolic links inside the images folder are the folder owner's choice and are followed.
func imagePath(images, split, pid, image string) (path, msg string) {
	if pid == "" || pid == "." || pid == ".." || strings.ContainsAny(pid, `/\`+"\x00") {
		return "", fmt.Sprintf("pid %q is not a single folder name: refusing to build an image path from it", pid)
	}
	dir := filepath.Join(images, split, pid)
	path = filepath.Join(dir, image)
	rel, err := filepath.Rel(dir, path)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || strings.ContainsRune(image, 0) {
		return "", fmt.Sprintf("image %q leads out of the problem's folder %s", image, dir)
	}
	return path, ""
}

// splitOrder is the order in which the official splits are checked and reported.
var splitOrder = []string{"train", "val", "test"}

// readSplits reads pid_splits.json: a JSON object split name → list of pids. A split named twice, a pid listed twice
// in one split, or a pid under two of the official splits (train, val, test) is an error naming the pid and both
// places: which split such a pid belongs to would otherwise depend on the order the splits are walked in. The
// mini splits (minitrain, ...) are subsets of their splits and are not compared with them.
func readSplits(path string) (map[string][]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scienceqa: %w", err)
	}
	keys, vals, err := jsonObjectEntries(data)
	if err != nil {
		return nil, fmt.Errorf("scienceqa: %s: not a JSON object of split → pids: %w", path, err)
	}
	s := make(map[string][]string, len(keys))
	for i, k := range keys {
		if _, dup := s[k]; dup {
			return nil, fmt.Errorf("scienceqa: %s: split %q is listed twice", path, k)
		}
		var pids []string
		if err := json.Unmarshal(vals[i], &pids); err != nil {
			return nil, fmt.Errorf("scienceqa: %s: split %q is not a list of pids: %w", path, k, err)
		}
		s[k] = pids
	}
	for name, pids := range s {
		seen := make(map[string]bool, len(pids))
		for _, pid := range pids {
			if seen[pid] {
				return nil, fmt.Errorf("scienceqa: %s: pid %s is listed twice under %q", path, pid, name)
			}
			seen[pid] = true
		}
	}
	where := map[string]string{}
	for _, name := range splitOrder {
		for _, pid := range s[name] {
			if other, dup := where[pid]; dup {
				return nil, fmt.Errorf("scienceqa: %s: pid %s is listed under both %q and %q", path, pid, other, name)
			}
			where[pid] = name
		}
	}
	return s, nil
}

// ReadCaptions reads captions.json ({"captions": {pid: text}, ...}).
func ReadCaptions(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scienceqa: %w", err)
	}
	var c struct {
		Captions map[string]string `json:"captions"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("scienceqa: %s: %w", path, err)
	}
	if c.Captions == nil {
		return nil, fmt.Errorf("scienceqa: %s: no \"captions\" object", path)
	}
	return c.Captions, nil
}
