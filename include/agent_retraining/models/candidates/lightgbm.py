"""LightGBM's gradient-boosted trees, stored in LightGBM's text format.

Only parameters for local training on this machine are accepted: nothing that opens sockets (`machines`,
`tree_learner`), reads or writes files, or needs a GPU.
"""

from __future__ import annotations

from agent_retraining.models.candidates import onnx_graphs
from agent_retraining.models.candidates.base import Candidate, Choice, Flag, Integer, Number, fractional


class LightGBM(Candidate):
    name = "lightgbm"
    framework = "lightgbm"
    artifact_name = "model.txt"
    defaults = {
        "objective": "binary",
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_data_in_leaf": 40,
        "lambda_l2": 1.0,
        "num_boost_round": 200,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 2,
        "verbose": -1,
    }
    parameters = {
        "objective": Choice(frozenset({"binary", "cross_entropy"})), "learning_rate": Number(1e-4, 1.0),
        "num_leaves": Integer(2, 4096), "min_data_in_leaf": Integer(1, 1_000_000), "max_depth": Integer(-1, 64),
        "lambda_l1": Number(0.0, 1e4), "lambda_l2": Number(0.0, 1e4), "num_boost_round": Integer(1, 10_000),
        "feature_fraction": Number(0.01, 1.0), "bagging_fraction": Number(0.01, 1.0),
        "bagging_freq": Integer(0, 1000), "min_gain_to_split": Number(0.0, 1e4), "max_bin": Integer(2, 1024),
        "min_sum_hessian_in_leaf": Number(0.0, 1e4), "scale_pos_weight": Number(1e-3, 1e3),
        "is_unbalance": Flag(), "extra_trees": Flag(), "deterministic": Flag(), "force_row_wise": Flag(),
        "num_threads": Integer(1, 64), "verbose": Integer(-1, 2),
    }  # fmt: skip

    def fit(self, matrix, labels, seed: int, params: dict) -> tuple[bytes, dict]:
        import lightgbm as lgb

        booster_params = {k: v for k, v in params.items() if k != "num_boost_round"} | {"seed": seed}
        if fractional(labels) and booster_params["objective"] == "binary":  # `binary` refuses labels other than 0/1
            booster_params["objective"] = "cross_entropy"  # the same log loss, for labels anywhere in [0, 1]
        booster = lgb.train(booster_params, lgb.Dataset(matrix, labels), num_boost_round=params["num_boost_round"])
        return booster.model_to_string().encode(), {**params, "objective": booster_params["objective"], "seed": seed}

    def load(self, artifact: bytes, params: dict):
        import lightgbm as lgb

        return lgb.Booster(model_str=artifact.decode())

    def to_onnx(self, artifact: bytes, params: dict, feature_count: int) -> bytes:
        """LightGBM's trees from its JSON dump; both objectives allowed here score sigmoid(sum of leaves)."""
        dump, trees = self.load(artifact, params).dump_model(), onnx_graphs.Trees()
        for number, tree in enumerate(dump["tree_info"]):
            pending, next_id = [(tree["tree_structure"], 0)], 1
            while pending:  # depth-first with a stack: a tree of 4096 leaves may be that deep
                node, node_id = pending.pop()
                if "leaf_value" in node:
                    trees.leaf(number, node_id, node["leaf_value"])
                    continue
                if node["decision_type"] != "<=" or node["missing_type"] == "Zero":
                    raise ValueError(f"tree {number}: split {node['decision_type']} with missing type "
                                     f"{node['missing_type']} has no ONNX form here")  # fmt: skip
                left, right, next_id = next_id, next_id + 1, next_id + 2
                trees.split(number, node_id, node["split_feature"], node["threshold"], left, right,
                            node["default_left"])  # fmt: skip
                pending += [(node["left_child"], left), (node["right_child"], right)]
        return trees.graph(0.0, feature_count)
