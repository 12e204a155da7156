"""A small PyTorch MLP, stored as its state_dict and read back with `weights_only=True`."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent_retraining.models.candidates import onnx_graphs
from agent_retraining.models.candidates.base import Candidate, Integer, Layers, Number


def _mlp(input_dim: int, hidden: list[int]):
    import torch

    layers, width = [], input_dim
    for size in hidden:
        layers += [torch.nn.Linear(width, size), torch.nn.ReLU()]
        width = size
    return torch.nn.Sequential(*layers, torch.nn.Linear(width, 1))


@dataclass(frozen=True)
class TorchScorer:
    network: Any

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return torch.sigmoid(self.network(torch.from_numpy(np.ascontiguousarray(matrix, np.float32)))).numpy()[:, 0]


class TorchMLP(Candidate):
    name = "torch_mlp"
    framework = "torch"
    artifact_name = "model.pt"
    # Batches grow past batch_size when an epoch would take more than max_steps_per_epoch steps: per-step
    # overhead, not arithmetic, is what a small MLP costs on a CPU, and millions of rows need no more steps.
    defaults = {"hidden": [64, 32], "epochs": 8, "batch_size": 256, "max_steps_per_epoch": 500, "learning_rate": 1e-3}
    parameters = {
        "hidden": Layers(1, 4096), "epochs": Integer(1, 1000), "batch_size": Integer(1, 1_000_000),
        "max_steps_per_epoch": Integer(1, 1_000_000), "learning_rate": Number(1e-6, 1.0),
    }  # fmt: skip

    def fit(self, matrix, labels, seed: int, params: dict) -> tuple[bytes, dict]:
        import torch

        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        model = _mlp(matrix.shape[1], params["hidden"])
        optimizer = torch.optim.Adam(model.parameters(), lr=params["learning_rate"])
        loss_fn = torch.nn.BCEWithLogitsLoss()
        inputs, targets = torch.from_numpy(matrix), torch.from_numpy(labels)[:, None]
        batch_size = max(params["batch_size"], -(-len(inputs) // params["max_steps_per_epoch"]))
        for _ in range(params["epochs"]):
            for batch in torch.randperm(len(inputs), generator=generator).split(batch_size):
                optimizer.zero_grad()
                loss_fn(model(inputs[batch]), targets[batch]).backward()
                optimizer.step()
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        return buffer.getvalue(), {**params, "input_dim": matrix.shape[1], "seed": seed}

    def load(self, artifact: bytes, params: dict) -> TorchScorer:
        import torch

        model = _mlp(params["input_dim"], params["hidden"])
        model.load_state_dict(torch.load(io.BytesIO(artifact), weights_only=True))
        return TorchScorer(model.eval())

    def to_onnx(self, artifact: bytes, params: dict, feature_count: int) -> bytes:
        linear = [m for m in self.load(artifact, params).network if hasattr(m, "weight")]
        layers = [(m.weight.detach().numpy(), m.bias.detach().numpy()) for m in linear]
        return onnx_graphs.dense(layers, feature_count)
