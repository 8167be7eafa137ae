package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// LoadHFTokenizerJSON reads a Hugging Face `tokenizer.json` of the byte-level BPE kind (GPT-2, SmolLM, Llama 3):
// model.type "BPE" (no byte fallback, dropout, unk token, subword prefix or suffix), no normalizer, and as
// pre-tokenizer ByteLevel (GPT-2's regex), Sequence[Split(regex), ByteLevel(use_regex=false)] with GPT-2's or
// Llama 3's regex, or Sequence[Digits(individual_digits=true), ByteLevel] (SmolLM). Every added token is matched
// whole in the text, as HF does (special ones as control tokens, the others as user-defined).
//
// BOS, EOS, add_bos_token and chat_template come from a tokenizer_config.json beside the file when there is one;
// otherwise BOS is the special token a TemplateProcessing post-processor puts first (BOS is then added by default)
// and EOS the first of <|endoftext|>, <|end_of_text|>, </s> in the vocabulary; -1 when none is found.
// Other model types (WordPiece, Unigram, WordLevel) give an "unsupported" error naming the file.
func LoadHFTokenizerJSON(path string) (*BPE, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(filepath.Dir(path), "tokenizer_config.json")
	config, err := os.ReadFile(cfgPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("tokenizer: reading %s: %w", cfgPath, err)
	}
	return ParseHFTokenizerJSON(data, config, path)
}

type hfAddedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	Special    bool   `json:"special"`
	Lstrip     bool   `json:"lstrip"`
	Rstrip     bool   `json:"rstrip"`
	SingleWord bool   `json:"single_word"`
}

type hfPreTokenizer struct {
	Type             string                  `json:"type"`
	AddPrefixSpace   bool                    `json:"add_prefix_space"`
	UseRegex         *bool                   `json:"use_regex"`
	IndividualDigits bool                    `json:"individual_digits"`
	Pattern          struct{ Regex *string } `json:"pattern"`
	Behavior         string                  `json:"behavior"`
	Invert           bool                    `json:"invert"`
	Pretokenizers    []hfPreTokenizer        `json:"pretokenizers"`
}

