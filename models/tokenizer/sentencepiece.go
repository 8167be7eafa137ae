package tokenizer

import (
	"bytes"
	"fmt"
	"strings"

	sentencepiece "github.com/eliben/go-sentencepiece"
	"google.golang.org/protobuf/encoding/protowire"
)

// SentencePiece is a tokenizer read from a SentencePiece `.model` protobuf (LLaMA's tokenizer.model: BPE, byte
// fallback, identity normalization, dummy prefix, whitespace escaped as U+2581).
//
// BPE encoding and byte-piece decoding are done by github.com/eliben/go-sentencepiece, which rejects models with a
// dummy prefix; this type hands it a copy of the model with add_dummy_prefix switched off and does that step itself
// (prepend a space to non-empty text, drop the first piece's leading space on decode), as SentencePiece does.
type SentencePiece struct {
	path      string
	proc      *sentencepiece.Processor
	pieces    []string
	types     []int32
	bos, eos  int
	addPrefix bool
}

// Piece types of sentencepiece_model.proto.
const (
	spNormal  = 1
	spUnknown = 2
	spControl = 3
	spByte    = 6
)

// Field numbers of sentencepiece_model.proto used here.
const (
	fModelPieces      = 1
	fModelTrainer     = 2
	fModelNormalizer  = 3
	fPiecePiece       = 1
	fPieceType        = 3
	fTrainerModelType = 3
	fTrainerBOS       = 41
	fTrainerEOS       = 42
	fNormName         = 1
	fNormCharsmap     = 2
	fNormDummyPrefix  = 3
	fNormRemoveExtra  = 4
	fNormEscapeSpaces = 5
)

// LoadSentencePiece reads a SentencePiece `.model` file.
func LoadSentencePiece(path string) (*SentencePiece, error) {
	return loadFile(path, ParseSentencePiece)
}

// ParseSentencePiece parses the contents of a SentencePiece `.model`; name identifies the source in errors.
// Models whose normalizer would change the text (a precompiled normalization map, removal of extra whitespace,
// no whitespace escaping) are rejected, since neither this package nor go-sentencepiece implements them.
func ParseSentencePiece(data []byte, name string) (*SentencePiece, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("tokenizer: %s is not a usable SentencePiece model: %s", name, fmt.Sprintf(format, args...))
	}
	t := &SentencePiece{path: name, bos: 1, eos: 2}
	var patched []byte
	normSeen := false
	err := walkFields(data, func(num protowire.Number, typ protowire.Type, raw, value []byte) error {
		switch {
		case num == fModelPieces && typ == protowire.BytesType:
			piece, ptype, err := parsePiece(value)
			if err != nil {
				return fmt.Errorf("piece %d: %w", len(t.pieces), err)
			}
			t.pieces = append(t.pieces, piece)
			t.types = append(t.types, ptype)
		case num == fModelTrainer && typ == protowire.BytesType:
			if err := t.parseTrainer(value); err != nil {
				return fmt.Errorf("trainer_spec: %w", err)
			}
		case num == fModelNormalizer && typ == protowire.BytesType:
			normSeen = true
			norm, addPrefix, err := patchNormalizer(value)
			if err != nil {
				return fmt.Errorf("normalizer_spec: %w", err)
			}
			t.addPrefix = addPrefix
			patched = protowire.AppendTag(patched, num, protowire.BytesType)
			patched = protowire.AppendBytes(patched, norm)
			return nil
		}
		patched = append(patched, raw...)
		return nil
	})
	if err != nil {
		return nil, fail("%v", err)
	}
	if !normSeen {
		return nil, fail("no normalizer_spec (its defaults remove extra whitespace, which is not supported)")
	}
	if len(t.pieces) == 0 {
		return nil, fail("no pieces")
	}
	for _, id := range []int{t.bos, t.eos} {
		if id < 0 || id >= len(t.pieces) || t.types[id] != spControl {
			return nil, fail("BOS/EOS id %d is not a control piece", id)
		}
	}
	proc, err := sentencepiece.NewProcessor(bytes.NewReader(patched))
	if err != nil {
		return nil, fail("%v", err)
	}
	t.proc = proc
	return t, nil
}

