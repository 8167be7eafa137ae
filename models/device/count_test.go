package device

import "testing"

func TestParseDeviceCount(t *testing.T) {
	for s, want := range map[string]int{"": 1, "1": 1, " 3 ": 3, "all": 0} {
		if n, err := ParseDeviceCount(s); err != nil || n != want {
			t.Errorf("ParseDeviceCount(%q) = %d, %v; want %d", s, n, err, want)
		}
	}
	for _, s := range []string{"0", "-2", "two", "all,1"} {
		if _, err := ParseDeviceCount(s); err == nil {
			t.Errorf("ParseDeviceCount(%q) accepted", s)
		}
	}
}
