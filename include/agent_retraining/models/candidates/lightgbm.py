"""LightGBM's gradient-boosted trees, stored in LightGBM's text format.

Only parameters for local training on this machine are accepted: nothing that opens sockets (`machines`,
`tree_learner`), reads or writes files, or needs a GPU.
"""

from __future__ import annotations

from agent_retraining.models.candidates.base import Candidate, Choice, Flag, Integer, Number


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
        booster = lgb.train(booster_params, lgb.Dataset(matrix, labels), num_boost_round=params["num_boost_round"])
        return booster.model_to_string().encode(), {**params, "seed": seed}

    def load(self, artifact: bytes, params: dict):
        import lightgbm as lgb

        return lgb.Booster(model_str=artifact.decode())
