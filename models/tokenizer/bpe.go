package tokenizer

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// Token types, numbered as GGUF's tokenizer.ggml.token_type (llama.cpp's llama_token_type).
const (
	TokenNormal      = 1
	TokenUnknown     = 2
	TokenControl     = 3
	TokenUserDefined = 4
	TokenUnused      = 5
	TokenByte        = 6
)

// BPEConfig describes a byte-level BPE vocabulary from plain slices (see [NewBPE]).
type BPEConfig struct {
	// Tokens are the pieces by id, in GPT-2's byte-to-unicode form ("Ġ" for a space) except control and
	// user-defined tokens, which are plain text ("<|im_start|>").
	Tokens []string
	// Merges are "left right" pairs of pieces, highest priority first.
	Merges []string
	// Types are the token types by id (TokenNormal, TokenControl, ...); nil means all TokenNormal. Control and
	// user-defined tokens are matched whole in the text before pre-tokenization.
	Types []int32
	// BOS and EOS are the beginning/end-of-sequence ids; -1 when the vocabulary has none.
	BOS, EOS int
	// AddBOS is whether the model expects a BOS at the start of a prompt (GGUF's add_bos_token); see [BPE.AddsBOS].
	AddBOS bool
	// Pre names the pre-tokenizer: PreGPT2 ("gpt2", "gpt-2" or ""), PreSmolLM, PreLlama3 ("llama3", "llama-bpe").
	Pre string
	// IgnoreMerges makes a pre-token that is itself in the vocabulary one token without merging (HF's
	// ignore_merges, llama.cpp's behaviour for llama-bpe).
	IgnoreMerges bool
	// AddPrefixSpace prepends a space to every text fragment that does not start with one (HF ByteLevel's
	// add_prefix_space).
	AddPrefixSpace bool
	// ChatTemplate is the model's chat template text (Jinja), kept for [BPE.ChatTemplate]; may be empty.
	ChatTemplate string
	// Name identifies the source in errors.
	Name string
}

// BPE is a byte-level BPE tokenizer (GPT-2, SmolLM, Llama 3): text is split on control and user-defined tokens,
// pre-tokenized by a fixed pattern, each piece's UTF-8 bytes are merged by rank, and ids are read back byte for
// byte. It is read-only after construction and safe for concurrent use.
//
// Decoding keeps raw bytes, as llama.cpp does: a token sequence that splits a UTF-8 character gives those bytes
// (not U+FFFD as Hugging Face's lossy decode would), so Decode(Encode(s)) == s for every string, valid UTF-8 or not.
type BPE struct {
	name           string
	pieces         []string // as stored
	text           []string // decoded bytes of every id
	types          []int32
	vocab          map[string]int   // decoded bytes -> id, normal tokens (lowest id wins)
	byteID         [256]int32       // id of each single byte
	merges         map[uint64]merge // (left id, right id) -> rank and result
	specials       []string         // texts split out before pre-tokenization, longest first
	specialID      map[string]int
	specialFirst   [256]bool
	bos, eos       int
	addBOS         bool
	pre            preTokenizer
	preName        string
	ignoreMerges   bool
	addPrefixSpace bool
	chatTemplate   string
	pool           sync.Pool // *bpeScratch
}

type merge struct {
	rank, id int32
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// GPT-2's reversible byte <-> unicode mapping: printable Latin-1 bytes stand for themselves, the other 68 bytes
// are shifted to U+0100.. in byte order, so every piece is printable text.
var byteToRune, runeToByte = func() (b2r [256]rune, r2b map[rune]byte) {
	r2b = make(map[rune]byte, 256)
	n := rune(0)
	for b := range 256 {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			b2r[b] = rune(b)
		} else {
			b2r[b] = 256 + n
			n++
		}
		r2b[b2r[b]] = byte(b)
	}
	return b2r, r2b
}()

// unbyte turns a byte-level piece back into its bytes; ok is false when a character is outside the mapping.
func unbyte(piece string) (string, bool) {
	out := make([]byte, 0, len(piece))
	for _, r := range piece {
		b, ok := runeToByte[r]
		if !ok {
			return "", false
		}
		out = append(out, b)
	}
	return string(out), true
}

