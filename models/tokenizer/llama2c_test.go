package tokenizer

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func loadTok512(t *testing.T) *Llama2C { return mustLoad(t, LoadLlama2C, tok512Path(t)) }

// naiveEncode is run.c's encode() written the simple way, independently of Encode: look every character (or its
// bytes) up, then rescan the whole sequence for the best-scoring mergeable pair (leftmost on ties) until none is left.
func naiveEncode(tok *Llama2C, lookup map[string]int, text string, bos bool) []int {
	var ids []int
	if bos {
		ids = append(ids, 1)
	}
	if len(text) > 0 {
		ids = append(ids, lookup[" "])
	}
	b := []byte(text)
	var buf []byte
	for i := 0; i < len(b); i++ {
		buf = append(buf, b[i])
		if i+1 < len(b) && b[i+1]&0xC0 == 0x80 && len(buf) < 4 {
			continue
		}
		if id, ok := lookup[string(buf)]; ok {
			ids = append(ids, id)
		} else {
			for _, c := range buf {
				ids = append(ids, int(c)+3)
			}
		}
		buf = buf[:0]
	}
	for {
		best, bestID, bestIdx := float32(-1e10), -1, -1
		for i := 0; i+1 < len(ids); i++ {
			id, ok := lookup[tok.Piece(ids[i])+tok.Piece(ids[i+1])]
			if ok && tok.Score(id) > best {
				best, bestID, bestIdx = tok.Score(id), id, i
			}
		}
		if bestIdx < 0 {
			return ids
		}
		ids[bestIdx] = bestID
		ids = append(ids[:bestIdx+1], ids[bestIdx+2:]...)
	}
}

// naiveLookup maps every piece to its lowest id.
func naiveLookup(tok *Llama2C) map[string]int {
	lookup := map[string]int{}
	for id := tok.VocabSize() - 1; id >= 0; id-- {
		lookup[tok.Piece(id)] = id
	}
	return lookup
}

// TestLlama2CKnownEncodings checks encodings traced by hand through tok512's pieces and scores.
func TestLlama2CKnownEncodings(t *testing.T) {
	tok := loadTok512(t)
	if tok.VocabSize() != 512 || tok.MaxTokenLength() != 7 || tok.BOS() != 1 || tok.EOS() != 2 {
		t.Fatalf("vocab %d, max_token_length %d, BOS %d, EOS %d; want 512, 7, 1, 2",
			tok.VocabSize(), tok.MaxTokenLength(), tok.BOS(), tok.EOS())
	}
	// "the cat": initial [" ", "t", "h", "e", " ", "c", "a", "t"] = [410 413 415 411 410 429 412 413]. Merges by
	// score: " t"(259, -0) > "he"(260, -1) > " the"(265, -6) > " c"(280, -21) > "at"(294, -35).
	pieces := map[int]struct {
		piece string
		score float32
	}{259: {" t", 0}, 260: {"he", -1}, 265: {" the", -6}, 280: {" c", -21}, 294: {"at", -35}, 410: {" ", -151}}
	for id, want := range pieces {
		if tok.Piece(id) != want.piece || tok.Score(id) != want.score {
			t.Errorf("piece %d = %q (score %g), want %q (%g)", id, tok.Piece(id), tok.Score(id), want.piece, want.score)
		}
	}
	cases := []struct {
		text string
		bos  bool
		want []int
	}{
		{"the cat", false, []int{265, 280, 294}},
		{"the cat", true, []int{1, 265, 280, 294}},
		// " H"(320) then " H"+"e"(346, -87); "ll"(306), " w"(263), "or"(304), "ld"(341); "o" stays (414).
		{"Hello world", true, []int{1, 346, 306, 414, 263, 304, 341}},
		// Two spaces: " "+"a" merges, the second " " cannot merge with " " (no "  " piece) and " b" takes "b".
		{"a  b", false, []int{261, 410, 268}},
		// "é" is a piece of its own (485): looked up as one 2-byte character, no byte fallback.
		// A tie: "ll"(306) is mergeable at two overlapping places; run.c takes the leftmost, leaving "l"(421) last.
		{"xlll", false, []int{410, 444, 306, 421}},
		{"balll", false, []int{268, 388, 421}},
		{"é", false, []int{410, 485}},
		// "°" is not a piece: its bytes C2 B0 fall back to ids 0xC2+3, 0xB0+3.
		{"°C", false, []int{410, 0xC2 + 3, 0xB0 + 3, 457}},
		// A 4-byte emoji falls back to 4 byte ids; "\n" is not a piece either (0x0A+3).
		{"😀\n", false, []int{410, 0xF0 + 3, 0x9F + 3, 0x98 + 3, 0x80 + 3, 0x0A + 3}},
		{"", false, []int{}},
		{"", true, []int{1}},
	}
	for _, c := range cases {
		got := tok.Encode(c.text, c.bos)
		if !equalInts(got, c.want) {
			t.Errorf("Encode(%q, %v) = %v, want %v", c.text, c.bos, got, c.want)
		}
		if !c.bos {
			if dec := tok.Decode(got); dec != c.text {
				t.Errorf("Decode(Encode(%q)) = %q", c.text, dec)
			}
		}
	}
}

