package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTinyHF writes a byte-level tokenizer.json (256 byte tokens, "Ġa", "ab", two special added tokens) into a
// fresh folder, with pre as its pre_tokenizer and merges in the given spelling; config, when non-empty, is written
// beside it as tokenizer_config.json.
func writeTinyHF(t *testing.T, pre, config string, pairMerges bool) string {
	t.Helper()
	vocab := map[string]int{}
	for b := range 256 {
		vocab[string(byteToRune[b])] = b
	}
	vocab["Ġa"], vocab["ab"] = 256, 257
	var merges any = []string{"Ġ a", "a b"}
	if pairMerges {
		merges = [][]string{{"Ġ", "a"}, {"a", "b"}}
	}
	doc := map[string]any{
		"version": "1.0",
		"added_tokens": []map[string]any{
			{"id": 258, "content": "<|begin|>", "special": true},
			{"id": 259, "content": "<|end|>", "special": true},
			{"id": 260, "content": "<tool>", "special": false},
		},
		"normalizer":    nil,
		"pre_tokenizer": json.RawMessage(pre),
		"post_processor": map[string]any{"type": "TemplateProcessing",
			"single": []any{map[string]any{"SpecialToken": map[string]any{"id": "<|begin|>", "type_id": 0}},
				map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}}},
		"decoder": map[string]any{"type": "ByteLevel"},
		"model":   map[string]any{"type": "BPE", "vocab": vocab, "merges": merges, "ignore_merges": false},
	}
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "tokenizer.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if config != "" {
		if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

const (
	hfByteLevel = `{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}`
	hfLlama3    = `{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":` +
		`"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},` +
		`"behavior":"Isolated","invert":false},{"type":"ByteLevel","add_prefix_space":false,"use_regex":false}]}`
	hfSmolLM = `{"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},` +
		`{"type":"ByteLevel","add_prefix_space":false,"use_regex":true}]}`
)

func TestHFTokenizerJSON(t *testing.T) {
	for _, c := range []struct {
		name, pre, wantPre string
		pairs              bool
	}{
		{"bytelevel", hfByteLevel, PreGPT2, false},
		{"llama3", hfLlama3, PreLlama3, true},
		{"smollm", hfSmolLM, PreSmolLM, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := writeTinyHF(t, c.pre, "", c.pairs)
			tok, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			b := tok.(*BPE)
			if b.PreTokenizer() != c.wantPre || b.VocabSize() != 261 || b.BOS() != 258 || !b.AddsBOS() || b.EOS() != -1 {
				t.Fatalf("pre %q, vocab %d, BOS %d (add %v), EOS %d", b.PreTokenizer(), b.VocabSize(), b.BOS(), b.AddsBOS(), b.EOS())
			}
			text := "ab a<|end|><tool>x"
			want := []int{258, 257, 256, 259, 260, 'x'}
			got := b.Encode(text, true)
			if !equalInts(got, want) {
				t.Fatalf("Encode(%q) = %v, want %v", text, got, want)
			}
			if s := b.Decode(got); s != "ab a<tool>x" {
				t.Errorf("Decode = %q", s)
			}
			if s := b.DecodeSpecial(got); s != "<|begin|>"+text {
				t.Errorf("DecodeSpecial = %q", s)
			}
		})
	}
}

func TestHFTokenizerJSONConfig(t *testing.T) {
	config := `{"bos_token": {"content": "<|end|>"}, "eos_token": "<|end|>", "add_bos_token": false,
		"chat_template": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"}`
	tok, err := LoadHFTokenizerJSON(writeTinyHF(t, hfByteLevel, config, false))
	if err != nil {
		t.Fatal(err)
	}
	if tok.BOS() != 259 || tok.EOS() != 259 || tok.AddsBOS() {
		t.Errorf("BOS %d, EOS %d, add BOS %v; want 259, 259, false", tok.BOS(), tok.EOS(), tok.AddsBOS())
	}
	if ct, err := tok.ChatTemplate(); err != nil || ct.Name != "chatml" {
		t.Errorf("chat template %+v, %v", ct, err)
	}
}

func TestHFTokenizerJSONUnsupported(t *testing.T) {
	dir := t.TempDir()
	for name, c := range map[string]struct{ doc, want string }{
		"wordpiece": {`{"model":{"type":"WordPiece","vocab":{"a":0}}}`, `unsupported model type "WordPiece"`},
		"unigram":   {`{"model":{"type":"Unigram","vocab":[["a",0.0]]}}`, `unsupported model type "Unigram"`},
		"fallback":  {`{"model":{"type":"BPE","byte_fallback":true,"vocab":{},"merges":[]}}`, "byte_fallback"},
		"normalize": {`{"normalizer":{"type":"NFC"},"pre_tokenizer":` + hfByteLevel + `,"model":{"type":"BPE","vocab":{},"merges":[]}}`, "unsupported normalizer"},
		"metaspace": {`{"pre_tokenizer":{"type":"Metaspace"},"model":{"type":"BPE","vocab":{},"merges":[]}}`, "unsupported pre_tokenizer"},
		"regex": {`{"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"\\d+"},"behavior":"Isolated"},` +
			`{"type":"ByteLevel","use_regex":false}]},"model":{"type":"BPE","vocab":{},"merges":[]}}`, "unsupported Split regex"},
	} {
		path := filepath.Join(dir, name+".json")
		if err := os.WriteFile(path, []byte(c.doc), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: err = %v, want it to name %s and say %q", name, err, path, c.want)
		}
	}
}
