package scienceqa

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Layout is how a ScienceQA source is laid out on disk.
type Layout string

// The layouts Open recognizes.
const (
	// LayoutOfficial: problems.json (or the one problems*.json, or an explicit file) + pid_splits.json + images/.
	LayoutOfficial Layout = "official"
	// LayoutParquet: <split>-*.parquet files in the folder itself.
	LayoutParquet Layout = "parquet"
	// LayoutParquetData: <split>-*.parquet files under data/, as a Hugging Face dataset snapshot has them.
	LayoutParquetData Layout = "parquet data/"
	// LayoutParquetFile: one <split>-*.parquet file given directly.
	LayoutParquetFile Layout = "parquet file"
)

// Open's errors for a folder without a readable layout wrap one of these (test with errors.Is): a caller that needs
// only images may then fall back to walking images/.
var (
	// ErrNoData: the folder holds none of the layouts.
	ErrNoData = errors.New("no ScienceQA data")
	// ErrAmbiguous: the folder holds several layouts, or several problems*.json and no problems.json.
	ErrAmbiguous = errors.New("ambiguous ScienceQA data")
)

// OpenOptions are the explicit choices Open honours over what it detects.
type OpenOptions struct {
	// Problems is the problems file of the official layout; set, it selects the official layout whatever else
	// the folder holds, and pid_splits.json, images/ and captions.json are looked up in the folder given to Open
	// (beside the problems file when none is).
	Problems string
	// Splits is pid_splits.json; empty: the folder's (or the problems file's folder's) pid_splits.json when
	// present, else the problems' own split fields. Official layout only.
	Splits string
	// Lenient and NoImageCheck are passed to the readers (see Options).
	Lenient, NoImageCheck bool
}

// Source is a resolved ScienceQA data source: its layout and the files Load reads.
type Source struct {
	// Path is what was given to Open.
	Path   string
	Layout Layout
	// Problems, Splits, Images and Captions are the official layout's files; Splits and Captions may be ""
	// (none found). Clear Captions before Load to read without captions.
	Problems, Splits, Images, Captions string
	// Parquet are the parquet files, sorted (parquet layouts).
	Parquet []string
	// Lenient and NoImageCheck are passed to the readers.
	Lenient, NoImageCheck bool
}

// Open detects the layout of path — a folder, a .parquet file or a problems .json file — and resolves its files;
// Load then reads them. A folder must hold exactly one layout: the official one (problems.json, or a single
// problems*.json such as problems_test.json, with pid_splits.json and images/ beside it), <split>-*.parquet files,
// or data/<split>-*.parquet (a Hugging Face snapshot). Several, none, or an ambiguous choice of problems files is
// an error naming the folder and what it holds.
func Open(path string, o OpenOptions) (*Source, error) {
	s := &Source{Path: path, Lenient: o.Lenient, NoImageCheck: o.NoImageCheck}
	if o.Problems != "" {
		dir := filepath.Dir(o.Problems)
		if st, err := os.Stat(path); path != "" && err == nil && st.IsDir() {
			dir = path
		}
		return s.official(o.Problems, o.Splits, dir)
	}
	if path == "" {
		return nil, fmt.Errorf("scienceqa: no data folder or file given")
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("scienceqa: data: %w", err)
	}
	if !st.IsDir() {
		switch strings.ToLower(filepath.Ext(path)) {
		case ".parquet":
			if o.Splits != "" {
				return nil, fmt.Errorf("scienceqa: %s: a splits file (%s) applies to the official layout only", path, o.Splits)
			}
			if _, err := parquetSplit(path); err != nil {
				return nil, err
			}
			s.Layout, s.Parquet = LayoutParquetFile, []string{path}
			return s, nil
		case ".json":
			return s.official(path, o.Splits, filepath.Dir(path))
		}
		return nil, fmt.Errorf("scienceqa: %s is neither a folder, a .parquet file nor a problems .json file", path)
	}

	top, err := filepath.Glob(filepath.Join(path, "*.parquet"))
	if err != nil {
		return nil, fmt.Errorf("scienceqa: %s: %w", path, err)
	}
	data, _ := filepath.Glob(filepath.Join(path, "data", "*.parquet"))
	problems, err := findProblemsFile(path)
	if err != nil {
		return nil, err
	}
	var found []string
	if problems != "" {
		found = append(found, "official layout ("+filepath.Base(problems)+")")
	}
	if len(top) > 0 {
		found = append(found, fmt.Sprintf("%d *.parquet files", len(top)))
	}
	if len(data) > 0 {
		found = append(found, fmt.Sprintf("%d data/*.parquet files", len(data)))
	}
	switch {
	case len(found) > 1:
		return nil, fmt.Errorf("scienceqa: %s holds several ScienceQA layouts: %s; give the file or subfolder to read (or -problems FILE): %w", path, strings.Join(found, ", "), ErrAmbiguous)
	case problems != "":
		return s.official(problems, o.Splits, path)
	case len(found) == 0:
		return nil, fmt.Errorf("scienceqa: %w in %s (found: %s): want problems.json (+ pid_splits.json, images/), <split>-*.parquet files, or data/<split>-*.parquet (a Hugging Face snapshot)", ErrNoData, path, listing(path))
	}
	if o.Splits != "" {
		return nil, fmt.Errorf("scienceqa: %s: a splits file (%s) applies to the official layout only, the folder holds parquet files", path, o.Splits)
	}
	s.Layout, s.Parquet = LayoutParquet, top
	if len(data) > 0 {
		s.Layout, s.Parquet = LayoutParquetData, data
	}
	sort.Strings(s.Parquet)
	for _, f := range s.Parquet {
		if _, err := parquetSplit(f); err != nil {
			return nil, fmt.Errorf("scienceqa: %s: %w", path, err)
		}
	}
	return s, nil
}

