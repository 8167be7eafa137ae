package tokenizer

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
)

type bpeGoldenCase struct {
	Name            string `json:"name"`
	Text            string `json:"text"`
	ParseSpecial    bool   `json:"parse_special_tokens"`
	IDs             []int  `json:"ids"`
	IDsTransformers []int  `json:"ids_transformers"`
	Decoded         string `json:"decoded"`
}

func readSmolLM2Golden(t testing.TB) []bpeGoldenCase {
	t.Helper()
	path := assets.Require(t, assets.Golden("smollm2", "tokenizer.json"))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Cases []bpeGoldenCase `json:"cases"`
	}
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	if len(g.Cases) != 16 {
		t.Fatalf("%s: %d cases, want 16", path, len(g.Cases))
	}
	return g.Cases
}

func TestBPESmolLM2Golden(t *testing.T) {
	tok := smolLM2Tokenizer(t)
	for _, c := range readSmolLM2Golden(t) {
		t.Run(c.Name, func(t *testing.T) {
			got := tok.Encode(c.Text, false)
			if !equalInts(got, c.IDs) {
				t.Fatalf("Encode(%q)\n got %v\nwant %v", c.Text, got, c.IDs)
			}
			if s := tok.DecodeSpecial(got); s != c.Text || s != c.Decoded {
				t.Errorf("DecodeSpecial = %q, want %q", s, c.Text)
			}
			if !c.ParseSpecial {
				if s := tok.Decode(got); s != c.Text {
					t.Errorf("Decode = %q, want %q", s, c.Text)
				}
				if s := streamDecode(tok, got); s != c.Text {
					t.Errorf("streamed DecodePiece = %q, want %q", s, c.Text)
				}
			}
		})
	}
}

func smolLM2Tokenizer(t testing.TB) *BPE {
	t.Helper()
	path := assets.RequireModel(t, assets.SmolLM2)
	tok, err := LoadGGUF(path)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestBPESmolLM2Metadata(t *testing.T) {
	tok := smolLM2Tokenizer(t)
	if tok.VocabSize() != 49152 || tok.BOS() != 1 || tok.EOS() != 2 || tok.AddsBOS() || tok.PreTokenizer() != PreSmolLM {
		t.Fatalf("vocab %d, BOS %d, EOS %d, add BOS %v, pre %q; want 49152, 1, 2, false, smollm",
			tok.VocabSize(), tok.BOS(), tok.EOS(), tok.AddsBOS(), tok.PreTokenizer())
	}
	if tok.Piece(1) != "<|im_start|>" || tok.TokenType(1) != TokenControl || tok.Piece(216) != "Ġ" {
		t.Errorf("pieces 1, 216 = %q (type %d), %q", tok.Piece(1), tok.TokenType(1), tok.Piece(216))
	}
	if got := len(tok.MissingBytes()); got != 21 {
		t.Errorf("%d bytes without a token, want 21", got)
	}
}
