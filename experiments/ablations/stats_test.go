package main

import (
	"reflect"
	"testing"
)

func TestOrientAndPairs(t *testing.T) {
	layers := &Sweep{Name: "layers", Param: "layers", Values: []string{"10", "20", "30"}}
	init := &Sweep{Name: "init", Param: "init", Values: []string{"zero", "random"}}
	modality := &Sweep{Name: "modality", Param: "modality", Values: []string{"text", "multimodal"}}
	epochs := &Sweep{Name: "epochs", Param: "epochs", Values: []string{"0.5", "1", "2"}, Paper: map[string]string{"0.5": "15", "1": "30", "2": "60"}}
	k := &Sweep{Name: "prompt-len", Param: "prompt-len", Values: []string{"1", "5", "10", "20"}}
	for _, c := range []struct {
		s          *Sweep
		x, y, a, b string
		expect     int
	}{
		{layers, "10", "30", "30", "10", 1}, // Table 4: 83.85 > 55.95
		{layers, "30", "20", "30", "20", 1},
		{init, "random", "zero", "zero", "random", 1},
		{modality, "text", "multimodal", "multimodal", "text", 1},
		{epochs, "2", "1", "2", "1", 1}, // Table 6: 83.94 > 83.85
		{epochs, "0.5", "1", "1", "0.5", 1},
		{k, "1", "10", "10", "1", 0}, // the paper has no K table
	} {
		a, b, e := orient(c.s, c.x, c.y)
		if a != c.a || b != c.b || e != c.expect {
			t.Errorf("%s %s,%s: %s − %s expect %d, want %s − %s expect %d", c.s.Name, c.x, c.y, a, b, e, c.a, c.b, c.expect)
		}
	}
	// Every value against the reference, and numeric neighbours, once each.
	got := pairsOf(layers, layers.Values, "30")
	want := [][2]string{{"10", "30"}, {"20", "30"}, {"20", "10"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("layer pairs %v, want %v", got, want)
	}
	if got := pairsOf(init, init.Values, "zero"); !reflect.DeepEqual(got, [][2]string{{"random", "zero"}}) {
		t.Errorf("init pairs %v", got)
	}
	// A reference that is not swept falls back to the first value.
	if got := pairsOf(modality, modality.Values, "other"); !reflect.DeepEqual(got, [][2]string{{"multimodal", "text"}}) {
		t.Errorf("modality pairs %v", got)
	}
}

func TestCorrectString(t *testing.T) {
	c := map[string]bool{"10": true, "9": false, "100": true}
	pids := sortedPIDs(c)
	if !reflect.DeepEqual(pids, []string{"9", "10", "100"}) {
		t.Errorf("pids %v", pids)
	}
	if s := correctString(pids, c); s != "011" {
		t.Errorf("correctString %q", s)
	}
}
