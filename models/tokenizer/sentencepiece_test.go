package tokenizer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"google.golang.org/protobuf/encoding/protowire"
)

func loadLlamaSP(t *testing.T) *SentencePiece {
	return mustLoad(t, LoadSentencePiece, llamaModelPath(t))
}

type spGolden struct {
	BOS   int `json:"bos_id"`
	EOS   int `json:"eos_id"`
	Cases []struct {
		Text   string   `json:"text"`
		IDs    []int    `json:"ids"`
		Pieces []string `json:"pieces"`
	} `json:"cases"`
	Decoded []string `json:"decoded"`
}

// TestSentencePieceGolden checks ids, pieces and decoding against the reference SentencePiece library's output
// (golden/llama_tokenizer/golden.json: texts encoded without BOS).
func TestSentencePieceGolden(t *testing.T) {
	path := assets.Require(t, assets.Golden("llama_tokenizer", "golden.json"))
	var g spGolden
	assets.ReadJSON(t, path, &g)
	if len(g.Cases) == 0 || len(g.Decoded) != len(g.Cases) {
		t.Fatalf("%s: %d cases, %d decoded", path, len(g.Cases), len(g.Decoded))
	}
	tok := loadLlamaSP(t)
	if tok.VocabSize() != 32000 || tok.BOS() != g.BOS || tok.EOS() != g.EOS {
		t.Fatalf("vocab %d BOS %d EOS %d; want 32000, %d, %d", tok.VocabSize(), tok.BOS(), tok.EOS(), g.BOS, g.EOS)
	}
	for i, c := range g.Cases {
		got := tok.Encode(c.Text, false)
		if !equalInts(got, c.IDs) {
			t.Errorf("case %d: Encode(%q) =\n %v\nwant\n %v", i, c.Text, got, c.IDs)
			continue
		}
		for j, id := range got {
			if tok.Piece(id) != c.Pieces[j] {
				t.Errorf("case %d: piece %d of id %d = %q, want %q", i, j, id, tok.Piece(id), c.Pieces[j])
			}
		}
		if dec := tok.Decode(c.IDs); dec != g.Decoded[i] || dec != c.Text {
			t.Errorf("case %d: Decode = %q, want %q", i, dec, g.Decoded[i])
		}
		withBOS := tok.Encode(c.Text, true)
		if len(withBOS) != len(c.IDs)+1 || withBOS[0] != g.BOS || !equalInts(withBOS[1:], c.IDs) {
			t.Errorf("case %d: Encode with BOS = %v", i, withBOS)
		}
		if dec := tok.Decode(append(withBOS, g.EOS)); dec != c.Text {
			t.Errorf("case %d: Decode with BOS/EOS = %q", i, dec)
		}
		if s := streamDecode(tok, c.IDs); s != c.Text {
			t.Errorf("case %d: streamed DecodePiece = %q, want %q", i, s, c.Text)
		}
	}
}

func TestSentencePieceRoundTripScienceQA(t *testing.T) {
	tok := loadLlamaSP(t)
	for _, text := range append(scienceQATexts(t), "°C ± 5 µm 😀", " a", "\n\nb", "  ") {
		ids := tok.Encode(text, true)
		if got := tok.Decode(ids); got != text {
			t.Fatalf("Decode(Encode(%q)) = %q", text, got)
		}
		if got := streamDecode(tok, ids[1:]); got != text {
			t.Fatalf("streamed DecodePiece of %q = %q", text, got)
		}
	}
}

func TestSentencePieceDecodePiece(t *testing.T) {
	tok := loadLlamaSP(t)
	// 450 = "▁The", 13 = "<0x0A>", 29871 = "▁".
	cases := []struct {
		prev, id int
		want     string
	}{
		{1, 450, "The"}, {450, 450, " The"}, {450, 13, "\n"}, {1, 29871, ""}, {450, 29871, " "},
		{450, 1, ""}, {450, 2, ""}, {450, -1, ""}, {450, 32000, ""},
	}
	for _, c := range cases {
		if got := tok.DecodePiece(c.prev, c.id); got != c.want {
			t.Errorf("DecodePiece(%d, %d) = %q, want %q", c.prev, c.id, got, c.want)
		}
	}
	if got := tok.Decode([]int{1, 450, 32000, -3, 2}); got != "The" {
		t.Errorf("Decode skipping out-of-range ids = %q", got)
	}
}

// rewriteNormalizer returns the model with fn applied to its normalizer_spec payload.
func rewriteNormalizer(t *testing.T, model []byte, fn func([]byte) []byte) []byte {
	var out []byte
	err := walkFields(model, func(num protowire.Number, typ protowire.Type, raw, value []byte) error {
		if num == fModelNormalizer {
			out = protowire.AppendTag(out, num, typ)
			out = protowire.AppendBytes(out, fn(value))
			return nil
		}
		out = append(out, raw...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSentencePieceUnsupported(t *testing.T) {
	model, err := os.ReadFile(llamaModelPath(t))
	if err != nil {
		t.Fatal(err)
	}
	setBool := func(field protowire.Number, v uint64) func([]byte) []byte {
		return func(norm []byte) []byte {
			norm = protowire.AppendTag(append([]byte(nil), norm...), field, protowire.VarintType)
			return protowire.AppendVarint(norm, v) // the last occurrence of a scalar field wins
		}
	}
	charsmap := func(norm []byte) []byte {
		norm = protowire.AppendTag(append([]byte(nil), norm...), fNormCharsmap, protowire.BytesType)
		return protowire.AppendBytes(norm, []byte{1, 2, 3})
	}
	cases := map[string]struct {
		data []byte
		want string
	}{
		"remove_extra": {rewriteNormalizer(t, model, setBool(fNormRemoveExtra, 1)), "remove_extra_whitespaces"},
		"no_escape":    {rewriteNormalizer(t, model, setBool(fNormEscapeSpaces, 0)), "escape_whitespaces"},
		"charsmap":     {rewriteNormalizer(t, model, charsmap), "charsmap"},
		"truncated":    {model[:len(model)/2], "protobuf"},
		"text_file":    {[]byte("plain text, not a tokenizer\n"), "neither"}, // JSON now goes to the tokenizer.json loader
		"empty_file":   {nil, "neither"},
		"pieces_only":  {model[:2+int(model[1])], "normalizer_spec"},
	}
	dir := t.TempDir()
	for name, c := range cases {
		path := filepath.Join(dir, name+".model")
		if err := os.WriteFile(path, c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Load error %v; want one naming %s and saying %q", name, err, path, c.want)
		}
	}
}

func TestLoadPicksFormat(t *testing.T) {
	sp, err := Load(llamaModelPath(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sp.(*SentencePiece); !ok {
		t.Errorf("Load(tokenizer.model) gave %T", sp)
	}
	l2, err := Load(tok512Path(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := l2.(*Llama2C); !ok {
		t.Errorf("Load(tok512.bin) gave %T", l2)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.model")); err == nil || !strings.Contains(err.Error(), "missing.model") {
		t.Errorf("missing file: error %v", err)
	}
}
