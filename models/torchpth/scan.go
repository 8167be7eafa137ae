package torchpth

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// maxPickleSize bounds data.pkl, which holds only names, shapes and storage keys (about 30 KB for LLaMA-7B).
const maxPickleSize = 1 << 30

// checkPickle walks the opcodes of a pickle and rejects any whose length-prefixed argument runs past the end of
// the data. gopickle allocates such arguments before reading them, so a corrupt length could otherwise ask for
// gigabytes. Opcodes it does not know are left for the unpickler to reject.
func checkPickle(b []byte) error {
	for pos := 0; pos < len(b); {
		op := b[pos]
		at := pos
		pos++
		need := func(n uint64) error {
			if n > uint64(len(b)-pos) {
				return fmt.Errorf("corrupt pickle: opcode %#x at byte %d needs %d bytes, only %d remain", op, at, n, len(b)-pos)
			}
			pos += int(n)
			return nil
		}
		// prefixed reads an n-byte little-endian length, then skips that many bytes.
		prefixed := func(n int) error {
			if err := need(uint64(n)); err != nil {
				return err
			}
			var l uint64
			switch n {
			case 1:
				l = uint64(b[pos-1])
			case 4:
				l = uint64(binary.LittleEndian.Uint32(b[pos-4:]))
			case 8:
				l = binary.LittleEndian.Uint64(b[pos-8:])
			}
			return need(l)
		}
		lines := func(n int) error {
			for range n {
				i := bytes.IndexByte(b[pos:], '\n')
				if i < 0 {
					return fmt.Errorf("corrupt pickle: opcode %#x at byte %d has no line end", op, at)
				}
				pos += i + 1
			}
			return nil
		}
		var err error
		switch op {
		case '.':
			return nil // STOP
		case '(', '0', '1', '2', 'N', ')', ']', '}', 'a', 'e', 'l', 't', 'd', 's', 'u', 'R', 'b', 'o', 'Q',
			0x81, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x94, 0x97, 0x98:
		case 'K', 'h', 'q', 0x80, 0x82:
			err = need(1)
		case 'M', 0x83:
			err = need(2)
		case 'J', 'j', 'r', 0x84:
			err = need(4)
		case 'G':
			err = need(8)
		case 0x95: // FRAME: an 8-byte length; the framed opcodes follow and are walked as usual
			if err = need(8); err == nil && binary.LittleEndian.Uint64(b[pos-8:]) > uint64(len(b)-pos) {
				err = fmt.Errorf("corrupt pickle: frame at byte %d runs past the end", at)
			}
		case 'I', 'L', 'F', 'S', 'V', 'P', 'g', 'p':
			err = lines(1)
		case 'c', 'i':
			err = lines(2)
		case 'U', 0x8c, 'C', 0x8a:
			err = prefixed(1)
		case 'T', 'X', 'B', 0x8b:
			err = prefixed(4)
		case 0x8d, 0x8e, 0x96:
			err = prefixed(8)
		default:
			return nil
		}
		if err != nil {
			return err
		}
	}
	return fmt.Errorf("corrupt pickle: no STOP opcode (truncated?)")
}
