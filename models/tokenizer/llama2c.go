package tokenizer

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Llama2C is a tokenizer in llama2.c's tokenizer.bin format: an int32 max_token_length, then for every piece a
// float32 score, an int32 byte length and the piece's bytes (spaces are plain ' ', byte pieces read "<0xXX>" and
// sit at ids 3..258). Encode reproduces run.c's encode() exactly; Decode and DecodePiece follow its decode().
type Llama2C struct {
	path           string
	maxTokenLength int
	pieces         []string
	scores         []float32
	ids            map[string]int // piece -> lowest id holding it
	spaceID        int            // the " " piece, used as the dummy prefix
}

// Fixed ids of llama2.c tokenizers (run.c hard-codes them).
const (
	llama2cBOS        = 1
	llama2cEOS        = 2
	llama2cByteOffset = 3 // byte b falls back to id b+3: after <unk>, <s>, </s>
)

// LoadLlama2C reads a llama2.c tokenizer.bin file.
func LoadLlama2C(path string) (*Llama2C, error) { return loadFile(path, ParseLlama2C) }

// ParseLlama2C parses the contents of a llama2.c tokenizer.bin; name identifies the source in errors. The vocabulary
// size is the number of records in the file (the format does not store it).
func ParseLlama2C(data []byte, name string) (*Llama2C, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("tokenizer: %s is not a valid llama2.c tokenizer.bin: %s", name, fmt.Sprintf(format, args...))
	}
	if len(data) < 4 {
		return nil, fail("file has %d bytes, too short for the max_token_length header", len(data))
	}
	maxLen := int(int32(binary.LittleEndian.Uint32(data)))
	if maxLen <= 0 || maxLen > 1<<16 {
		return nil, fail("max_token_length %d is implausible", maxLen)
	}
	t := &Llama2C{path: name, maxTokenLength: maxLen, ids: make(map[string]int), spaceID: -1}
	for off := 4; off < len(data); {
		i := len(t.pieces)
		if len(data)-off < 8 {
			return nil, fail("truncated at byte %d: piece %d needs a score and a length (8 bytes), %d left", off, i, len(data)-off)
		}
		score := math.Float32frombits(binary.LittleEndian.Uint32(data[off:]))
		n := int(int32(binary.LittleEndian.Uint32(data[off+4:])))
		off += 8
		if n < 0 || n > maxLen {
			return nil, fail("piece %d at byte %d has length %d, outside [0, max_token_length=%d]", i, off-4, n, maxLen)
		}
		if len(data)-off < n {
			return nil, fail("truncated at byte %d: piece %d needs %d bytes, %d left", off, i, n, len(data)-off)
		}
		piece := string(data[off : off+n])
		off += n
		t.pieces = append(t.pieces, piece)
		t.scores = append(t.scores, score)
		if _, dup := t.ids[piece]; !dup {
			t.ids[piece] = i
		}
	}
	// run.c's byte fallback assumes ids 3..258 are the 256 byte pieces; check it rather than emit wrong ids.
	if len(t.pieces) < llama2cByteOffset+256 {
		return nil, fail("%d pieces, fewer than the 259 needed for <unk>, <s>, </s> and the 256 byte pieces", len(t.pieces))
	}
	for b := 0; b < 256; b++ {
		id := b + llama2cByteOffset
		if v, ok := parseByteToken(t.pieces[id]); !ok || int(v) != b {
			return nil, fail("piece %d is %q, expected the byte piece <0x%02X>", id, t.pieces[id], b)
		}
	}
	id, ok := t.ids[" "]
	if !ok {
		return nil, fail("no \" \" piece, needed as the dummy prefix")
	}
	t.spaceID = id
	return t, nil
}

// BOS returns 1, as in llama2.c.
func (t *Llama2C) BOS() int { return llama2cBOS }

// EOS returns 2, as in llama2.c.
func (t *Llama2C) EOS() int { return llama2cEOS }

// VocabSize returns the number of pieces in the file.
func (t *Llama2C) VocabSize() int { return len(t.pieces) }

// MaxTokenLength returns the header's max_token_length (bytes of the longest piece).
func (t *Llama2C) MaxTokenLength() int { return t.maxTokenLength }

// Piece returns the raw piece of id ("" when out of range).
func (t *Llama2C) Piece(id int) string { return at(t.pieces, id) }

// Score returns the merge score of id (0 when out of range).
func (t *Llama2C) Score(id int) float32 { return at(t.scores, id) }

// initialTokens does run.c's first phase: optional BOS, the dummy-prefix " " when text is non-empty, then one id
// per UTF-8 character (a leading byte plus up to 3 continuation bytes, as run.c groups them, so malformed UTF-8 is
// grouped the same way) or, if that character is not a piece, one id per byte (byte + 3).
// Unlike C strings, text may contain NUL bytes; run.c would stop at the first one.
func (t *Llama2C) initialTokens(text string, addBOS bool) []int {
	tokens := make([]int, 0, len(text)+2)
	if addBOS {
		tokens = append(tokens, llama2cBOS)
	}
	if text != "" {
		tokens = append(tokens, t.spaceID)
	}
	for i := 0; i < len(text); {
		j := i + 1
		for j < len(text) && text[j]&0xC0 == 0x80 && j-i < 4 {
			j++
		}
		if id, ok := t.ids[text[i:j]]; ok {
			tokens = append(tokens, id)
		} else {
			for k := i; k < j; k++ {
				tokens = append(tokens, int(text[k])+llama2cByteOffset)
			}
		}
		i = j
	}
	return tokens
}