// ByteLevelPiece returns the byte-level form of raw bytes (" a" -> "Ġa"), as pieces are stored.
func ByteLevelPiece(raw string) string {
	var sb strings.Builder
	for i := 0; i < len(raw); i++ {
		sb.WriteRune(byteToRune[raw[i]])
	}
	return sb.String()
}

func isSpecialType(t int32) bool { return t == TokenControl || t == TokenUserDefined }

// NewBPE builds a byte-level BPE tokenizer. Both halves and the result of every merge must be tokens; a repeated
// merge keeps its first (highest) rank. A byte that has no single-byte token (SmolLM2 lacks 21, such as 0x04 and
// 0xF5..0xFF) is dropped from the ids when no merge absorbs it, as Hugging Face tokenizers (without an unk token)
// and llama.cpp do; [BPE.MissingBytes] lists them.
func NewBPE(cfg BPEConfig) (*BPE, error) {
	name := cfg.Name
	if name == "" {
		name = "BPE config"
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("tokenizer: %s: %s", name, fmt.Sprintf(format, args...))
	}
	n := len(cfg.Tokens)
	if n == 0 {
		return nil, fail("no tokens")
	}
	if cfg.Types != nil && len(cfg.Types) != n {
		return nil, fail("%d token types for %d tokens", len(cfg.Types), n)
	}
	pre, err := preTokenizerByName(cfg.Pre)
	if err != nil {
		return nil, fail("%v", err)
	}
	for _, id := range []int{cfg.BOS, cfg.EOS} {
		if id < -1 || id >= n {
			return nil, fail("BOS/EOS id %d outside [-1, %d)", id, n)
		}
	}
	t := &BPE{
		name: name, pieces: cfg.Tokens, text: make([]string, n), types: make([]int32, n),
		vocab: make(map[string]int, n), merges: make(map[uint64]merge, len(cfg.Merges)), specialID: map[string]int{},
		bos: cfg.BOS, eos: cfg.EOS, addBOS: cfg.AddBOS, pre: pre, preName: cfg.Pre, ignoreMerges: cfg.IgnoreMerges,
		addPrefixSpace: cfg.AddPrefixSpace, chatTemplate: cfg.ChatTemplate,
	}
	t.pool.New = func() any { return new(bpeScratch) }
	for i := range t.byteID {
		t.byteID[i] = -1
	}
	pieceID := make(map[string]int32, n) // stored piece -> id, for the merges
	for id, piece := range cfg.Tokens {
		typ := int32(TokenNormal)
		if cfg.Types != nil {
			typ = cfg.Types[id]
		}
		t.types[id] = typ
		if isSpecialType(typ) {
			if piece == "" {
				return nil, fail("token %d is an empty control/user-defined token", id)
			}
			t.text[id] = piece
			if _, dup := t.specialID[piece]; !dup {
				t.specialID[piece] = id
				t.specials = append(t.specials, piece)
				t.specialFirst[piece[0]] = true
			}
			continue
		}
		raw, ok := unbyte(piece)
		if !ok {
			return nil, fail("token %d %q is not in GPT-2's byte-level form", id, piece)
		}
		t.text[id] = raw
		if _, dup := pieceID[piece]; !dup {
			pieceID[piece] = int32(id)
			t.vocab[raw] = id
			if len(raw) == 1 {
				t.byteID[raw[0]] = int32(id)
			}
		}
	}
	sort.SliceStable(t.specials, func(i, j int) bool { return len(t.specials[i]) > len(t.specials[j]) })
	for rank, m := range cfg.Merges {
		left, right, ok := strings.Cut(m, " ")
		if !ok || left == "" || right == "" || strings.Contains(right, " ") {
			return nil, fail("merge %d %q is not two pieces separated by one space", rank, m)
		}
		a, okA := pieceID[left]
		b, okB := pieceID[right]
		r, okR := pieceID[left+right]
		if !okA || !okB || !okR {
			return nil, fail("merge %d %q: %q, %q or %q is not a token", rank, m, left, right, left+right)
		}
		if _, dup := t.merges[pairKey(a, b)]; !dup {
			t.merges[pairKey(a, b)] = merge{rank: int32(rank), id: r}
		}
	}
	return t, nil
}

// BOS returns the beginning-of-sequence id (-1 when there is none).
func (t *BPE) BOS() int { return t.bos }

