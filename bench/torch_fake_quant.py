#!/usr/bin/python3
"""torch_fake_quant.py — the peer for bench/quant.sh: PyTorch's per-channel fake quantization.

Times torch.fake_quantize_per_channel_affine on the same 4096 x 4096 float32
tensor as bench/quant_throughput.c (the same splitmix64 + Box-Muller normal
values, seed 20240601), axis 0, symmetric: scale = amax / 127 (int8) or
amax / 7 (int4) per row, zero_point 0, quant_min/max = -127..127 or -7..7,
with torch.set_num_threads(2), best of REPEAT.

Prints one JSON line per bit width: MB/s of the fake-quantize call alone
(the scales are computed once, outside the timing) and MB/s with the scale
computation (amax over each row, / qmax) included, as qlab's scheme does
it; and the mean squared error of the result against the input, which
must agree with qlab's to a few parts per million (the only differences
are ties: PyTorch multiplies by 1/scale where qlab divides).
Usage: torch_fake_quant.py [REPEAT]
"""
import json
import sys
import time

import numpy as np
import torch

ROWS, COLS, SEED = 4096, 4096, 20240601
GOLDEN, M1, M2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def normal_tensor():
    """The values of quant_throughput.c's fill_normal, computed the same way in numpy."""
    n = ROWS * COLS
    out = np.empty(n, dtype=np.float32)
    chunk = 1 << 20
    with np.errstate(over="ignore"):
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            # call j (1-based) of rng_next sees s = seed + j * golden (mod 2^64)
            j = np.arange(2 * start + 1, 2 * (start + m) + 1, dtype=np.uint64)
            z = np.uint64(SEED) + j * np.uint64(GOLDEN)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(M1)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(M2)
            z = z ^ (z >> np.uint64(31))
            r = (z >> np.uint64(11)).astype(np.float64)
            u1 = (r[0::2] + 1.0) / 9007199254740993.0
            u2 = r[1::2] / 9007199254740992.0
            g = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
            out[start:start + m] = g.astype(np.float32)
    return torch.from_numpy(out.reshape(ROWS, COLS))


def best_of(repeat, fn):
    best = float("inf")
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main():
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    torch.set_num_threads(2)
    x = normal_tensor()
    mb = x.numel() * 4 / 1e6
    zero = torch.zeros(ROWS, dtype=torch.int32)
    for bits, qmax in ((8, 127), (4, 7)):
        def scales():
            return x.abs().amax(dim=1) / qmax  # float32, as qlab's amax / qmax

        scale = scales()
        t_fq, y = best_of(repeat, lambda: torch.fake_quantize_per_channel_affine(
            x, scale, zero, 0, -qmax, qmax))
        t_all, _ = best_of(repeat, lambda: torch.fake_quantize_per_channel_affine(
            x, scales(), zero, 0, -qmax, qmax))
        mse = float(((y.double() - x.double()) ** 2).mean())
        print(json.dumps({"bits": bits, "threads": torch.get_num_threads(),
                          "mb_per_s": mb / t_fq, "mb_per_s_with_scale": mb / t_all,
                          "mse": mse, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
