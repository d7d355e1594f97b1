#!/usr/bin/python3
"""torch_eval.py — the peer for bench/run.sh: runs a qlab model.json graph in PyTorch.

Reads the same model.json + safetensors and the same dataset as qlab, runs
the float forward pass with torch (Debian's python3-torch), and prints
images/s (best of N) and top-1, so the two can be compared in one run.
Usage: torch_eval.py MODEL DATA REPEAT THREADS BATCH
"""
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
          "U8": np.uint8, "I8": np.int8}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        a = np.frombuffer(data[b:e], dtype=DTYPES[t["dtype"]]).reshape(t["shape"])
        out[name] = a
    return out


def read_idx(path):
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)


def read_data(path):
    if path.endswith(".safetensors"):
        t = read_safetensors(path)
        return t["inputs"].astype(np.float32), t["labels"].astype(np.int64)
    labels = os.path.join(os.path.dirname(path),
                          os.path.basename(path).replace("images", "labels").replace("idx3", "idx1"))
    return read_idx(path).astype(np.float32), read_idx(labels).astype(np.int64)


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def build(model_path):
    path = os.path.join(model_path, "model.json") if os.path.isdir(model_path) else model_path
    spec = json.load(open(path))
    folder = os.path.dirname(path)
    weights = {}
    for w in ([spec["weights"]] if isinstance(spec["weights"], str) else spec["weights"]):
        weights.update({k: torch.from_numpy(v.astype(np.float32).copy())
                        for k, v in read_safetensors(os.path.join(folder, w)).items()})
    inp = spec["input"]
    scale = torch.tensor(inp.get("scale", [1.0]), dtype=torch.float32)
    offset = torch.tensor(inp.get("offset", [0.0]), dtype=torch.float32)
    shape = inp["shape"]
    nodes = spec["graph"]

    def forward(x):
        x = x.reshape([x.shape[0]] + shape)
        if scale.numel() > 1:
            x = x * scale.view(1, -1, *([1] * (len(shape) - 1))) + offset.view(1, -1, *([1] * (len(shape) - 1)))
        else:
            x = x * scale + offset
        values = {"input": x}
        prev = "input"
        for i, n in enumerate(nodes):
            name = n.get("name", "%s%d" % (n["op"], i))
            src = n.get("input", prev)
            a = values[src if isinstance(src, str) else src[0]]
            op = n["op"]
            if op == "conv2d":
                pad = n.get("padding", 0)
                if isinstance(pad, list) and len(pad) == 4:
                    a = F.pad(a, (pad[1], pad[3], pad[0], pad[2]))
                    pad = 0
                y = F.conv2d(a, weights[n["weight"]], weights.get(n.get("bias")), stride=pair(n.get("stride", 1)),
                             padding=pair(pad), dilation=pair(n.get("dilation", 1)), groups=n.get("groups", 1))
            elif op == "linear":
                y = F.linear(a, weights[n["weight"]], weights.get(n.get("bias")))
            elif op == "relu":
                y = F.relu(a)
            elif op == "maxpool2d":
                k = pair(n["kernel"])
                y = F.max_pool2d(a, k, stride=pair(n.get("stride", k)), padding=pair(n.get("padding", 0)))
            elif op == "avgpool2d":
                k = pair(n["kernel"])
                y = F.avg_pool2d(a, k, stride=pair(n.get("stride", k)), padding=pair(n.get("padding", 0)))
            elif op == "flatten":
                y = a.flatten(1)
            elif op == "batchnorm":
                y = F.batch_norm(a, weights[n["mean"]], weights[n["var"]], weights[n["weight"]],
                                 weights[n["bias"]], False, 0.0, n.get("eps", 1e-5))
            elif op == "global_avgpool":
                y = a.mean(dim=(2, 3))
            else:
                raise SystemExit("torch_eval.py: op %s is not in this peer" % op)
            values[name] = y
            prev = name
        return values[spec.get("output", prev)]
    return forward


def main():
    model, data, repeat, threads, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(threads)
    forward = build(model)
    x, y = read_data(data)
    x = torch.from_numpy(x.reshape(x.shape[0], -1).copy())
    best = 1e300
    with torch.inference_mode():
        for _ in range(repeat):
            t0 = time.perf_counter()
            outs = [forward(x[i:i + batch]) for i in range(0, x.shape[0], batch)]
            best = min(best, time.perf_counter() - t0)
        logits = torch.cat(outs)
    top1 = 100.0 * float((logits.argmax(1).numpy() == y).mean())
    print(json.dumps({"images": int(x.shape[0]), "seconds": best, "images_per_s": x.shape[0] / best,
                      "top1": round(top1, 2), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
