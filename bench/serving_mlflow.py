"""The MLflow side of bench/serving.py: MLManager's artifact as an MLflow pyfunc model.

Runs in MLflow's venv (bench/.venv-serving, which also has the project installed). Two uses:

- as a script, `save`: writes an MLflow model folder ("models from code": this file is the
  model's code) holding a copy of the signed artifact and its `.sig`, the artifact's recorded
  signature in the model config, and a signature (input and output schema) inferred from an
  example of the input rows and the model's answer to them;
- as the model's code, loaded by `mlflow models serve` in each scoring worker: `load_context`
  verifies and loads the artifact with the engine's own `load_model` (the key comes from the
  environment, never from the model folder), `predict` answers the label and one
  `probability_<class>` column per class.

    bench/.venv-serving/bin/python bench/serving_mlflow.py save --artifact …/model.joblib \\
        --signature HEX --example rows.parquet --out MODEL_DIR     # key in MLMANAGER_BENCH_KEY

Exit codes: 0 saved, 1 it failed, 2 bad arguments or no key.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
# bench/datasets.py must not shadow the `datasets` package that MLflow may import lazily.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != BENCH]

import mlflow  # noqa: E402 - after the sys.path fix above
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

# The hex artifact key, passed by bench/serving.py to this script and to the scoring server.
KEY_VARIABLE = "MLMANAGER_BENCH_KEY"
ARTIFACT_FOLDER = "mlmanager-artifact"


def _key() -> bytes:
    return bytes.fromhex(os.environ[KEY_VARIABLE])


def _answer(model: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """The label and the class probabilities, one row per input row."""
    probabilities = model.predict_proba(frame)
    classes = list(model.classes)
    answer = pd.DataFrame(
        probabilities, columns=[f"probability_{label}" for label in classes], index=frame.index
    )
    answer.insert(0, model.output, np.asarray(classes, dtype=object)[probabilities.argmax(axis=1)])
    return answer


class ArtifactModel(mlflow.pyfunc.PythonModel):
    """MLManager's TrainedModel behind MLflow's pyfunc interface."""

    def load_context(self, context: Any) -> None:
        from mlmanager.engine.training import load_model

        config = context.model_config
        folder = Path(context.artifacts[ARTIFACT_FOLDER])
        self.model = load_model(
            folder / config["artifact_name"], key=_key(), signature=config["artifact_signature"]
        )

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return _answer(self.model, model_input)


def save(arguments: argparse.Namespace) -> None:
    from mlmanager.engine.training import load_model

    artifact: Path = arguments.artifact
    model = load_model(artifact, key=_key(), signature=arguments.signature)
    example = pd.read_parquet(arguments.example)
    signature = mlflow.models.infer_signature(example, _answer(model, example))
    with tempfile.TemporaryDirectory(prefix="mlflow-artifact-") as staging:
        # The artifact and its .sig side by side, as load_model expects them.
        folder = Path(staging) / ARTIFACT_FOLDER
        folder.mkdir()
        shutil.copy2(artifact, folder / artifact.name)
        shutil.copy2(artifact.with_name(artifact.name + ".sig"), folder / (artifact.name + ".sig"))
        mlflow.pyfunc.save_model(
            path=str(arguments.out),
            python_model=str(Path(__file__).resolve()),
            artifacts={ARTIFACT_FOLDER: str(folder)},
            model_config={
                "artifact_name": artifact.name,
                "artifact_signature": arguments.signature,
            },
            signature=signature,
            # Served with --env-manager local: nothing is installed from this list, and giving
            # it skips MLflow's requirement inference (which loads the model once more).
            pip_requirements=[f"mlflow=={mlflow.__version__}"],
        )
    print(f"saved {model.estimator_name} ({model.output}: {model.classes}) to {arguments.out}")


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    saving = commands.add_parser("save", help="write the MLflow model folder")
    saving.add_argument("--artifact", type=Path, required=True, help="the signed model.joblib")
    saving.add_argument("--signature", required=True, help="the artifact's recorded signature")
    saving.add_argument("--example", type=Path, required=True, help="Parquet of input rows")
    saving.add_argument("--out", type=Path, required=True, help="model folder (must not exist)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if not os.environ.get(KEY_VARIABLE):
        print(f"{KEY_VARIABLE} (the hex artifact key) is not set", file=sys.stderr)
        return 2
    try:
        save(arguments)
    except Exception:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
else:
    # Loaded as the model's code (MLflow "models from code"): this is the model it serves.
    mlflow.models.set_model(ArtifactModel())
