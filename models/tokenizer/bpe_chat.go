package tokenizer

import (
	"errors"
	"fmt"
	"strings"
)

// Message is one turn of a chat.
type Message struct {
	Role    string // "system", "user", "assistant"
	Content string
}

// ChatTemplate is a chat format recognised from a model's Jinja template text. No Jinja is interpreted: the text
// is matched to a known format, and that format is written by hand. Supported: ChatML ("chatml", SmolLM2, Qwen
// without tools): `<|im_start|>role\ncontent<|im_end|>\n` per message, `<|im_start|>assistant\n` as the generation
// prompt, and the template's default system message when it has one (SmolLM2's "You are a helpful AI assistant
// named SmolLM, trained by Hugging Face") inserted when the first message is not a system message
// (an empty chat gives no turns, as in SmolLM2's template).
type ChatTemplate struct {
	// Name is the recognised format ("chatml").
	Name string
	// DefaultSystem is the system message used when the chat starts without one ("" for none).
	DefaultSystem string
}

// ErrNoChatTemplate is returned (wrapped) when a tokenizer has no chat template.
var ErrNoChatTemplate = errors.New("tokenizer: no chat template")

const (
	imStart = "<|im_start|>"
	imEnd   = "<|im_end|>"
)

// ParseChatTemplate recognises a chat template's Jinja text; unknown templates give an error naming what is
// supported.
func ParseChatTemplate(text string) (*ChatTemplate, error) {
	if strings.TrimSpace(text) == "" {
		return nil, ErrNoChatTemplate
	}
	if !strings.Contains(text, imStart) || !strings.Contains(text, imEnd) {
		return nil, fmt.Errorf("tokenizer: unsupported chat template (only ChatML, with %s and %s, is recognised): %.80q",
			imStart, imEnd, text)
	}
	ct := &ChatTemplate{Name: "chatml"}
	// A literal default system turn, as in SmolLM2's template; its newline may be written raw or as a Jinja "\n".
	for _, open := range []string{imStart + "system\n", imStart + `system\n`} {
		if i := strings.Index(text, open); i >= 0 {
			rest := text[i+len(open):]
			if j := strings.Index(rest, imEnd); j > 0 {
				ct.DefaultSystem = strings.ReplaceAll(rest[:j], `\n`, "\n")
			}
			break
		}
	}
	return ct, nil
}

// Apply writes the chat as the model expects it; addGenerationPrompt appends the assistant's opening
// (`<|im_start|>assistant\n`). Encode the result with [BPE.Encode] (which maps the ChatML markers to their ids);
// it starts with <|im_start|>, so do not add a BOS when BOS is that token.
func (c *ChatTemplate) Apply(messages []Message, addGenerationPrompt bool) string {
	var sb strings.Builder
	turn := func(role, content string) {
		sb.WriteString(imStart + role + "\n" + content + imEnd + "\n")
	}
	if c.DefaultSystem != "" && len(messages) > 0 && messages[0].Role != "system" {
		turn("system", c.DefaultSystem)
	}
	for _, m := range messages {
		turn(m.Role, m.Content)
	}
	if addGenerationPrompt {
		sb.WriteString(imStart + "assistant\n")
	}
	return sb.String()
}

// ChatTemplate returns the model's chat template (GGUF's tokenizer.chat_template, tokenizer_config.json's
// chat_template), recognised by [ParseChatTemplate]; errors wrap ErrNoChatTemplate when there is none.
func (t *BPE) ChatTemplate() (*ChatTemplate, error) {
	ct, err := ParseChatTemplate(t.chatTemplate)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.name, err)
	}
	return ct, nil
}
