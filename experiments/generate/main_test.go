package main

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
)

// TestGreedyReference reproduces llama2.c's run.c output for stories260K (-t 0, empty prompt, 256 steps) byte for
// byte, with the KV cache and without it.
func TestGreedyReference(t *testing.T) {
	want, err := os.ReadFile(assets.Require(t, assets.Path("models", "stories260K", "greedy_reference.txt")))
	if err != nil {
		t.Fatal(err)
	}
	modes := [][]string{{}, {"-no-cache"}}
	if testing.Short() {
		modes = modes[:1] // the no-cache run recomputes 256 full sequences
	}
	for _, extra := range modes {
		var out, errOut bytes.Buffer
		args := append([]string{"-steps", "256", "-temperature", "0", "-stop-eos=false"}, extra...)
		if err := run(args, &out, &errOut); err != nil {
			t.Fatalf("%v: %v\n%s", extra, err, errOut.String())
		}
		if !bytes.Equal(out.Bytes(), want) {
			t.Errorf("%v: output differs from greedy_reference.txt\ngot:  %q\nwant: %q", extra, out.String(), string(want))
		}
		t.Logf("%v: %s", extra, bytes.TrimSpace(errOut.Bytes()))
	}
}

// TestTokenizeSmolLM2 checks -tokenize against the golden ids of every non-special case (llama.cpp's smollm
// pre-tokenizer, no BOS), printed as one JSON array.
func TestTokenizeSmolLM2(t *testing.T) {
	assets.RequireModel(t, assets.SmolLM2)
	var cases []struct {
		Name    string `json:"name"`
		Text    string `json:"text"`
		Special bool   `json:"parse_special_tokens"`
		IDs     []int  `json:"ids"`
	}
	readGoldenCases(t, "tokenizer.json", &cases)
	for _, c := range cases {
		var out, errOut bytes.Buffer
		if err := run([]string{"-model", assets.SmolLM2, "-install=false", "-tokenize", c.Text}, &out, &errOut); err != nil {
			t.Fatalf("%s: %v\n%s", c.Name, err, errOut.String())
		}
		want, _ := json.Marshal(c.IDs)
		if c.IDs == nil {
			want = []byte("[]")
		}
		if got := strings.TrimSpace(out.String()); got != string(want) {
			t.Errorf("%s: -tokenize printed %s, want %s", c.Name, got, want)
		}
	}
}

// TestGreedySmolLM2 runs the command on greedy.json's plain prompts with -bos as each case says, and on the chat
// case with -chat; the continuation must be the golden greedy text.
func TestGreedySmolLM2(t *testing.T) {
	assets.RequireModel(t, assets.SmolLM2)
	if testing.Short() {
		t.Skip("short: SmolLM2 greedy decoding compiles a 135M-parameter model")
	}
	var cases []struct {
		Name       string `json:"name"`
		PromptText string `json:"prompt_text"`
		BOS        bool   `json:"bos_prepended"`
		PromptIDs  []int  `json:"prompt_ids"`
		NewIDs     []int  `json:"new_ids"`
		NewText    string `json:"new_text"`
		FirstEOS   *int   `json:"first_eos_step"`
	}
	readGoldenCases(t, "greedy.json", &cases)
	ran := 0
	for _, c := range cases {
		if c.FirstEOS != nil || strings.Contains(c.PromptText, "<|im_start|>") {
			continue // the command stops at EOS and strips control tokens: checked by models/llama's greedy test
		}
		var out, errOut bytes.Buffer
		args := []string{"-model", assets.SmolLM2, "-install=false", "-prompt", c.PromptText,
			"-bos=" + strconv.FormatBool(c.BOS), "-steps", strconv.Itoa(len(c.PromptIDs) + len(c.NewIDs) - 1)}
		if err := run(args, &out, &errOut); err != nil {
			t.Fatalf("%s: %v\n%s", c.Name, err, errOut.String())
		}
		if want := c.PromptText + c.NewText + "\n"; out.String() != want {
			t.Errorf("%s:\ngot  %q\nwant %q", c.Name, out.String(), want)
		}
		ran++
	}
	if ran == 0 {
		t.Fatal("no greedy.json case without EOS and chat tokens")
	}
}

// readGoldenCases decodes the "cases" list of SmolLM2's golden file name (in the goldens' smollm2 folder) into
// cases, a pointer to a slice of the file's case type, and fails the test when the list is empty; the test is
// skipped when the goldens are not installed.
func readGoldenCases(t *testing.T, name string, cases any) {
	t.Helper()
	raw, err := os.ReadFile(assets.Require(t, assets.Golden("smollm2", name)))
	if err != nil {
		t.Fatal(err)
	}
	var golden struct {
		Cases json.RawMessage `json:"cases"`
	}
	if err := json.Unmarshal(raw, &golden); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := json.Unmarshal(golden.Cases, cases); err != nil {
		t.Fatalf("%s: cases: %v", name, err)
	}
	if reflect.ValueOf(cases).Elem().Len() == 0 {
		t.Fatalf("%s: no cases", name) // a test over no cases would pass without checking anything
	}
}

func TestResolveBOS(t *testing.T) {
	for _, c := range []struct {
		flag string
		want bool
		err  bool
	}{{"true", true, false}, {"false", false, false}, {"", true, false}, {"yes", false, true}} {
		got, err := resolveBOS(c.flag, nil)
		if (err != nil) != c.err || (!c.err && got != c.want) {
			t.Errorf("resolveBOS(%q) = %v, %v", c.flag, got, err)
		}
	}
}
