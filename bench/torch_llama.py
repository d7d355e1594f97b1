#!/usr/bin/python3
"""torch_llama.py — a straightforward PyTorch llama forward over llama2.c checkpoints: the peer of bench_lm.c.

Usage: torch_llama.py MODEL.bin IDS.i32 N_CTX [REPEAT] [THREADS]

Reads the llama2.c legacy (v0) checkpoint with numpy, splits the int32
ids into floor(n / N_CTX) chunks, sets each chunk's first token to BOS
(1), runs each chunk through the whole model at once in float32 (causal
attention, logits of every position), and scores the second half as
llama-perplexity does: the logits at position j (N_CTX/2 <= j < N_CTX-1)
predict the token at j+1, -log softmax in float32 summed in float64. Prints JSON: tokens/s
(best of REPEAT) and the perplexity.
"""
import json
import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def load(path):
    raw = np.fromfile(path, dtype="<i4", count=7)
    dim, hidden, layers, heads, kv_heads, vocab, seq_len = (int(v) for v in raw)
    shared = vocab > 0
    vocab = abs(vocab)
    hd = dim // heads
    kv_dim = kv_heads * hd
    data = np.fromfile(path, dtype="<f4", offset=7 * 4)
    off = 0

    def take(*shape):
        nonlocal off
        n = int(np.prod(shape))
        a = torch.from_numpy(data[off:off + n].reshape(shape).copy())
        off += n
        return a

    w = {"emb": take(vocab, dim), "rms_att": take(layers, dim), "wq": take(layers, dim, dim),
         "wk": take(layers, kv_dim, dim), "wv": take(layers, kv_dim, dim),
         "wo": take(layers, dim, dim), "rms_ffn": take(layers, dim),
         "w1": take(layers, hidden, dim), "w2": take(layers, dim, hidden),
         "w3": take(layers, hidden, dim), "rms_final": take(dim)}
    off += seq_len * hd  # freq_cis_real, freq_cis_imag (unused)
    w["cls"] = w["emb"] if shared else take(vocab, dim)
    cfg = dict(dim=dim, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads,
               vocab=vocab, hd=hd)
    return cfg, w


def rmsnorm(x, weight, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rope(x, cos, sin):
    # x [n, heads, hd]: rotate adjacent pairs (2i, 2i+1), as llama2.c
    xr, xi = x[..., 0::2], x[..., 1::2]
    return torch.stack((xr * cos - xi * sin, xr * sin + xi * cos), dim=-1).flatten(-2)


def forward(cfg, w, tokens):
    n, hd, heads, kvh = tokens.shape[0], cfg["hd"], cfg["heads"], cfg["kv_heads"]
    freqs = 1.0 / (10000.0 ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    ang = torch.outer(torch.arange(n, dtype=torch.float32), freqs)
    cos, sin = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]
    mask = torch.full((n, n), float("-inf")).triu(1)
    x = w["emb"][tokens]
    for l in range(cfg["layers"]):
        h = rmsnorm(x, w["rms_att"][l])
        q = rope(F.linear(h, w["wq"][l]).view(n, heads, hd), cos, sin)
        k = rope(F.linear(h, w["wk"][l]).view(n, kvh, hd), cos, sin)
        v = F.linear(h, w["wv"][l]).view(n, kvh, hd)
        if kvh != heads:
            k = k.repeat_interleave(heads // kvh, dim=1)
            v = v.repeat_interleave(heads // kvh, dim=1)
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
        att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(hd) + mask, dim=-1)
        o = (att @ v).transpose(0, 1).reshape(n, heads * hd)
        x = x + F.linear(o, w["wo"][l])
        h = rmsnorm(x, w["rms_ffn"][l])
        x = x + F.linear(F.silu(F.linear(h, w["w1"][l])) * F.linear(h, w["w3"][l]), w["w2"][l])
    return F.linear(rmsnorm(x, w["rms_final"]), w["cls"])


def evaluate(cfg, w, ids, n_ctx):
    first = n_ctx // 2
    nll, count = 0.0, 0
    for c in range(ids.shape[0] // n_ctx):
        chunk = ids[c * n_ctx:(c + 1) * n_ctx].clone()
        chunk[0] = 1  # BOS, as llama-perplexity
        logits = forward(cfg, w, chunk)
        lp = torch.log_softmax(logits[first:n_ctx - 1], dim=-1)
        nll -= lp.gather(1, chunk[first + 1:, None]).double().sum().item()
        count += n_ctx - 1 - first
    return nll, count


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    path, ids_path, n_ctx = sys.argv[1], sys.argv[2], int(sys.argv[3])
    repeat = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    torch.set_num_threads(int(sys.argv[5]) if len(sys.argv) > 5 else 2)
    cfg, w = load(path)
    ids = torch.from_numpy(np.fromfile(ids_path, dtype="<i4").astype(np.int64))
    chunks = ids.shape[0] // n_ctx
    best = math.inf
    with torch.inference_mode():
        for _ in range(max(repeat, 1)):
            t0 = time.perf_counter()
            nll, count = evaluate(cfg, w, ids, n_ctx)
            best = min(best, time.perf_counter() - t0)
    print(json.dumps({"chunks": chunks, "tokens": chunks * n_ctx, "scored": count,
                      "seconds": round(best, 6), "tokens_per_s": round(chunks * n_ctx / best, 1),
                      "ppl": math.exp(nll / count), "threads": torch.get_num_threads(),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