// ParseHFTokenizerJSON parses a tokenizer.json (data) and optionally its tokenizer_config.json (config, nil when
// absent); name identifies the file in errors. See [LoadHFTokenizerJSON].
func ParseHFTokenizerJSON(data, config []byte, name string) (*BPE, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("tokenizer: %s: %s", name, fmt.Sprintf(format, args...))
	}
	var doc struct {
		AddedTokens   []hfAddedToken  `json:"added_tokens"`
		Normalizer    json.RawMessage `json:"normalizer"`
		PreTokenizer  *hfPreTokenizer `json:"pre_tokenizer"`
		PostProcessor json.RawMessage `json:"post_processor"`
		Model         struct {
			Type                    string          `json:"type"`
			Vocab                   json.RawMessage `json:"vocab"`
			Merges                  json.RawMessage `json:"merges"`
			ByteFallback            bool            `json:"byte_fallback"`
			IgnoreMerges            bool            `json:"ignore_merges"`
			Dropout                 *float64        `json:"dropout"`
			UnkToken                *string         `json:"unk_token"`
			ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
			EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
		} `json:"model"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fail("not a tokenizer.json: %v", err)
	}
	m := doc.Model
	if m.Type != "BPE" {
		return nil, fail("unsupported model type %q: only byte-level BPE is supported", m.Type)
	}
	switch {
	case m.ByteFallback:
		return nil, fail("unsupported BPE: byte_fallback (SentencePiece-style BPE; use the .model file)")
	case m.Dropout != nil && *m.Dropout != 0:
		return nil, fail("unsupported BPE: dropout %v", *m.Dropout)
	case m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "",
		m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "":
		return nil, fail("unsupported BPE: continuing_subword_prefix / end_of_word_suffix")
	}
	if n := strings.TrimSpace(string(doc.Normalizer)); n != "" && n != "null" {
		return nil, fail("unsupported normalizer %.60s (only none)", n)
	}
	pre, addPrefix, err := hfPreName(doc.PreTokenizer)
	if err != nil {
		return nil, fail("%v", err)
	}
	cfg := BPEConfig{Name: name, Pre: pre, AddPrefixSpace: addPrefix, IgnoreMerges: m.IgnoreMerges, BOS: -1, EOS: -1}

	var vocab map[string]int
	if err := json.Unmarshal(m.Vocab, &vocab); err != nil {
		return nil, fail("model.vocab is not a map of piece to id: %v", err)
	}
	size := 0
	for _, id := range vocab {
		size = max(size, id+1)
	}
	for _, a := range doc.AddedTokens {
		size = max(size, a.ID+1)
	}
	cfg.Tokens = make([]string, size)
	cfg.Types = make([]int32, size)
	for piece, id := range vocab {
		if id < 0 {
			return nil, fail("model.vocab: %q has negative id %d", piece, id)
		}
		cfg.Tokens[id], cfg.Types[id] = piece, TokenNormal
	}
	for _, a := range doc.AddedTokens {
		if a.ID < 0 || a.Content == "" {
			return nil, fail("added token %d %q: bad id or empty content", a.ID, a.Content)
		}
		if a.Lstrip || a.Rstrip || a.SingleWord {
			return nil, fail("added token %q: lstrip/rstrip/single_word are not supported", a.Content)
		}
		cfg.Tokens[a.ID], cfg.Types[a.ID] = a.Content, TokenUserDefined
		if a.Special {
			cfg.Types[a.ID] = TokenControl
		}
	}
	for id, typ := range cfg.Types {
		if typ == 0 {
			return nil, fail("no token has id %d (ids must be 0..%d without gaps)", id, size-1)
		}
	}
	if cfg.Merges, err = hfMerges(m.Merges); err != nil {
		return nil, fail("model.merges: %v", err)
	}

	ids := make(map[string]int, len(cfg.Tokens))
	for id := len(cfg.Tokens) - 1; id >= 0; id-- {
		ids[cfg.Tokens[id]] = id
	}
	if bos, ok := hfTemplateBOS(doc.PostProcessor); ok {
		if id, found := ids[bos]; found {
			cfg.BOS, cfg.AddBOS = id, true
		}
	}
	for _, eos := range []string{"<|endoftext|>", "<|end_of_text|>", "</s>"} {
		if id, ok := ids[eos]; ok {
			cfg.EOS = id
			break
		}
	}
	if len(config) > 0 {
		if err := applyHFConfig(&cfg, config, ids); err != nil {
			return nil, fail("tokenizer_config.json: %v", err)
		}
	}
	return NewBPE(cfg)
}

// hfPreName maps a pre_tokenizer to one of the scanners, with ByteLevel's add_prefix_space.
func hfPreName(p *hfPreTokenizer) (string, bool, error) {
	useRegex := func(b *hfPreTokenizer) bool { return b.UseRegex == nil || *b.UseRegex }
	if p == nil {
		return "", false, fmt.Errorf("no pre_tokenizer (a ByteLevel one is needed)")
	}
	if p.Type == "ByteLevel" && useRegex(p) {
		return PreGPT2, p.AddPrefixSpace, nil
	}
	if p.Type == "Sequence" && len(p.Pretokenizers) == 2 && p.Pretokenizers[1].Type == "ByteLevel" {
		first, bl := p.Pretokenizers[0], p.Pretokenizers[1]
		switch {
		case first.Type == "Digits" && first.IndividualDigits && useRegex(&bl):
			return PreSmolLM, bl.AddPrefixSpace, nil
		case first.Type == "Split" && !useRegex(&bl) && first.Pattern.Regex != nil && !first.Invert &&
			first.Behavior == "Isolated":
			switch *first.Pattern.Regex {
			case gpt2Regex:
				return PreGPT2, bl.AddPrefixSpace, nil
			case llama3Regex:
				return PreLlama3, bl.AddPrefixSpace, nil
			}
			return "", false, fmt.Errorf("unsupported Split regex %q (only GPT-2's and Llama 3's)", *first.Pattern.Regex)
		}
	}
	desc, _ := json.Marshal(p)
	return "", false, fmt.Errorf("unsupported pre_tokenizer %.200s (supported: ByteLevel; Sequence of Split(GPT-2 or "+
		"Llama 3 regex, Isolated) and ByteLevel(use_regex=false); Sequence of Digits(individual) and ByteLevel)", desc)
}

// hfMerges accepts both spellings of merges: ["a b", ...] and [["a", "b"], ...].
func hfMerges(raw json.RawMessage) ([]string, error) {
	var flat []string
	if err := json.Unmarshal(raw, &flat); err == nil {
		return flat, nil
	}
	var pairs [][]string
	if err := json.Unmarshal(raw, &pairs); err != nil {
		return nil, fmt.Errorf("neither a list of \"a b\" strings nor of [a, b] pairs: %v", err)
	}
	out := make([]string, len(pairs))
	for i, p := range pairs {
		if len(p) != 2 || strings.Contains(p[0], " ") || strings.Contains(p[1], " ") {
			return nil, fmt.Errorf("merge %d %q is not a pair of pieces without spaces", i, p)
		}
		out[i] = p[0] + " " + p[1]
	}
	return out, nil
}

// hfTemplateBOS returns the special token a TemplateProcessing post-processor (possibly inside a Sequence) puts
// before the text ($A) of a single sequence.
func hfTemplateBOS(raw json.RawMessage) (string, bool) {
	var p struct {
		Type   string `json:"type"`
		Single []struct {
			SpecialToken *struct{ ID string } `json:"SpecialToken"`
			Sequence     *struct{}            `json:"Sequence"`
		} `json:"single"`
		Processors []json.RawMessage `json:"processors"`
	}
	if json.Unmarshal(raw, &p) != nil {
		return "", false
	}
	for _, sub := range p.Processors {
		if bos, ok := hfTemplateBOS(sub); ok {
			return bos, true
		}
	}
	if p.Type == "TemplateProcessing" && len(p.Single) > 1 && p.Single[0].SpecialToken != nil {
		return p.Single[0].SpecialToken.ID, true
	}
	return "", false
}

// applyHFConfig reads bos_token / eos_token (a string or {"content": ...}), add_bos_token and chat_template.
func applyHFConfig(cfg *BPEConfig, config []byte, ids map[string]int) error {
	var c struct {
		BOS          json.RawMessage `json:"bos_token"`
		EOS          json.RawMessage `json:"eos_token"`
		AddBOS       *bool           `json:"add_bos_token"`
		ChatTemplate json.RawMessage `json:"chat_template"`
	}
	if err := json.Unmarshal(config, &c); err != nil {
		return err
	}
	for _, f := range []struct {
		raw json.RawMessage
		dst *int
		key string
	}{{c.BOS, &cfg.BOS, "bos_token"}, {c.EOS, &cfg.EOS, "eos_token"}} {
		tok, ok := tokenText(f.raw)
		if !ok {
			continue
		}
		id, found := ids[tok]
		if !found {
			return fmt.Errorf("%s %q is not a token", f.key, tok)
		}
		*f.dst = id
	}
	if c.AddBOS != nil {
		cfg.AddBOS = *c.AddBOS
	}
	// chat_template is a string, or a list of named templates of which "default" is used.
	var tmpl string
	if json.Unmarshal(c.ChatTemplate, &tmpl) != nil {
		var named []struct{ Name, Template string }
		if json.Unmarshal(c.ChatTemplate, &named) == nil {
			for _, n := range named {
				if n.Name == "default" {
					tmpl = n.Template
				}
			}
		}
	}
	cfg.ChatTemplate = tmpl
	return nil
}

func tokenText(raw json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, s != ""
	}
	var obj struct{ Content string }
	if json.Unmarshal(raw, &obj) == nil && obj.Content != "" {
		return obj.Content, true
	}
	return "", false
}
