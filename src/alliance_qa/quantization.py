"""An 8-bit copy of an ONNX model whose every text's vectors depend on that text alone.

The copy runs each matrix product of the model with a constant weight (the transformer's
projections and feed-forward layers) in int8:

- the weight is quantized once, one scale per output column (symmetric, in 7 bits: -63…63,
  ONNX Runtime's `reduce_range`; on x86 without VNNI its kernel adds two uint8 × int8
  products in 16 bits, which 8-bit weights overflow: cosine 0.98 to the float model on a
  toy product there, against > 0.99 everywhere in 7 bits);
- the input is quantized as it comes, **one scale per word piece**: each row of the input
  is divided by its own largest magnitude / 127 (symmetric; stored as uint8 around 128);
- ONNX Runtime's `MatMulIntegerToFloat` multiplies the two in integers and scales by the
  weight's scales, and one multiplication by the row's scale gives the float result.

ONNX Runtime's own dynamic quantization (`quantize_dynamic`) scales the input once per
tensor, that is once per batch: a text's vectors then depend on the texts batched with it
(cosine 0.969 between a sentence embedded in a batch and alone), and an incremental build
would not match a full one. Here each word piece's row is quantized on its own, so a text
gives the same vectors, to the bit, in any batch (tests/test_onnx_encoder.py), and closer to
the full model's than per batch (cosine ≥ 0.98 for all-MiniLM-L6-v2; docs/method.md).

Standard ONNX operators do the quantization (ReduceMax/ReduceMin, QuantizeLinear per axis),
so ONNX Runtime runs the copy as it is; only `MatMulIntegerToFloat` is its own operator.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

MS_DOMAIN = "com.microsoft"        # ONNX Runtime's operators (MatMulIntegerToFloat)
LEVELS = 127.0                     # symmetric int8 input: values in -127…127
WEIGHT_LEVELS = 63.0               # the weight in 7 bits: 255 × 63 × 2 fits in an int16
CENTRE = 128                       # the uint8 that stands for 0 in a quantized input


def quantize_per_word_piece(source: Path, target: Path) -> int:
    """Write the 8-bit copy of the model in `source` to `target`; return how many matrix
    products it runs in int8 (0: none found, and nothing is written)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    weights = {i.name: i for i in graph.initializer if len(i.dims) == 2
               and i.data_type == onnx.TensorProto.FLOAT}
    products: dict[str, list] = {}          # input name → the products that read it
    for node in graph.node:
        if node.op_type == "MatMul" and node.input[1] in weights:
            products.setdefault(node.input[0], []).append(node)
    if not products:
        return 0
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    added = []

    def constant(name: str, value: np.ndarray) -> str:
        added.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def reduce(op: str, x: str, out: str) -> onnx.NodeProto:     # over the last axis, kept
        if opset >= 18:                         # axes became an input in opset 18
            return helper.make_node(op, [x, axes], [out], keepdims=1)
        return helper.make_node(op, [x], [out], axes=[-1], keepdims=1)

    axes = constant("q8_axes", np.array([-1], np.int64)) if opset >= 18 else ""
    tiny = constant("q8_tiny", np.float32(1e-12))
    levels = constant("q8_levels", np.float32(LEVELS))
    centre = constant("q8_centre", np.uint8(CENTRE))
    column = constant("q8_column", np.array([-1], np.int64))
    one = constant("q8_one", np.float32(1.0))
    replacing: dict[int, list] = {}
    for k, (x, nodes) in enumerate(products.items()):
        p = f"q8_{k}_"
        width = weights[nodes[0].input[1]].dims[0]
        rows = constant(p + "rows", np.array([-1, width], np.int64))
        quantize = [                 # x → uint8 around 128, one scale per row (word piece)
            reduce("ReduceMax", x, p + "high"),
            reduce("ReduceMin", x, p + "low"),
            helper.make_node("Neg", [p + "low"], [p + "minus_low"]),
            helper.make_node("Max", [p + "high", p + "minus_low", tiny], [p + "peak"]),
            helper.make_node("Div", [p + "peak", levels], [p + "scale"]),
            helper.make_node("Shape", [x], [p + "shape"]),
            helper.make_node("Reshape", [x, rows], [p + "x_rows"]),
            helper.make_node("Reshape", [p + "scale", column], [p + "row_scales"]),
            helper.make_node("Shape", [p + "row_scales"], [p + "row_count"]),
            helper.make_node("Expand", [centre, p + "row_count"], [p + "centres"]),
            helper.make_node("QuantizeLinear", [p + "x_rows", p + "row_scales", p + "centres"],
                             [p + "q_rows"], axis=0),
            helper.make_node("Reshape", [p + "q_rows", p + "shape"], [p + "q"]),
        ]
        for j, node in enumerate(nodes):
            w = numpy_helper.to_array(weights[node.input[1]]).astype(np.float32)
            scales = np.maximum(np.abs(w).max(axis=0), 1e-12) / WEIGHT_LEVELS
            q = f"{p}{j}_"
            product = [
                helper.make_node(
                    "MatMulIntegerToFloat",
                    [p + "q", constant(q + "w", np.round(w / scales).astype(np.int8)), one,
                     constant(q + "w_scales", scales.astype(np.float32)), centre,
                     constant(q + "w_zero", np.int8(0))],
                    [q + "unscaled"], domain=MS_DOMAIN),
                helper.make_node("Mul", [q + "unscaled", p + "scale"], [node.output[0]]),
            ]
            replacing[id(node)] = (quantize if j == 0 else []) + product
    nodes = [new for node in graph.node for new in replacing.get(id(node), [node])]
    read = {name for node in nodes for name in node.input} | {o.name for o in graph.output}
    kept = [i for i in graph.initializer if i.name in read]   # a weight read elsewhere stays
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept + added)
    if not any(o.domain == MS_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    onnx.save(model, str(target))
    return sum(map(len, products.values()))
