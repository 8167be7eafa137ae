// Package tokenizer turns text into LLaMA token ids and back.
//
// Four on-disk formats are supported behind one [Tokenizer] interface:
//
//   - SentencePiece `.model` files (protobuf), as shipped with Meta's LLaMA checkpoints. Encoding is BPE with byte
//     fallback, a dummy-prefix space and whitespace written as U+2581, done by github.com/eliben/go-sentencepiece;
//     this package adds the dummy prefix and its removal on decode (see [SentencePiece]).
//   - llama2.c `tokenizer.bin` files, encoded exactly as llama2.c's run.c does (see [Llama2C]).
//   - byte-level BPE (GPT-2, SmolLM, Llama 3) from a GGUF model's metadata or a Hugging Face tokenizer.json
//     (see [BPE], [LoadGGUF], [LoadHFTokenizerJSON]), with ChatML chat templates (see [ChatTemplate]).
//
// [Load] picks the implementation from the file's contents. All implementations are read-only after loading and
// safe for concurrent use.
package tokenizer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// Tokenizer converts between text and token ids.
type Tokenizer interface {
	// Encode returns the ids of text; addBOS prepends the BOS id. No EOS is appended.
	Encode(text string, addBOS bool) []int
	// Decode returns the text of ids: BOS and EOS are dropped, the leading space of the dummy prefix is removed,
	// byte pieces (<0xXX>) become raw bytes. Ids out of range are skipped.
	Decode(ids []int) string
	// DecodePiece returns the text of one token given the token before it, for streaming generation: as llama2.c's
	// decode(), a leading space is dropped right after BOS and <0xXX> pieces become one raw byte (so a multi-byte
	// character arrives over several calls). BOS, EOS and out-of-range ids give "".
	DecodePiece(prev, id int) string
	// BOS is the beginning-of-sequence id.
	BOS() int
	// EOS is the end-of-sequence id.
	EOS() int
	// VocabSize is the number of pieces.
	VocabSize() int
}

// Load reads a tokenizer file, telling the formats apart by their first bytes: a GGUF model starts with "GGUF"
// (its byte-level BPE tokenizer is read from the metadata, see [LoadGGUF]); a Hugging Face tokenizer.json starts with
// '{' (see [LoadHFTokenizerJSON]); a SentencePiece model is a protobuf whose first field is a length-delimited
// piece (byte 0x0A followed by a non-zero length), while a llama2.c tokenizer.bin starts with a small little-endian
// int32 (max_token_length, whose high bytes are zero).
func Load(path string) (Tokenizer, error) {
	head, err := readHead(path, 8)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: reading %s: %w", path, err)
	}
	switch {
	case bytes.HasPrefix(head, []byte("GGUF")):
		return LoadGGUF(path) // not read whole: the tensors follow the metadata
	case len(head) > 0 && head[0] == '{': // tokenizer.json files start with the brace; 0x0A could be SentencePiece
		return LoadHFTokenizerJSON(path)
	}
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	switch {
	case looksLikeSentencePiece(data):
		return ParseSentencePiece(data, path)
	case looksLikeLlama2C(data):
		return ParseLlama2C(data, path)
	default:
		return nil, fmt.Errorf("tokenizer: %s is neither a GGUF model, a tokenizer.json, a SentencePiece .model "+
			"(protobuf) nor a llama2.c tokenizer.bin (first bytes % x)", path, data[:min(len(data), 8)])
	}
}

// readFile reads a tokenizer file whole; its error names the file.
func readFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: reading %s: %w", path, err)
	}
	return data, nil
}

// loadFile reads a tokenizer file and parses it with parse (which names path in its errors).
func loadFile[T any](path string, parse func(data []byte, name string) (T, error)) (T, error) {
	data, err := readFile(path)
	if err != nil {
		var zero T
		return zero, err
	}
	return parse(data, path)
}

// at returns s[id], or the zero value when id is out of range (the accessors' contract for unknown ids).
func at[E any](s []E, id int) E {
	if id < 0 || id >= len(s) {
		var zero E
		return zero
	}
	return s[id]
}

// readHead returns the first n bytes of a file (fewer when it is shorter).
func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, n)
	k, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:k], nil
}

func looksLikeSentencePiece(data []byte) bool {
	return len(data) >= 2 && data[0] == 0x0A && data[1] != 0
}

func looksLikeLlama2C(data []byte) bool {
	// max_token_length is a positive int32 far below 2^24 in every real file.
	return len(data) >= 4 && data[3] == 0 && !bytes.Equal(data[:4], []byte{0, 0, 0, 0})
}

// parseByteToken parses a byte piece the way llama2.c's decode() does with sscanf("<0x%02hhX>"): the prefix "<0x"
// followed by one or two hex digits. It returns the byte and true when the piece is one.
func parseByteToken(piece string) (byte, bool) {
	if len(piece) < 4 || piece[:3] != "<0x" {
		return 0, false
	}
	v, n := 0, 0
	for i := 3; i < len(piece) && n < 2; i++ {
		d := hexDigit(piece[i])
		if d < 0 {
			break
		}
		v = v*16 + d
		n++
	}
	if n == 0 {
		return 0, false
	}
	return byte(v), true
}

func hexDigit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// SafePiece filters a decoded piece as llama2.c's safe_printf() does before printing: empty pieces and single-byte
// pieces that are neither printable ASCII nor whitespace (control bytes, and every byte >= 0x80, as in the C locale)
// give "". Use it to reproduce run.c's printed output byte for byte; it is lossy for non-ASCII byte-fallback text,
// which [Tokenizer.Decode] keeps.
func SafePiece(piece string) string {
	if len(piece) == 1 {
		c := piece[0]
		printable := c >= 0x20 && c < 0x7F
		space := c == ' ' || (c >= '\t' && c <= '\r')
		if !printable && !space {
			return ""
		}
	}
	return piece
}