// EOS returns the end-of-sequence id (-1 when there is none).
func (t *BPE) EOS() int { return t.eos }

// AddsBOS reports whether the model expects a BOS before a prompt (GGUF's add_bos_token; false for SmolLM2).
func (t *BPE) AddsBOS() bool { return t.addBOS }

// VocabSize returns the number of tokens.
func (t *BPE) VocabSize() int { return len(t.pieces) }

// Piece returns the token of id as stored (byte-level form, "Ġ" for a space; "" when out of range).
func (t *BPE) Piece(id int) string { return at(t.pieces, id) }

// TokenType returns the type of id (TokenNormal, TokenControl, ...; 0 when out of range).
func (t *BPE) TokenType(id int) int32 { return at(t.types, id) }

// MissingBytes lists the bytes that have no single-byte token; Encode drops them.
func (t *BPE) MissingBytes() []byte {
	var out []byte
	for b, id := range t.byteID {
		if id < 0 {
			out = append(out, byte(b))
		}
	}
	return out
}

// PreTokenizer returns the pre-tokenizer's name as configured.
func (t *BPE) PreTokenizer() string { return t.preName }

// TokenID returns the id of a control or user-defined token's text ("<|im_end|>") or of a normal token's decoded
// text, and whether there is one.
func (t *BPE) TokenID(text string) (int, bool) {
	if id, ok := t.specialID[text]; ok {
		return id, true
	}
	id, ok := t.vocab[text]
	return id, ok
}

// Encode tokenizes text: control and user-defined tokens written in the text ("<|im_start|>") become their ids
// (leftmost, longest first), the text between them is pre-tokenized and merged. addBOS prepends BOS (when there is
// one); no EOS is appended.
func (t *BPE) Encode(text string, addBOS bool) []int {
	ids := make([]int, 0, len(text)/4+2)
	if addBOS && t.bos >= 0 {
		ids = append(ids, t.bos)
	}
	start := 0
	for i := 0; i < len(text); i++ {
		if !t.specialFirst[text[i]] {
			continue
		}
		for _, sp := range t.specials {
			if strings.HasPrefix(text[i:], sp) {
				ids = t.encodeOrdinary(ids, text[start:i])
				ids = append(ids, t.specialID[sp])
				i += len(sp) - 1
				start = i + 1
				break
			}
		}
	}
	return t.encodeOrdinary(ids, text[start:])
}

// EncodeOrdinary tokenizes text as plain text: control-token texts such as "<|im_end|>" are split like any other
// characters.
func (t *BPE) EncodeOrdinary(text string, addBOS bool) []int {
	ids := make([]int, 0, len(text)/4+2)
	if addBOS && t.bos >= 0 {
		ids = append(ids, t.bos)
	}
	return t.encodeOrdinary(ids, text)
}

func (t *BPE) encodeOrdinary(ids []int, text string) []int {
	if text == "" {
		return ids
	}
	if t.addPrefixSpace && text[0] != ' ' {
		text = " " + text
	}
	sc := t.pool.Get().(*bpeScratch)
	t.pre(text, func(piece string) { ids = t.mergeWord(ids, piece, sc) })
	t.pool.Put(sc)
	return ids
}

// bpeScratch is reused across words to keep merging allocation-free.
type bpeScratch struct {
	syms []bpeSymbol
	heap []bpeCandidate
}

type bpeSymbol struct {
	id         int32
	prev, next int32 // -1 at the ends; id -1 marks a symbol merged into its left neighbour
}

type bpeCandidate struct {
	rank, pos   int32
	left, right int32 // the ids the pair had when queued
}

func candBefore(a, b bpeCandidate) bool {
	if a.rank != b.rank {
		return a.rank < b.rank
	}
	return a.pos < b.pos
}