// findProblemsFile returns dir's problems.json, else its only problems*.json, else "".
func findProblemsFile(dir string) (string, error) {
	p := filepath.Join(dir, "problems.json")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	matches, err := filepath.Glob(filepath.Join(dir, "problems*.json"))
	if err != nil {
		return "", fmt.Errorf("scienceqa: %s: %w", dir, err)
	}
	switch len(matches) {
	case 0:
		return "", nil
	case 1:
		return matches[0], nil
	}
	names := make([]string, len(matches))
	for i, m := range matches {
		names[i] = filepath.Base(m)
	}
	return "", fmt.Errorf("scienceqa: %s holds several problems files (%s) and no problems.json: give one with -problems FILE: %w", dir, strings.Join(names, ", "), ErrAmbiguous)
}

// official resolves the official layout: a problems file, and pid_splits.json, images/, captions.json in dir.
func (s *Source) official(problems, splits, dir string) (*Source, error) {
	if _, err := os.Stat(problems); err != nil {
		return nil, fmt.Errorf("scienceqa: problems file: %w", err)
	}
	s.Layout, s.Problems, s.Images = LayoutOfficial, problems, filepath.Join(dir, "images")
	if splits != "" {
		if _, err := os.Stat(splits); err != nil {
			return nil, fmt.Errorf("scienceqa: splits file: %w", err)
		}
		s.Splits = splits
	} else if p := filepath.Join(dir, "pid_splits.json"); fileExists(p) {
		s.Splits = p
	}
	if p := filepath.Join(dir, "captions.json"); fileExists(p) {
		s.Captions = p
	}
	return s, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// listing names up to 8 entries of dir, for errors.
func listing(dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err.Error()
	}
	if len(entries) == 0 {
		return "nothing, the folder is empty"
	}
	var names []string
	for i, e := range entries {
		if i == 8 {
			names = append(names, fmt.Sprintf("… %d more", len(entries)-8))
			break
		}
		n := e.Name()
		if e.IsDir() {
			n += "/"
		}
		names = append(names, n)
	}
	return strings.Join(names, ", ")
}

// String says what will be read, for a main to print at start, e.g.
// "official: problems /d/problems.json, splits /d/pid_splits.json, images /d/images, captions none".
func (s *Source) String() string {
	if s.Layout == LayoutOfficial {
		or := func(p, none string) string {
			if p == "" {
				return none
			}
			return p
		}
		return fmt.Sprintf("%s: problems %s, splits %s, images %s, captions %s", s.Layout, s.Problems,
			or(s.Splits, "none (each problem's split field)"), s.Images, or(s.Captions, "none"))
	}
	return fmt.Sprintf("%s: %s", s.Layout, strings.Join(s.Parquet, ", "))
}

// Load reads and validates the source's problems (LoadOfficial or LoadParquetFiles).
func (s *Source) Load() (*Dataset, error) {
	switch s.Layout {
	case LayoutOfficial:
		return LoadOfficial(Options{Problems: s.Problems, Splits: s.Splits, Images: s.Images, Captions: s.Captions,
			Lenient: s.Lenient, NoImageCheck: s.NoImageCheck})
	case LayoutParquet, LayoutParquetData, LayoutParquetFile:
		return LoadParquetFiles(s.Parquet, s.Lenient)
	}
	return nil, fmt.Errorf("scienceqa: %s: unknown layout %q", s.Path, s.Layout)
}
