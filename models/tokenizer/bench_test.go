package tokenizer

import "testing"

// benchmarkEncode encodes every ScienceQA text of problems_sample150.json once per iteration; throughput is
// reported in MB/s of input text.
func benchmarkEncode(b *testing.B, tok Tokenizer) {
	texts := scienceQATexts(b)
	size, tokens := 0, 0
	for _, s := range texts {
		size += len(s)
		tokens += len(tok.Encode(s, true))
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for _, s := range texts {
			tok.Encode(s, true)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(tokens)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

func BenchmarkEncodeSentencePiece(b *testing.B) {
	tok, err := LoadSentencePiece(llamaModelPath(b))
	if err != nil {
		b.Fatal(err)
	}
	benchmarkEncode(b, tok)
}

func BenchmarkEncodeLlama2C(b *testing.B) {
	tok, err := LoadLlama2C(tok512Path(b))
	if err != nil {
		b.Fatal(err)
	}
	benchmarkEncode(b, tok)
}

// BenchmarkEncodeLlama2CRescan is run.c's own rescanning algorithm (the test's reference), for comparison.
func BenchmarkEncodeLlama2CRescan(b *testing.B) {
	tok, err := LoadLlama2C(tok512Path(b))
	if err != nil {
		b.Fatal(err)
	}
	lookup := naiveLookup(tok)
	texts := scienceQATexts(b)
	size := 0
	for _, s := range texts {
		size += len(s)
	}
	b.SetBytes(int64(size))
	b.ResetTimer()
	for range b.N {
		for _, s := range texts {
			naiveEncode(tok, lookup, s, true)
		}
	}
}

// BenchmarkEncodeBPE is SmolLM2's byte-level BPE (GGUF metadata, smollm pre-tokenizer).
func BenchmarkEncodeBPE(b *testing.B) {
	benchmarkEncode(b, smolLM2Tokenizer(b))
}
