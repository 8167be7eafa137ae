package tokenizer

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Pre-tokenizers split text into the pieces that BPE merges never cross. They are hand-written scanners that follow
// the regular expressions below alternative by alternative (Go's regexp has no look-ahead, which `\s+(?!\S)`
// needs); \s is Unicode White_Space ([unicode.IsSpace]), \p{L} [unicode.IsLetter], \p{N} [unicode.IsNumber].
// Invalid UTF-8 bytes count as "other" characters (neither space, letter nor number) and are kept as they are.
const (
	// PreGPT2 is GPT-2's pattern: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
	PreGPT2 = "gpt2"
	// PreSmolLM is llama.cpp's "smollm": every \p{N} character is its own piece, then PreGPT2 inside the rest.
	PreSmolLM = "smollm"
	// PreLlama3 is Llama 3's pattern ("llama-bpe" in GGUF files): (?i:'s|'t|'re|'ve|'m|'ll|'d)|
	// [^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
	PreLlama3 = "llama3"
)

// The regular expressions as tokenizer.json files spell them (Split pre-tokenizers are matched against these).
const (
	gpt2Regex   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	llama3Regex = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

type preTokenizer func(s string, yield func(piece string))

// preTokenizerByName maps the names of [BPEConfig.Pre] (and GGUF's tokenizer.ggml.pre) to scanners.
func preTokenizerByName(name string) (preTokenizer, error) {
	switch name {
	case PreGPT2, "gpt-2", "":
		return scanGPT2, nil
	case PreSmolLM:
		return scanSmolLM, nil
	case PreLlama3, "llama-bpe":
		return scanLlama3, nil
	}
	return nil, fmt.Errorf("unsupported pre-tokenizer %q (supported: %s (gpt-2), %s, %s (llama-bpe))",
		name, PreGPT2, PreSmolLM, PreLlama3)
}

type charClass uint8

const (
	clsOther charClass = iota
	clsSpace
	clsLetter
	clsNumber
)

var asciiClass = func() (t [utf8.RuneSelf]charClass) {
	for r := range rune(utf8.RuneSelf) {
		switch {
		case unicode.IsSpace(r):
			t[r] = clsSpace
		case unicode.IsLetter(r):
			t[r] = clsLetter
		case unicode.IsNumber(r):
			t[r] = clsNumber
		}
	}
	return t
}()

func classOf(r rune) charClass {
	if r < utf8.RuneSelf {
		return asciiClass[r]
	}
	switch {
	case r == utf8.RuneError:
		return clsOther
	case unicode.IsSpace(r):
		return clsSpace
	case unicode.IsLetter(r):
		return clsLetter
	case unicode.IsNumber(r):
		return clsNumber
	}
	return clsOther
}

// runeAt decodes the rune at byte offset i (ASCII fast path); invalid bytes give utf8.RuneError, 1.
func runeAt(s string, i int) (rune, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// classAt is the class of the rune at i, or clsSpace past the end (so "followed by \S" is false there).
func classAt(s string, i int) charClass {
	if i >= len(s) {
		return clsSpace
	}
	r, _ := runeAt(s, i)
	return classOf(r)
}

// skipClass returns the end of the run of class c starting at i, at most max runes long (max < 0: no limit).
func skipClass(s string, i int, c charClass, max int) int {
	for n := 0; i < len(s) && n != max; n++ {
		r, w := runeAt(s, i)
		if classOf(r) != c {
			break
		}
		i += w
	}
	return i
}

// contraction returns the length of the contraction suffix (s, t, m, d, re, ve, ll) at the start of s, or 0.
func contraction(s string, foldCase bool) int {
	lower := func(i int) byte {
		if i >= len(s) {
			return 0
		}
		c := s[i]
		if foldCase && c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		return c
	}
	switch a := lower(0); a {
	case 's', 't', 'm', 'd':
		return 1
	case 'r', 'v':
		if lower(1) == 'e' {
			return 2
		}
	case 'l':
		if lower(1) == 'l' {
			return 2
		}
	}
	return 0
}

// whitespaceRun scans the whitespace starting at i: end of the run, start of its last rune, and the offset just
// after its last \r or \n (-1 when it has none).
func whitespaceRun(s string, i int) (end, last, afterNL int) {
	end, last, afterNL = i, i, -1
	for end < len(s) {
		r, w := runeAt(s, end)
		if classOf(r) != clsSpace {
			break
		}
		last = end
		end += w
		if r == '\r' || r == '\n' {
			afterNL = end
		}
	}
	return end, last, afterNL
}

// wsPiece applies \s+(?!\S)|\s+ at i: a run that reaches the end of s is one piece; otherwise the run's last rune
// is left for the next piece unless it is the only one.
func wsPiece(s string, i, end, last int) int {
	if end == len(s) || last == i {
		return end
	}
	return last
}

// scanPieces yields the pieces of s in order: at each position a contraction ('s, 't, 're, ...: both regexes' first
// alternative; foldCase for Llama 3's case-insensitive one), else the piece whose end next returns.
func scanPieces(s string, foldCase bool, next func(s string, i int) int, yield func(string)) {
	for i := 0; i < len(s); {
		j := i
		if s[i] == '\'' {
			if n := contraction(s[i+1:], foldCase); n > 0 {
				j = i + 1 + n
			}
		}
		if j == i {
			j = next(s, i)
		}
		yield(s[i:j])
		i = j
	}
}

func scanGPT2(s string, yield func(string)) { scanPieces(s, false, gpt2Piece, yield) }

// gpt2Piece returns the end of the piece at i of GPT-2's regex after its contractions:
// ` ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
func gpt2Piece(s string, i int) int {
	r, _ := runeAt(s, i)
	c, j := classOf(r), i
	if r == ' ' {
		if c2 := classAt(s, i+1); c2 != clsSpace {
			c, j = c2, i+1 // " ?X+": the space leads the run
		}
	}
	if c != clsSpace {
		return skipClass(s, j, c, -1)
	}
	end, last, _ := whitespaceRun(s, i)
	return wsPiece(s, i, end, last)
}

func scanSmolLM(s string, yield func(string)) {
	start := 0
	for i := 0; i < len(s); {
		r, w := runeAt(s, i)
		if classOf(r) == clsNumber {
			if start < i {
				scanGPT2(s[start:i], yield)
			}
			yield(s[i : i+w])
			start = i + w
		}
		i += w
	}
	if start < len(s) {
		scanGPT2(s[start:], yield)
	}
}

func scanLlama3(s string, yield func(string)) { scanPieces(s, true, llama3Piece, yield) }

// llama3Piece returns the end of the piece at i of Llama 3's regex after its contractions.
func llama3Piece(s string, i int) int {
	r, w := runeAt(s, i)
	c := classOf(r)
	switch {
	case c == clsLetter: // [^\r\n\p{L}\p{N}]?\p{L}+ without the lead
		return skipClass(s, i, clsLetter, -1)
	case c == clsNumber: // \p{N}{1,3}
		return skipClass(s, i, clsNumber, 3)
	case r != '\r' && r != '\n' && classAt(s, i+w) == clsLetter: // one lead character, then letters
		return skipClass(s, i+w, clsLetter, -1)
	case c == clsOther || (r == ' ' && classAt(s, i+w) == clsOther): // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
		j := i
		if c != clsOther {
			j = i + w
		}
		j = skipClass(s, j, clsOther, -1)
		for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
			j++
		}
		return j
	}
	// whitespace: \s*[\r\n]+ (up to the run's last newline), then \s+(?!\S)|\s+
	end, last, afterNL := whitespaceRun(s, i)
	if afterNL > 0 {
		return afterNL
	}
	return wsPiece(s, i, end, last)
}
