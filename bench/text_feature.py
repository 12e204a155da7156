"""The cost of a `text` context feature at W1 (a million messages a day), against a floor on the same bytes.

On the llm-router world's messages (templates in three languages, typos, padding of varying length; the
simulator's, generated once per run):

  featurize   the text's part of the context block (feature_hashing: normalize, trigrams, counts per bucket,
              unit length, sketch) for every message of the day, as training, evaluation and the client compute it
  floor       a bare pass of the same hashing over the same strings: murmur3's finalizer on every three-byte
              window of the raw UTF-8 (no cut, no lowering, no counting), one numpy pass
  train       encode + fit of each candidate on `--train-rows` rows of the day (the spec's max_train_rows caps a
              night's training sample the same way), for the router's tabular features with and without the
              message (no embedding: the text alone is priced)

Every figure is the median of `--repeats` runs (3 by default), each run's seconds kept in the JSON. Prints one
table with the ratios (featurize / floor, train with / without) and writes .local/bench/text-feature.json;
nothing is asserted.

    python bench/text_feature.py [--events 1000000] [--train-rows 200000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAY = date(2026, 1, 7)
CANDIDATES = ("logistic_regression", "lightgbm")


def _specs():
    from agent_retraining.spec import AgentSpec, load_agent

    router = load_agent("llm-router").model_dump()
    router["context"].pop("message_embedding")
    router["validation"]["tiers"] = {}
    with_text = AgentSpec.model_validate(router)
    router["context"].pop("message")
    return with_text, AgentSpec.model_validate(router)


def _day(spec, events: int):
    """A day of the router's logs as the log reader flattens them (ctx_ columns), written by the simulator."""
    import pyarrow as pa

    from agent_retraining.dev.simulate import World, day_table

    table = day_table(World.for_spec(spec, 0), DAY, events, 0)
    context = table.column("context").combine_chunks()
    columns = {name: table.column(name) for name in ("action", "reward", "propensity")}
    return pa.table(columns | {f"ctx_{name}": context.field(name) for name in spec.context})


def _timed(step) -> tuple[float, object]:
    started = time.perf_counter()
    result = step()
    return time.perf_counter() - started, result


def featurize(spec, day) -> float:
    from agent_retraining.models.encoding import context_block, encoding_of

    encoding = encoding_of(spec)
    only_text = {**encoding, "context": [f for f in encoding["context"] if f["type"] == "text"]}
    return _timed(lambda: context_block(only_text, day.select(["ctx_message"])))[0]


def hashing_floor(day) -> float:
    import numpy as np
    import pyarrow as pa

    from agent_retraining.feature_hashing import fmix32

    texts = day.column("ctx_message").combine_chunks().cast(pa.binary())

    def bare_pass():
        data = np.frombuffer(texts.buffers()[2], np.uint8).astype(np.uint64)
        return fmix32((data[:-2] << np.uint64(16)) | (data[1:-1] << np.uint64(8)) | data[2:])

    return _timed(bare_pass)[0]


def train(spec, rows, name: str) -> float:
    from agent_retraining.models.features import encode
    from agent_retraining.models.training import fit, hyperparameters

    def encode_and_fit():
        matrix, labels = encode(spec, rows)
        fit(name, matrix, labels, spec.training.seed, hyperparameters(spec, name))
        return matrix.shape[1]

    return _timed(encode_and_fit)[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--train-rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / ".local" / "bench" / "text-feature.json")
    args = parser.parse_args(argv)
    sys.path[:0] = [str(REPO / "include")]
    from agent_retraining.models.features import feature_columns

    with_text, without_text = _specs()
    generated, day = _timed(lambda: _day(with_text, args.events))
    print(f"{args.events:,} messages simulated in {generated:.0f} s "
          f"({day.column('ctx_message').combine_chunks().nbytes / 2**20:.0f} MiB of text)", flush=True)  # fmt: skip
    sample = day.slice(0, args.train_rows)
    runs: dict[str, list[float]] = {"featurize": [], "floor": []}
    for repeat in range(args.repeats):
        runs["featurize"].append(featurize(with_text, day))
        runs["floor"].append(hashing_floor(day))
        for name in CANDIDATES:
            for label, spec in (("with", with_text), ("without", without_text)):
                runs.setdefault(f"train {name} {label} text", []).append(train(spec, sample, name))
        print(f"run {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in runs.items()), flush=True)
    median = {key: statistics.median(values) for key, values in runs.items()}
    ratios = {"featurize / floor": median["featurize"] / median["floor"]} | {
        f"train {name} with / without text": median[f"train {name} with text"] / median[f"train {name} without text"]
        for name in CANDIDATES
    }
    columns = {"with": len(feature_columns(with_text)), "without": len(feature_columns(without_text))}
    print(f"\ntext feature at {args.events:,} messages a day; training on {args.train_rows:,} rows "
          f"({columns['with']} columns with the message, {columns['without']} without); "
          f"median of {args.repeats}")  # fmt: skip
    for key, value in median.items():
        print(f"  {key:<42} {value:8.2f} s")
    for key, value in ratios.items():
        print(f"  {key:<42} {value:8.2f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {"events": args.events, "train_rows": args.train_rows, "repeats": args.repeats, "columns": columns,
              "runs": runs, "median_seconds": median, "ratios": ratios}  # fmt: skip
    args.out.write_text(json.dumps(record, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
