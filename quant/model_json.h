/* model_json.h — the native model format: model.json (graph, input, preprocessing) + safetensors weights.
 *
 * A native model is a folder holding model.json, or a .json file. It names
 * one or more safetensors files (paths relative to the JSON file) and
 * describes the graph, so any safetensors checkpoint can be evaluated:
 *
 *   {
 *     "qlab_model": 1,                        format version (required)
 *     "name": "digits-cnn",                   default: the folder name
 *     "description": "one line",
 *     "weights": ["model.safetensors"],       or a single string
 *     "input": {
 *       "shape": [1, 8, 8],                   per sample, no batch dimension
 *       "scale": [0.0625], "offset": [0]      x' = x * scale[c] + offset[c];
 *     },                                      one value, or one per channel (shape[0])
 *     "classes": ["0", "1", ...],             optional names of the outputs
 *     "dataset": "../digits/test.safetensors",  default evaluation data (optional)
 *     "labels": "...",                        its IDX labels file (optional)
 *     "graph": [                              ops in execution order
 *       {"op": "conv2d", "name": "conv1", "weight": "conv1.weight", "bias": "conv1.bias",
 *        "stride": 1, "padding": 1},
 *       {"op": "relu"},
 *       {"op": "maxpool2d", "kernel": 2, "stride": 2},
 *       {"op": "flatten"},
 *       {"op": "linear", "weight": "fc.weight", "bias": "fc.bias"}
 *     ],
 *     "output": "fc"                          default: the last node
 *   }
 *
 * Node fields: "op" (required: linear conv2d relu gelu maxpool2d avgpool2d
 * global_avgpool flatten reshape batchnorm add softmax); "name" (default
 * "<op><index>"); "input": a node name or "input", or a list of two for
 * add (default: the previous node, or "input" for the first).
 * Attributes: "stride", "dilation", "kernel": n or [h, w]; "padding": n,
 * [h, w], [top, left, bottom, right], "valid" or "same_upper"; "groups";
 * "ceil_mode", "count_include_pad" (pools; avgpool counts padding unless
 * false); "eps" (batchnorm, default 1e-5); "approximate": "tanh" (gelu);
 * "shape" (reshape, per sample, one -1 allowed); "transposed": true
 * (linear weight stored [in, out]).
 * Tensors: "weight", "bias" (linear, conv2d); "weight", "bias", "mean",
 * "var" (batchnorm: gamma, beta, running mean, running variance).
 */
#ifndef QLAB_MODEL_JSON_H
#define QLAB_MODEL_JSON_H

#include "error.h"
#include "model.h"

/* Loads a native model (folder with model.json, or the .json itself).
 * Every error names the file and, where it applies, the node. */
int qmodel_json_load(const char *path, struct qmodel **out, qerr *err);

#endif
