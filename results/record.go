package results

import (
	"encoding/json"
	"fmt"
	"sort"
)

// DiffRecords compares two records (any values that marshal to JSON, such as a run's recorded config and the
// current one) and lists every difference as "key.path: recorded X, now Y", sorted by key. Objects are compared
// key by key; other values (numbers, strings, arrays) as wholes.
func DiffRecords(recorded, current any) ([]string, error) {
	a, err := toJSONValue(recorded)
	if err != nil {
		return nil, fmt.Errorf("results: recorded value: %w", err)
	}
	b, err := toJSONValue(current)
	if err != nil {
		return nil, fmt.Errorf("results: current value: %w", err)
	}
	var out []string
	diffValues("", a, b, &out)
	sort.Strings(out)
	return out, nil
}

func toJSONValue(v any) (any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	err = json.Unmarshal(data, &out)
	return out, err
}

func diffValues(key string, a, b any, out *[]string) {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		for k, av := range am {
			sub := joinKey(key, k)
			if bv, ok := bm[k]; ok {
				diffValues(sub, av, bv, out)
			} else {
				*out = append(*out, fmt.Sprintf("%s: recorded %s, now absent", sub, show(av)))
			}
		}
		for k, bv := range bm {
			if _, ok := am[k]; !ok {
				*out = append(*out, fmt.Sprintf("%s: recorded absent, now %s", joinKey(key, k), show(bv)))
			}
		}
		return
	}
	if sa, sb := show(a), show(b); sa != sb {
		*out = append(*out, fmt.Sprintf("%s: recorded %s, now %s", key, sa, sb))
	}
}

func joinKey(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// show prints a JSON value compactly (maps have sorted keys, so equal values print equally).
func show(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(data)
}
