#!/usr/bin/python3
"""make_synthetic_llama.py — a llama2.c model with random weights and random token ids, for bench/lm.sh.

Usage: make_synthetic_llama.py OUT.bin TOKENS.i32 [N_TOKENS] [SHAPE]

SHAPE is dim,hidden,layers,heads,kv_heads,vocab,seq_len (default the
stories15M shape: 288,768,6,6,6,32000,256). The model is written in
llama2.c's legacy (v0) layout with a positive vocab_size, so its output
is tied to the token embedding as stories15M's is. Weights are random
with a fixed seed, scaled so activations stay near unit size and the
next-token distribution is neither uniform nor one-hot. TOKENS.i32 holds
N_TOKENS (default 4097) random little-endian int32 ids in [3, vocab).
"""
import sys

import numpy as np


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, tok_path = sys.argv[1], sys.argv[2]
    n_tokens = int(sys.argv[3]) if len(sys.argv) > 3 else 4097
    shape = sys.argv[4] if len(sys.argv) > 4 else "288,768,6,6,6,32000,256"
    dim, hidden, layers, heads, kv_heads, vocab, seq_len = (int(v) for v in shape.split(","))
    hd = dim // heads
    kv_dim = kv_heads * hd
    rng = np.random.default_rng(20240501)

    def mat(*shape_):
        # std 1/sqrt(fan-in): each product keeps its input's scale
        return (rng.standard_normal(shape_, dtype=np.float32) / np.sqrt(shape_[-1])).astype(np.float32)

    def norm(*shape_):
        return (1.0 + 0.1 * rng.standard_normal(shape_, dtype=np.float32)).astype(np.float32)

    arrays = [
        0.1 * rng.standard_normal((vocab, dim), dtype=np.float32),  # token_embedding
        norm(layers, dim),                                          # rms_att
        mat(layers, dim, dim),                                      # wq
        mat(layers, kv_dim, dim),                                   # wk
        mat(layers, kv_dim, dim),                                   # wv
        mat(layers, dim, dim),                                      # wo
        norm(layers, dim),                                          # rms_ffn
        mat(layers, hidden, dim),                                   # w1 (gate)
        mat(layers, dim, hidden),                                   # w2 (down)
        mat(layers, hidden, dim),                                   # w3 (up)
        norm(dim),                                                  # rms_final
    ]
    # freq_cis_real, freq_cis_imag: unused by llama2.c's run.c, written as it writes them
    freqs = 1.0 / (10000.0 ** (np.arange(0, hd, 2, dtype=np.float32) / hd))
    angles = np.outer(np.arange(seq_len, dtype=np.float32), freqs)
    arrays += [np.cos(angles), np.sin(angles)]

    with open(out, "wb") as f:
        np.array([dim, hidden, layers, heads, kv_heads, vocab, seq_len], dtype="<i4").tofile(f)
        for a in arrays:
            np.ascontiguousarray(a, dtype="<f4").tofile(f)
    rng.integers(3, vocab, size=n_tokens, dtype=np.int32).astype("<i4").tofile(tok_path)


if __name__ == "__main__":
    main()
