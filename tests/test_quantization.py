"""The 8-bit copy of a model: close to the float model, and each row of a batch computed on
its own (a text's vectors do not depend on its batch mates). On a small hand-made graph,
run by ONNX Runtime: no sentence-transformers model needed."""

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from alliance_qa.quantization import quantize_per_word_piece

pytestmark = pytest.mark.unit
RNG = np.random.default_rng(7)
W1, W2 = RNG.normal(size=(16, 24)).astype(np.float32), RNG.normal(size=(16, 8)).astype(np.float32)
W3 = RNG.normal(size=(24, 8)).astype(np.float32)


def float_model(path, opset: int = 17) -> None:
    """x [batch, pieces, 16] → relu(x·W1)·W3 + x·W2 + the sum of W2: two products share an
    input, and one weight is read by another operator too."""
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("MatMul", ["r", "w3"], ["a"]),
             helper.make_node("MatMul", ["x", "w2"], ["b"]),
             helper.make_node("Add", ["a", "b"], ["s"]),
             helper.make_node("ReduceSum", ["w2"], ["w2_sum"], keepdims=0),   # w2 read again
             helper.make_node("Add", ["s", "w2_sum"], ["y"])]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", "t", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", "t", 8])],
        [numpy_helper.from_array(w, name) for w, name in ((W1, "w1"), (W2, "w2"), (W3, "w3"))])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), path)


def run(path, x: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


@pytest.mark.parametrize("opset", [17, 18])
def test_the_copy_is_close_to_the_float_model_and_computes_each_row_alone(tmp_path, opset):
    source, target = tmp_path / "float.onnx", tmp_path / "int8.onnx"
    float_model(source, opset)
    assert quantize_per_word_piece(source, target) == 3
    x = RNG.normal(size=(4, 5, 16)).astype(np.float32)
    x[1, 2] *= 1000            # one loud row: under one scale per batch it drowns the others
    expected, got = run(source, x), run(target, x)
    cosine = np.sum(expected * got, -1) / np.linalg.norm(expected, axis=-1) \
        / np.linalg.norm(got, axis=-1)
    assert cosine.min() > 0.99 and not np.array_equal(expected, got)
    for n in range(4):         # each text alone gives what it gave in the batch, to the bit
        assert np.array_equal(run(target, x[n:n + 1]), got[n:n + 1])
    onnx.checker.check_model(onnx.load(str(target)))   # standard operators but one


def test_a_model_without_a_weighted_product_gets_no_copy(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "plain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])])
    onnx.save(helper.make_model(graph), tmp_path / "plain.onnx")
    assert quantize_per_word_piece(tmp_path / "plain.onnx", tmp_path / "copy.onnx") == 0
    assert not (tmp_path / "copy.onnx").exists()
