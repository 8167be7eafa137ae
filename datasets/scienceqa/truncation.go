package scienceqa

// Truncation counts the problems of a run whose prompts had to be shortened to fit a token limit (the
// pipeline's -max-len): on the training side and on the evaluation side. A run records it in summary.json (as
// "truncation"), so a result says on how many problems it trained or scored with less than their whole context.
type Truncation struct {
	// MaxLen is the token limit the prompts were fitted to.
	MaxLen int `json:"max_len"`
	// Train counts the training problems (a problem too long even without context is left out of training).
	Train TruncationCount `json:"train"`
	// Eval counts the evaluation problems over every prompt the evaluation builds for them (a problem too long
	// even without context is cut from the left for scoring, keeping BOS and the options).
	Eval TruncationCount `json:"eval"`
}

// maxTruncationExamples is how many pids of each kind a TruncationCount keeps.
const maxTruncationExamples = 5

// TruncationCount counts problems by how their prompts fitted. Note each problem's prompts; a problem noted
// several times (one prompt per scoring protocol) counts once in each field.
type TruncationCount struct {
	// Problems is the number of problems noted.
	Problems int `json:"problems"`
	// ContextCut counts problems whose context lost words (from its end) so that the prompt fits.
	ContextCut int `json:"context_cut"`
	// TooLong counts problems whose prompt does not fit even with no context (ErrTooLong).
	TooLong int `json:"too_long"`
	// ContextCutPIDs and TooLongPIDs are the first few such problems.
	ContextCutPIDs []string `json:"context_cut_pids,omitempty"`
	TooLongPIDs    []string `json:"too_long_pids,omitempty"`

	seen map[string]uint8 // pid → noted | cut | too long
}

const (
	notedProblem = 1 << iota
	notedCut
	notedTooLong
)

// Note records one tokenization of problem pid: contextCut when its context was shortened to fit
// (Example.ContextCut, Cloze.ContextCut), tooLong when it did not fit even without context.
func (c *TruncationCount) Note(pid string, contextCut, tooLong bool) {
	if c.seen == nil {
		c.seen = map[string]uint8{}
	}
	s := c.seen[pid]
	if s&notedProblem == 0 {
		c.Problems++
	}
	if contextCut && s&notedCut == 0 {
		c.ContextCut++
		if len(c.ContextCutPIDs) < maxTruncationExamples {
			c.ContextCutPIDs = append(c.ContextCutPIDs, pid)
		}
		s |= notedCut
	}
	if tooLong && s&notedTooLong == 0 {
		c.TooLong++
		if len(c.TooLongPIDs) < maxTruncationExamples {
			c.TooLongPIDs = append(c.TooLongPIDs, pid)
		}
		s |= notedTooLong
	}
	c.seen[pid] = s | notedProblem
}

// ContextCut reports whether the context was shortened to fit TokenOptions.MaxLen.
func (e Example) ContextCut() bool { return e.ContextWords >= 0 }

// ContextCut reports whether the context was shortened to fit ClozeOptions.MaxLen.
func (c Cloze) ContextCut() bool { return c.ContextWords >= 0 }
