package results

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"

	"github.com/adapterlab/llama-adapter/models/atomicfile"
)

// WriteFileAtomic writes data to path so that readers see either the old file or the complete new one,
// never a partial write (temporary file in the same directory, fsync, rename, directory fsync: see
// atomicfile.WriteFunc). On any error the temporary file is removed and path is left untouched.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	if err := atomicfile.Write(path, data, perm); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	return nil
}

// WriteJSONAtomic marshals v as indented JSON (two spaces, trailing newline) and writes it to path with
// WriteFileAtomic, mode 0644.
func WriteJSONAtomic(path string, v any) error {
	data, err := marshalIndent(v)
	if err != nil {
		return fmt.Errorf("results: encode %s: %w", path, err)
	}
	return WriteFileAtomic(path, data, 0o644)
}

// ReadJSON decodes the JSON file path into v. A file that cannot be read gives os.ReadFile's error as it is (it
// names the path and matches fs.ErrNotExist when there is no file); one that does not decode, an error naming the
// path.
func ReadJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: malformed JSON: %w", path, err)
	}
	return nil
}

// marshalIndent is json.MarshalIndent without HTML escaping (so "<" in notes stays readable) and with
// a trailing newline.
func marshalIndent(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