// TestLlama2CMatchesRunC compares the priority-queue Encode with the rescanning run.c algorithm on all ScienceQA
// texts and on strings built to exercise ties, byte fallback and malformed UTF-8.
func TestLlama2CMatchesRunC(t *testing.T) {
	tok := loadTok512(t)
	lookup := naiveLookup(tok)
	texts := append(scienceQATexts(t),
		"lll", "xlll", "xppp", "eooo", "balll", "aaaa aaaa", "the the the", "  leading", "trailing  ", "\t\n\r", "x",
		"café naïve über 你好 😀 emoji °C ±5 µm", "\xff\xfe bad \x80\x80\x80\x80\x80 utf8 \xe2\x82", "a\x00b")
	for _, text := range texts {
		for _, bos := range []bool{false, true} {
			got, want := tok.Encode(text, bos), naiveEncode(tok, lookup, text, bos)
			if !equalInts(got, want) {
				t.Fatalf("Encode(%.60q, %v):\n got %v\nwant %v (run.c algorithm)", text, bos, got, want)
			}
		}
	}
}

func TestLlama2CRoundTrip(t *testing.T) {
	tok := loadTok512(t)
	texts := append(scienceQATexts(t), "é", "°C", "😀", "Ünïcödé — “quotes” ½ → ∞", " leading space", "\n")
	total, fallback := 0, 0
	for _, text := range texts {
		ids := tok.Encode(text, true)
		if ids[0] != 1 {
			t.Fatalf("Encode(%.40q, true) does not start with BOS: %v", text, ids[:1])
		}
		if got := tok.Decode(ids); got != text {
			t.Fatalf("Decode(Encode(%q)) = %q", text, got)
		}
		if got := streamDecode(tok, ids[1:]); got != text {
			t.Fatalf("streamed DecodePiece of %q = %q", text, got)
		}
		for _, id := range ids {
			total++
			if id >= 3 && id < 259 {
				fallback++
			}
		}
	}
	t.Logf("%d texts, %d tokens, %d byte-fallback tokens", len(texts), total, fallback)
	if fallback == 0 {
		t.Error("no byte-fallback token was exercised")
	}
}

func TestLlama2CDecodePiece(t *testing.T) {
	tok := loadTok512(t)
	cases := []struct {
		prev, id int
		want     string
	}{
		{1, 265, "the"},    // leading space dropped after BOS
		{265, 265, " the"}, // kept otherwise
		{1, 410, ""},       // the bare dummy prefix after BOS
		{5, 0x0A + 3, "\n"},
		{5, 0xC3 + 3, "\xc3"}, // a raw byte, not "<0xC3>"
		{5, 1, ""}, {5, 2, ""}, {5, -1, ""}, {5, 512, ""},
	}
	for _, c := range cases {
		if got := tok.DecodePiece(c.prev, c.id); got != c.want {
			t.Errorf("DecodePiece(%d, %d) = %q, want %q", c.prev, c.id, got, c.want)
		}
	}
	// Decode drops BOS/EOS and out-of-range ids; a BOS in the middle strips the next space again.
	if got := tok.Decode([]int{1, 265, 2, 1, 280, 294, 999, -4}); got != "thecat" {
		t.Errorf("Decode with BOS/EOS/out-of-range = %q, want %q", got, "thecat")
	}
	if got := tok.Decode(nil); got != "" {
		t.Errorf("Decode(nil) = %q", got)
	}
}

