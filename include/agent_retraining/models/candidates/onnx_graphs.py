"""ONNX graphs built straight from a candidate's stored artifact, so any agent with an ONNX runtime can score it.

Every graph has the same signature (docs/serving-contract.md): input `features`, float32 [rows, feature columns];
output `reward_probability`, float32 [rows]. They are written here from the weights and trees rather than by a
converter package: the graph is then exactly the model's arithmetic (tree thresholds and sums in float64, as
LightGBM and scikit-learn compute them), it needs `onnx` alone, and the same artifact always gives the same bytes
(content-addressed versions stay stable). Whatever the graph, evaluation still checks its scores against the native
model's before it may be deployed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

INPUT, OUTPUT = "features", "reward_probability"
OPSET = 17  # ai.onnx; ai.onnx.ml 3 holds TreeEnsembleRegressor with float64 thresholds and weights
ML_OPSET = 3
PRODUCER = "agent-retraining"


def _model(nodes: list, initializers: list, feature_count: int) -> bytes:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes,
        "reward_model",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["rows", feature_count])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["rows"])],
        initializers,
    )
    opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name=PRODUCER, ir_version=8)
    from onnx import checker

    checker.check_model(model, full_check=True)
    return model.SerializeToString(deterministic=True)


def _tensor(name: str, values: np.ndarray):
    from onnx import numpy_helper

    return numpy_helper.from_array(values, name)


def _probability(logits: str, nodes: list, initializers: list) -> None:
    """Sigmoid of a [rows, 1] logit column, as float32 [rows]."""
    from onnx import TensorProto, helper

    initializers.append(_tensor("flat", np.array([-1], dtype=np.int64)))
    nodes += [
        helper.make_node("Sigmoid", [logits], ["probability"]),
        helper.make_node("Cast", ["probability"], ["probability32"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["probability32", "flat"], [OUTPUT]),
    ]


def dense(layers: list[tuple[np.ndarray, np.ndarray]], feature_count: int) -> bytes:
    """Fully connected layers (weights [out, in], bias [out]) with ReLU between them and a sigmoid after the last,
    in float32: a logistic regression is one layer."""
    from onnx import helper

    nodes, initializers, current = [], [], INPUT
    for index, (weights, bias) in enumerate(layers):
        names = (f"w{index}", f"b{index}")
        initializers += [_tensor(names[0], weights.astype(np.float32)), _tensor(names[1], bias.astype(np.float32))]
        nodes.append(helper.make_node("Gemm", [current, *names], [f"z{index}"], transB=1))
        current = f"z{index}"
        if index < len(layers) - 1:
            nodes.append(helper.make_node("Relu", [current], [f"h{index}"]))
            current = f"h{index}"
    _probability(current, nodes, initializers)
    return _model(nodes, initializers, feature_count)


@dataclass
class Trees:
    """Regression trees in ONNX's flat node form; a tree's nodes are numbered from 0 in the order added."""

    tree_ids: list[int] = field(default_factory=list)
    node_ids: list[int] = field(default_factory=list)
    features: list[int] = field(default_factory=list)
    modes: list[str] = field(default_factory=list)
    thresholds: list[float] = field(default_factory=list)
    true_ids: list[int] = field(default_factory=list)
    false_ids: list[int] = field(default_factory=list)
    missing_true: list[int] = field(default_factory=list)
    leaf_trees: list[int] = field(default_factory=list)
    leaf_nodes: list[int] = field(default_factory=list)
    leaf_values: list[float] = field(default_factory=list)

    def split(self, tree: int, node: int, feature: int, threshold: float, left: int, right: int,
              missing_left: bool) -> None:  # fmt: skip
        """x[feature] <= threshold goes to `left` (a NaN goes left when `missing_left`)."""
        self._node(tree, node, feature, "BRANCH_LEQ", threshold, left, right, int(missing_left))

    def leaf(self, tree: int, node: int, value: float) -> None:
        self._node(tree, node, 0, "LEAF", 0.0, 0, 0, 0)
        self.leaf_trees.append(tree)
        self.leaf_nodes.append(node)
        self.leaf_values.append(value)

    def _node(self, *values) -> None:
        fields = (self.tree_ids, self.node_ids, self.features, self.modes, self.thresholds, self.true_ids,
                  self.false_ids, self.missing_true)  # fmt: skip
        for column, value in zip(fields, values, strict=True):
            column.append(value)

    def graph(self, base_logit: float, feature_count: int) -> bytes:
        """The sum of the trees' leaves plus `base_logit`, through a sigmoid; compared and summed in float64, as
        LightGBM and scikit-learn do, on the float32 input."""
        from onnx import TensorProto, helper

        ensemble = helper.make_node(
            "TreeEnsembleRegressor", ["features64"], ["logit"], domain="ai.onnx.ml", n_targets=1,
            aggregate_function="SUM", post_transform="NONE",
            base_values_as_tensor=_tensor("base", np.array([base_logit], dtype=np.float64)),
            nodes_treeids=self.tree_ids, nodes_nodeids=self.node_ids, nodes_featureids=self.features,
            nodes_modes=self.modes, nodes_truenodeids=self.true_ids, nodes_falsenodeids=self.false_ids,
            nodes_values_as_tensor=_tensor("thresholds", np.array(self.thresholds, dtype=np.float64)),
            nodes_missing_value_tracks_true=self.missing_true,
            target_ids=[0] * len(self.leaf_nodes), target_nodeids=self.leaf_nodes, target_treeids=self.leaf_trees,
            target_weights_as_tensor=_tensor("leaves", np.array(self.leaf_values, dtype=np.float64)),
        )  # fmt: skip
        nodes = [helper.make_node("Cast", [INPUT], ["features64"], to=TensorProto.DOUBLE), ensemble]
        initializers: list = []
        _probability("logit", nodes, initializers)
        return _model(nodes, initializers, feature_count)
