package scienceqa

// Target and Fallback are written by name in configuration files and flags: both implement flag.Value and
// encoding.TextMarshaler/TextUnmarshaler, so a configuration struct holds them directly (no mirror type).

// Set reads a target name (flag.Value; "" is letter).
func (t *Target) Set(s string) error { return setParsed(t, s, ParseTarget) }

// MarshalText writes the target's name.
func (t Target) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText reads a target's name ("" is letter).
func (t *Target) UnmarshalText(b []byte) error { return t.Set(string(b)) }

// Set reads a fallback name (flag.Value).
func (f *Fallback) Set(s string) error { return setParsed(f, s, ParseFallback) }

// MarshalText writes the fallback's name.
func (f Fallback) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText reads a fallback's name.
func (f *Fallback) UnmarshalText(b []byte) error { return f.Set(string(b)) }

// setParsed stores parse(s) in *dst, leaving it as it was when s is not a valid name.
func setParsed[T any](dst *T, s string, parse func(string) (T, error)) error {
	v, err := parse(s)
	if err != nil {
		return err
	}
	*dst = v
	return nil
}