// walkFields calls fn for every top-level field of a protobuf message with its raw bytes (tag included) and, for
// length-delimited fields, its payload.
func walkFields(msg []byte, fn func(num protowire.Number, typ protowire.Type, raw, value []byte) error) error {
	for off := 0; off < len(msg); {
		num, typ, n := protowire.ConsumeTag(msg[off:])
		if n < 0 {
			return fmt.Errorf("bad protobuf tag at byte %d: %w", off, protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, msg[off+n:])
		if m < 0 {
			return fmt.Errorf("bad protobuf field %d at byte %d: %w", num, off, protowire.ParseError(m))
		}
		raw := msg[off : off+n+m]
		var value []byte
		if typ == protowire.BytesType {
			value, _ = protowire.ConsumeBytes(msg[off+n:])
		} else if typ == protowire.VarintType {
			v, _ := protowire.ConsumeVarint(msg[off+n:])
			value = protowire.AppendVarint(nil, v)
		}
		if err := fn(num, typ, raw, value); err != nil {
			return err
		}
		off += n + m
	}
	return nil
}

func varintValue(value []byte) uint64 {
	v, _ := protowire.ConsumeVarint(value)
	return v
}

func parsePiece(msg []byte) (string, int32, error) {
	piece, ptype := "", int32(spNormal)
	err := walkFields(msg, func(num protowire.Number, typ protowire.Type, _, value []byte) error {
		switch {
		case num == fPiecePiece && typ == protowire.BytesType:
			piece = string(value)
		case num == fPieceType && typ == protowire.VarintType:
			ptype = int32(varintValue(value))
		}
		return nil
	})
	return piece, ptype, err
}

func (t *SentencePiece) parseTrainer(msg []byte) error {
	return walkFields(msg, func(num protowire.Number, typ protowire.Type, _, value []byte) error {
		if typ != protowire.VarintType {
			return nil
		}
		switch num {
		case fTrainerModelType:
			if mt := varintValue(value); mt != 2 {
				return fmt.Errorf("model_type %d is not BPE (2)", mt)
			}
		case fTrainerBOS:
			t.bos = int(int32(varintValue(value)))
		case fTrainerEOS:
			t.eos = int(int32(varintValue(value)))
		}
		return nil
	})
}

// patchNormalizer checks that the normalizer leaves text unchanged apart from whitespace escaping and the dummy
// prefix, and returns a copy with add_dummy_prefix=false (its default is true) plus whether it was on.
func patchNormalizer(msg []byte) ([]byte, bool, error) {
	addPrefix, removeExtra, escape := true, true, true // proto defaults
	name := ""
	var out []byte
	err := walkFields(msg, func(num protowire.Number, typ protowire.Type, raw, value []byte) error {
		switch num {
		case fNormName:
			name = string(value)
		case fNormCharsmap:
			if len(value) > 0 {
				return fmt.Errorf("normalization %q uses a precompiled charsmap, which is not supported", name)
			}
		case fNormDummyPrefix:
			addPrefix = varintValue(value) != 0
			return nil // dropped: re-added as false below
		case fNormRemoveExtra:
			removeExtra = varintValue(value) != 0
		case fNormEscapeSpaces:
			escape = varintValue(value) != 0
		}
		out = append(out, raw...)
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	if removeExtra {
		return nil, false, fmt.Errorf("remove_extra_whitespaces is on, which is not supported")
	}
	if !escape {
		return nil, false, fmt.Errorf("escape_whitespaces is off, which is not supported")
	}
	out = protowire.AppendTag(out, fNormDummyPrefix, protowire.VarintType)
	out = protowire.AppendVarint(out, 0)
	return out, addPrefix, nil
}

// BOS returns the model's beginning-of-sequence id (1 for LLaMA).
func (t *SentencePiece) BOS() int { return t.bos }

// EOS returns the model's end-of-sequence id (2 for LLaMA).
func (t *SentencePiece) EOS() int { return t.eos }

// VocabSize returns the number of pieces (32000 for LLaMA).
func (t *SentencePiece) VocabSize() int { return len(t.pieces) }

// Piece returns the piece of id as stored (spaces as U+2581; "" when out of range).
func (t *SentencePiece) Piece(id int) string { return at(t.pieces, id) }

// Encode tokenizes text as SentencePiece does: the dummy prefix space is added to non-empty text, spaces become
// U+2581, then BPE with byte fallback.
func (t *SentencePiece) Encode(text string, addBOS bool) []int {
	var ids []int
	if addBOS {
		ids = append(ids, t.bos)
	}
	if text == "" {
		return ids
	}
	if t.addPrefix {
		text = " " + text
	}
	for _, tok := range t.proc.Encode(text) {
		ids = append(ids, tok.ID)
	}
	return ids
}

const spaceSymbol = "\u2581"

// Decode returns the text of ids as SentencePiece decodes it: control pieces (BOS, EOS) are dropped, runs of byte
// pieces are decoded as UTF-8 (invalid sequences become U+FFFD), and the first piece loses its dummy-prefix space.
func (t *SentencePiece) Decode(ids []int) string {
	kept := make([]int, 0, len(ids))
	for _, id := range ids {
		if id >= 0 && id < len(t.pieces) && t.types[id] != spControl {
			kept = append(kept, id)
		}
	}
	text := t.proc.Decode(kept)
	if t.addPrefix && len(kept) > 0 && t.types[kept[0]] != spByte && strings.HasPrefix(t.pieces[kept[0]], spaceSymbol) {
		text = strings.TrimPrefix(text, " ")
	}
	return text
}

// DecodePiece returns one token's text for streaming, as llama2.c's decode(): U+2581 becomes a space, which is
// dropped at the start of the piece right after BOS; a byte piece gives its raw byte; control pieces give "".
func (t *SentencePiece) DecodePiece(prev, id int) string {
	if id < 0 || id >= len(t.pieces) {
		return ""
	}
	switch t.types[id] {
	case spControl:
		return ""
	case spByte:
		if b, ok := parseByteToken(t.pieces[id]); ok {
			return string([]byte{b})
		}
		return ""
	case spUnknown:
		return t.proc.Decode([]int{id})
	}
	piece := strings.ReplaceAll(t.pieces[id], spaceSymbol, " ")
	if prev == t.bos && strings.HasPrefix(piece, " ") {
		piece = piece[1:]
	}
	return piece
}

// Compile-time checks that both implementations satisfy Tokenizer.
var (
	_ Tokenizer = (*SentencePiece)(nil)
	_ Tokenizer = (*Llama2C)(nil)
)
