"""A model served from its ONNX export with onnxruntime alone: what an agent needs, without scikit-learn, LightGBM
or PyTorch, and what evaluation checks the export against before it may be deployed."""

from __future__ import annotations

import numpy as np

from agent_retraining.models.candidates.onnx_graphs import INPUT, OUTPUT

# How far an ONNX export's P(reward = 1) may be from the native model's on any row: float32 arithmetic (the dense
# models) and the final float32 cast differ from float64 by far less; a wrong graph by far more.
TOLERANCE = 1e-5


class PortableModel:
    """P(reward = 1) for rows of the feature matrix from an ONNX graph of the serving contract's signature."""

    def __init__(self, onnx_bytes: bytes):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1  # the agent's scores, the same every time
        options.log_severity_level = 3
        try:
            self.session = onnxruntime.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime's own exception types: a file it cannot run is bad input
            raise ValueError(f"not an ONNX model onnxruntime can run: {error}") from None
        inputs, outputs = [i.name for i in self.session.get_inputs()], [o.name for o in self.session.get_outputs()]
        if inputs != [INPUT] or outputs != [OUTPUT]:
            raise ValueError(f"the ONNX model takes {inputs} and gives {outputs}, not ['{INPUT}'] and ['{OUTPUT}']")
        self.feature_count = self.session.get_inputs()[0].shape[1]

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        if matrix.shape[1] != self.feature_count:
            raise ValueError(f"the ONNX model takes {self.feature_count} feature columns, got {matrix.shape[1]}")
        rows = np.ascontiguousarray(matrix, dtype=np.float32)
        return self.session.run([OUTPUT], {INPUT: rows})[0].astype(np.float64)