// mergeWord appends the ids of one pre-token: start from its bytes and repeatedly apply the lowest-ranked merge,
// leftmost first on ties (as Hugging Face tokenizers and llama.cpp do). Stale queue entries, whose symbols have
// since been merged away, are skipped when popped, which keeps repeated pairs ("a a a") right.
func (t *BPE) mergeWord(ids []int, word string, sc *bpeScratch) []int {
	if len(word) == 1 {
		if id := t.byteID[word[0]]; id >= 0 {
			ids = append(ids, int(id))
		}
		return ids
	}
	if t.ignoreMerges {
		if id, ok := t.vocab[word]; ok {
			return append(ids, id)
		}
	}
	syms := sc.syms[:0]
	for i := 0; i < len(word); i++ {
		syms = append(syms, bpeSymbol{id: t.byteID[word[i]], prev: int32(i - 1), next: int32(i + 1)})
	}
	syms[len(syms)-1].next = -1
	h := sc.heap[:0]
	push := func(pos int32) {
		next := syms[pos].next
		if next < 0 {
			return
		}
		m, ok := t.merges[pairKey(syms[pos].id, syms[next].id)]
		if !ok || syms[pos].id < 0 || syms[next].id < 0 {
			return
		}
		h = append(h, bpeCandidate{rank: m.rank, pos: pos, left: syms[pos].id, right: syms[next].id})
		for i := len(h) - 1; i > 0; { // sift up
			p := (i - 1) / 2
			if !candBefore(h[i], h[p]) {
				break
			}
			h[i], h[p] = h[p], h[i]
			i = p
		}
	}
	for i := range syms {
		push(int32(i))
	}
	for len(h) > 0 {
		top := h[0]
		last := len(h) - 1
		h[0] = h[last]
		h = h[:last]
		for i := 0; ; { // sift down
			best, l, r := i, 2*i+1, 2*i+2
			if l < len(h) && candBefore(h[l], h[best]) {
				best = l
			}
			if r < len(h) && candBefore(h[r], h[best]) {
				best = r
			}
			if best == i {
				break
			}
			h[i], h[best] = h[best], h[i]
			i = best
		}
		s := &syms[top.pos]
		if s.id != top.left || s.next < 0 || syms[s.next].id != top.right || s.id < 0 {
			continue // stale
		}
		right := s.next
		s.id = t.merges[pairKey(top.left, top.right)].id
		s.next = syms[right].next
		if s.next >= 0 {
			syms[s.next].prev = top.pos
		}
		syms[right].id = -1
		if s.prev >= 0 {
			push(s.prev)
		}
		push(top.pos)
	}
	for i := int32(0); i >= 0; i = syms[i].next {
		if syms[i].id >= 0 { // -1: a byte without a token
			ids = append(ids, int(syms[i].id))
		}
	}
	sc.syms, sc.heap = syms, h
	return ids
}

// Decode returns the bytes of ids concatenated. BOS, EOS and control tokens are dropped (as SentencePiece's Decode
// drops control pieces); user-defined tokens give their text; out-of-range ids are skipped. Bytes are kept raw,
// so a split UTF-8 character is not replaced by U+FFFD. Use [BPE.DecodeSpecial] to keep control tokens.
func (t *BPE) Decode(ids []int) string {
	var sb strings.Builder
	for _, id := range ids {
		sb.WriteString(t.DecodePiece(-1, id))
	}
	return sb.String()
}

// DecodeSpecial is Decode keeping every token, control tokens included ("<|im_start|>user\n..."): Hugging Face's
// decode with skip_special_tokens=False, and the inverse of [BPE.Encode].
func (t *BPE) DecodeSpecial(ids []int) string {
	var sb strings.Builder
	for _, id := range ids {
		if id >= 0 && id < len(t.text) {
			sb.WriteString(t.text[id])
		}
	}
	return sb.String()
}

// DecodePiece returns the bytes of one token for streaming. Byte-level BPE has no dummy prefix, so prev does not
// matter (no space is dropped after BOS); a multi-byte character may arrive over several calls. BOS, EOS, control
// tokens and out-of-range ids give "".
func (t *BPE) DecodePiece(prev, id int) string {
	if id < 0 || id >= len(t.text) || id == t.bos || id == t.eos || t.types[id] == TokenControl {
		return ""
	}
	return t.text[id]
}

// ValidUTF8Prefix returns how many leading bytes of s form complete UTF-8 characters, for a streaming printer
// that holds back a character split across DecodePiece calls.
func ValidUTF8Prefix(s string) int {
	for i := len(s) - 1; i >= 0 && i >= len(s)-utf8.UTFMax; i-- {
		if utf8.RuneStart(s[i]) {
			if !utf8.FullRuneInString(s[i:]) {
				return i
			}
			break
		}
	}
	return len(s)
}

var _ Tokenizer = (*BPE)(nil)