func TestSafePiece(t *testing.T) {
	cases := map[string]string{"": "", "a": "a", "\n": "\n", " ": " ", "\x01": "", "\x7f": "", "\xc3": "", "ab": "ab", "\xc3\xa9": "\xc3\xa9"}
	for in, want := range cases {
		if got := SafePiece(in); got != want {
			t.Errorf("SafePiece(%q) = %q, want %q", in, got, want)
		}
	}
}

// writeLlama2C serializes pieces in tokenizer.bin layout.
func writeLlama2C(maxLen int, pieces []string, scores []float32) []byte {
	out := binary.LittleEndian.AppendUint32(nil, uint32(maxLen))
	for i, p := range pieces {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(scores[i]))
		out = binary.LittleEndian.AppendUint32(out, uint32(len(p)))
		out = append(out, p...)
	}
	return out
}

func TestLlama2CMalformed(t *testing.T) {
	good, err := os.ReadFile(tok512Path(t))
	if err != nil {
		t.Fatal(err)
	}
	// A minimal valid file: <unk>, <s>, </s>, 256 byte pieces, " ".
	pieces := []string{"<unk>", "\n<s>\n", "\n</s>\n"}
	for b := 0; b < 256; b++ {
		pieces = append(pieces, fmt.Sprintf("<0x%02X>", b))
	}
	pieces = append(pieces, " ")
	minimal := writeLlama2C(7, pieces, make([]float32, len(pieces)))
	if tok, err := ParseLlama2C(minimal, "minimal"); err != nil {
		t.Fatalf("minimal valid file: %v", err)
	} else if got := tok.Encode("hi", false); !equalInts(got, []int{259, 'h' + 3, 'i' + 3}) {
		t.Fatalf("minimal Encode(hi) = %v", got)
	}

	noSpace := writeLlama2C(7, pieces[:259], make([]float32, 259))
	badByte := append([]string(nil), pieces...)
	badByte[10] = "x"
	longPiece := append(append([]string(nil), pieces...), "toolongpiece")
	cases := map[string]struct {
		data []byte
		want string
	}{
		"empty":             {nil, "too short"},
		"truncated header":  {good[:3], "too short"},
		"truncated score":   {good[:len(good)-1][:4+5], "truncated"},
		"truncated piece":   {good[:len(good)-1], "truncated"},
		"bad max length":    {append([]byte{0xff, 0xff, 0xff, 0x7f}, good[4:]...), "max_token_length"},
		"negative length":   {append(append([]byte(nil), good[:8]...), 0xff, 0xff, 0xff, 0xff), "length -1"},
		"too few pieces":    {writeLlama2C(7, pieces[:100], make([]float32, 100)), "fewer than the 259"},
		"no space piece":    {noSpace, "dummy prefix"},
		"wrong byte piece":  {writeLlama2C(7, badByte, make([]float32, len(badByte))), "<0x07>"},
		"piece over maxlen": {writeLlama2C(7, longPiece, make([]float32, len(longPiece))), "outside [0, max_token_length=7]"},
	}
	dir := t.TempDir()
	for name, c := range cases {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".bin")
		if err := os.WriteFile(path, c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadLlama2C(path)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: LoadLlama2C error %v; want one naming %s and saying %q", name, err, path, c.want)
		}
	}
	if _, err := LoadLlama2C(filepath.Join(dir, "absent.bin")); err == nil || !strings.Contains(err.Error(), "absent.bin") {
		t.Errorf("missing file: error %v", err)
	}
}

func TestLlama2CEncodeIsValidUTF8Agnostic(t *testing.T) {
	// Invalid UTF-8 still round-trips byte for byte (every byte is covered by a piece or a byte fallback).
	tok := loadTok512(t)
	in := "\xff\xfe\x80abc\xe2\x82"
	if utf8.ValidString(in) {
		t.Fatal("test input should be invalid UTF-8")
	}
	if got := tok.Decode(tok.Encode(in, false)); got != in {
		t.Errorf("round trip of invalid UTF-8: %q, want %q", got, in)
	}
}