// minMergeScore is run.c's initial best score: pairs scoring at or below it are never merged.
const minMergeScore = float32(-1e10)

// Encode returns the ids run.c's encode(text, bos, eos=0) gives. run.c merges, until none is left, the adjacent
// pair whose concatenated piece has the best score (the leftmost on ties), rescanning the whole sequence each time;
// here the same merges happen in the same order through a priority queue ordered by (score, position), so long
// texts cost O(n log n) instead of O(n²).
func (t *Llama2C) Encode(text string, addBOS bool) []int {
	tokens := t.initialTokens(text, addBOS)
	n := len(tokens)
	if n < 2 {
		return tokens
	}
	// A doubly-linked list over tokens: merged pairs collapse into their left node, so a node's index keeps its
	// left-to-right order and breaks ties like run.c's leftmost rule.
	next := make([]int, n)
	prev := make([]int, n)
	for i := range tokens {
		next[i], prev[i] = i+1, i-1
	}
	next[n-1] = -1
	alive := make([]bool, n)
	for i := range alive {
		alive[i] = true
	}
	buf := make([]byte, 0, 2*t.maxTokenLength)
	q := make(mergeQueue, 0, n)
	suggest := func(l, r int) {
		if l < 0 || r < 0 {
			return
		}
		buf = append(append(buf[:0], t.pieces[tokens[l]]...), t.pieces[tokens[r]]...)
		id, ok := t.ids[string(buf)] // no allocation: the compiler special-cases map[string(bytes)]
		if !ok || !(t.scores[id] > minMergeScore) {
			return
		}
		q.push(mergeCandidate{score: t.scores[id], left: l, right: r, leftID: tokens[l], rightID: tokens[r], merged: id})
	}
	for i := 0; i+1 < n; i++ {
		suggest(i, i+1)
	}
	for q.Len() > 0 {
		c := q.pop()
		// Stale candidates: a side was merged away or changed since the pair was suggested.
		if !alive[c.left] || !alive[c.right] || next[c.left] != c.right || tokens[c.left] != c.leftID || tokens[c.right] != c.rightID {
			continue
		}
		tokens[c.left] = c.merged
		alive[c.right] = false
		next[c.left] = next[c.right]
		if next[c.right] >= 0 {
			prev[next[c.right]] = c.left
		}
		suggest(prev[c.left], c.left)
		suggest(c.left, next[c.left])
	}
	out := make([]int, 0, n)
	for i := 0; i >= 0; i = next[i] {
		out = append(out, tokens[i])
	}
	return out
}

// Decode concatenates DecodePiece over ids, starting as if after BOS so the dummy prefix's space is dropped; BOS
// and EOS give no text (a BOS restarts the leading-space rule, as in run.c) and out-of-range ids are skipped.
func (t *Llama2C) Decode(ids []int) string {
	var sb []byte
	prev := llama2cBOS
	for _, id := range ids {
		if id == llama2cBOS {
			prev = id
			continue
		}
		if id < 0 || id >= len(t.pieces) || id == llama2cEOS {
			continue
		}
		sb = append(sb, t.DecodePiece(prev, id)...)
		prev = id
	}
	return string(sb)
}

// DecodePiece is run.c's decode(prev, id): the piece of id, without its leading space when prev is BOS, and a
// byte piece <0xXX> turned into that raw byte. BOS, EOS and out-of-range ids give "". Pass the result through
// [SafePiece] to print exactly what run.c prints.
func (t *Llama2C) DecodePiece(prev, id int) string {
	if id < 0 || id >= len(t.pieces) || id == llama2cBOS || id == llama2cEOS {
		return ""
	}
	piece := t.pieces[id]
	if prev == llama2cBOS && len(piece) > 0 && piece[0] == ' ' {
		piece = piece[1:]
	}
	if b, ok := parseByteToken(piece); ok {
		return string([]byte{b})
	}
	return piece
}

type mergeCandidate struct {
	score           float32
	left, right     int
	leftID, rightID int
	merged          int
}

// mergeQueue is a binary max-heap on score, then the smallest left position (typed, unlike container/heap, so
// pushes do not allocate).
type mergeQueue []mergeCandidate

func (q mergeQueue) Len() int { return len(q) }

func (q mergeQueue) before(i, j int) bool {
	if q[i].score != q[j].score {
		return q[i].score > q[j].score
	}
	return q[i].left < q[j].left
}

func (q *mergeQueue) push(c mergeCandidate) {
	*q = append(*q, c)
	h := *q
	for i := len(h) - 1; i > 0; {
		parent := (i - 1) / 2
		if !h.before(i, parent) {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
}

func (q *mergeQueue) pop() mergeCandidate {
	h := *q
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		best, l, r := i, 2*i+1, 2*i+2
		if l < len(h) && h.before(l, best) {
			best = l
		}
		if r < len(h) && h.before(r, best) {
			best = r
		}
		if best == i {
			break
		}
		h[i], h[best] = h[best], h[i]
		i = best
	}
	*q = h
	return top
}
