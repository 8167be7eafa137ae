package scienceqa

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Problem is one ScienceQA multiple-choice problem, from either layout.
type Problem struct {
	// PID identifies the problem: the official pid ("1".."21208"), or "<split>-<row>" for parquet files
	// without a pid column.
	PID string `json:"pid"`
	// Split is "train", "val" or "test".
	Split    string   `json:"split"`
	Question string   `json:"question"`
	Choices  []string `json:"choices"`
	// Answer is the index of the correct choice.
	Answer int `json:"answer"`
	// Hint is the text context ("" when there is none).
	Hint string `json:"hint"`
	// Image is the image context; Image.Has() is false when the problem has none.
	Image Image `json:"image"`
	// Caption is the generated image caption from captions.json ("" when none was loaded).
	Caption string `json:"caption,omitempty"`
	// Metadata: empty when the source does not have it.
	Task     string `json:"task,omitempty"`
	Grade    string `json:"grade,omitempty"`
	Subject  string `json:"subject,omitempty"`
	Topic    string `json:"topic,omitempty"`
	Category string `json:"category,omitempty"`
	Skill    string `json:"skill,omitempty"`
	Lecture  string `json:"lecture,omitempty"`
	Solution string `json:"solution,omitempty"`
}

// HasText reports whether the problem has a text context (a non-empty hint), as evaluate_acc.py's has_text.
func (p *Problem) HasText() bool { return p.Hint != "" }

// HasImage reports whether the problem has an image context, as evaluate_acc.py's has_image.
func (p *Problem) HasImage() bool { return p.Image.Has() }

// Image refers to a problem's image: a file path (official layout, read lazily) or bytes embedded in a parquet
// file. The zero value means "no image".
type Image struct {
	// Path is the image file (official layout) or the file name stored in the parquet row (informative only
	// when Bytes is set).
	Path string `json:"path,omitempty"`
	// Bytes holds the encoded image (PNG/JPEG) when it came embedded in a parquet file.
	Bytes []byte `json:"-"`
}

// Has reports whether there is an image.
func (im Image) Has() bool { return len(im.Bytes) > 0 || im.Path != "" }

// Open returns a reader of the encoded image: the embedded bytes if present, else the file at Path.
func (im Image) Open() (io.ReadCloser, error) {
	switch {
	case len(im.Bytes) > 0:
		return io.NopCloser(bytes.NewReader(im.Bytes)), nil
	case im.Path != "":
		f, err := os.Open(im.Path)
		if err != nil {
			return nil, fmt.Errorf("scienceqa: image: %w", err)
		}
		return f, nil
	}
	return nil, fmt.Errorf("scienceqa: problem has no image")
}

// ReadAll returns the encoded image bytes (see Open).
func (im Image) ReadAll() ([]byte, error) {
	if len(im.Bytes) > 0 {
		return im.Bytes, nil
	}
	if im.Path == "" {
		return nil, fmt.Errorf("scienceqa: problem has no image")
	}
	b, err := os.ReadFile(im.Path)
	if err != nil {
		return nil, fmt.Errorf("scienceqa: image: %w", err)
	}
	return b, nil
}

// Splits known to the toolkit: the official ones. (minitrain/minival/minitest of pid_splits.json are subsets
// of these and can be selected with Dataset.Split.)
var knownSplits = map[string]bool{"train": true, "val": true, "test": true}

// pidLess orders pids numerically when both are integers (official pids) or "<split>-<n>" with the same split
// (parquet pids), else as strings, with integers first.
func pidLess(a, b string) bool {
	ia, ea := strconv.Atoi(a)
	ib, eb := strconv.Atoi(b)
	switch {
	case ea == nil && eb == nil:
		return ia < ib
	case ea == nil:
		return true
	case eb == nil:
		return false
	}
	pa, na, oka := strings.Cut(a, "-")
	pb, nb, okb := strings.Cut(b, "-")
	if oka && okb && pa == pb {
		xa, erra := strconv.Atoi(na)
		xb, errb := strconv.Atoi(nb)
		if erra == nil && errb == nil && xa != xb {
			return xa < xb
		}
	}
	return a < b
}

// SortByPID sorts problems by pid (numerically for official pids).
func SortByPID(ps []*Problem) {
	sort.SliceStable(ps, func(i, j int) bool { return pidLess(ps[i].PID, ps[j].PID) })
}
