#!/usr/bin/env python3
"""PyTorch reference for experiments/bench: LLaMA (random weights) + peft AdaptionPrompt, same shapes and batch.

Measures forward + backward + AdamW on the adapter only (median step time after warm-up), and with --eval-batches
letter scoring (a no-grad forward pass keeping the logits of the last position only, as bench's ScoreLetters) and
with --gen-tokens greedy generation with the KV cache (as bench's generation), and the peak device memory and host
resident set. Nothing is downloaded: the model is built from a config. Usage:

    python3 experiments/bench/reference_peft.py --preset 7b --batch 4 --seq 512 --K 10 --L 30 [--json out.json]
    python3 experiments/bench/reference_peft.py --preset smollm2 --batch 8 --seq 128 --eval-batches 4 --gen-tokens 64
"""
import argparse
import json
import statistics
import sys
import time

import torch
from peft import AdaptionPromptConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

PRESETS = {
    "7b": dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
               num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=2048, rms_norm_eps=1e-6),
    "13b": dict(vocab_size=32000, hidden_size=5120, intermediate_size=13824, num_hidden_layers=40,
                num_attention_heads=40, num_key_value_heads=40, max_position_embeddings=2048, rms_norm_eps=1e-6),
    "stories260K": dict(vocab_size=512, hidden_size=64, intermediate_size=172, num_hidden_layers=5,
                        num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=512, rms_norm_eps=1e-5,
                        tie_word_embeddings=True),
    # SmolLM2-135M(-Instruct), as bench's smollm2 preset.
    "smollm2": dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                    num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192, rms_norm_eps=1e-5,
                    rope_theta=100000.0, tie_word_embeddings=True),
    "tiny": dict(vocab_size=256, hidden_size=64, intermediate_size=176, num_hidden_layers=4, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=512, rms_norm_eps=1e-5),
}


def peak_rss_gib():
    """The process's peak resident set (VmHWM), as bench reports it."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 2**30
    except OSError:
        pass
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="7b", choices=sorted(PRESETS))
    ap.add_argument("--layers", type=int, default=0, help="override the preset's depth (as bench -layers)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--K", type=int, default=10)
    ap.add_argument("--L", type=int, default=30)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--dtype", default="", help="bfloat16 (default for 7b/13b) or float32")
    ap.add_argument("--attn", default="sdpa", help="transformers attention implementation")
    ap.add_argument("--eval-batches", type=int, default=0, help="letter-scoring batches of --batch × --seq (0: skip)")
    ap.add_argument("--gen-prompt", type=int, default=64, help="generation prompt length")
    ap.add_argument("--gen-tokens", type=int, default=0, help="greedily generated tokens, batch 1 (0: skip)")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    cfg = dict(PRESETS[a.preset])
    if a.layers > 0:
        cfg["num_hidden_layers"] = a.layers
    dtype_name = a.dtype or ("bfloat16" if cfg["hidden_size"] >= 2048 else "float32")
    dtype = getattr(torch, dtype_name)
    torch.manual_seed(0)
    config = LlamaConfig(**cfg)
    config._attn_implementation = a.attn
    with torch.device(dev):
        model = LlamaForCausalLM(config).to(dtype)
    L = min(a.L, cfg["num_hidden_layers"])
    model = get_peft_model(model, AdaptionPromptConfig(adapter_len=a.K, adapter_layers=L, task_type="CAUSAL_LM"))
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)
    opt = torch.optim.AdamW(trainable, lr=1e-3, betas=(0.9, 0.95), weight_decay=0.02)
    ids = torch.randint(3, cfg["vocab_size"], (a.batch, a.seq), device=dev)
    ids[:, 0] = 1
    labels = torch.full_like(ids, -100)
    labels[:, -8:] = ids[:, -8:]  # the answer tokens at the end, as the Go bench does
    if dev == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(a.warmup + a.steps):
        if dev == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if dev == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    step = statistics.median(times[a.warmup:])
    eval_ex_s = gen_tok_s = None
    if a.eval_batches > 0:
        def score(n):
            with torch.no_grad():
                for _ in range(n):
                    x = torch.randint(3, cfg["vocab_size"], (a.batch, a.seq), device=dev)
                    x[:, 0] = 1
                    model(input_ids=x, logits_to_keep=1).logits[:, -1].float().cpu()
        score(1)  # warm-up
        t0 = time.perf_counter()
        score(a.eval_batches)
        eval_ex_s = a.batch * a.eval_batches / (time.perf_counter() - t0)
    if a.gen_tokens > 0:
        prompt = torch.randint(3, cfg["vocab_size"], (1, a.gen_prompt), device=dev)
        prompt[:, 0] = 1
        def generate():
            with torch.no_grad():
                return model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=a.gen_tokens,
                                      min_new_tokens=a.gen_tokens, do_sample=False, use_cache=True, pad_token_id=0)
        generate()  # warm-up
        t0 = time.perf_counter()
        out = generate()
        gen_tok_s = (out.shape[1] - a.gen_prompt) / (time.perf_counter() - t0)
    res = {
        "framework": f"torch {torch.__version__}", "device": torch.cuda.get_device_name() if dev == "cuda" else "cpu",
        "preset": a.preset, "layers": cfg["num_hidden_layers"], "threads": torch.get_num_threads(), "dtype": dtype_name, "batch": a.batch, "seq": a.seq, "K": a.K, "L": L,
        "adapter_params": n_trainable, "train_step_seconds": step, "train_tokens_per_second": a.batch * a.seq / step,
        "peak_device_gib": torch.cuda.max_memory_allocated() / 2**30 if dev == "cuda" else None,
        "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2**30 if dev == "cuda" else None,
        "peak_host_rss_gib": peak_rss_gib(),
        "first_step_seconds": times[0],
        "eval_examples_per_second": eval_ex_s, "gen_tokens_per_second": gen_tok_s,
    }
    print(json.dumps(res, indent=2))
    if a.json:
        with open(a.json + ".tmp", "w") as f:
            json.dump(res, f, indent=2)
        import os
        os.replace(a.json + ".tmp", a.json)


if __name__ == "__main__":
    sys.exit(main())
