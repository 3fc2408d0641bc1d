"""A model version as an MLflow model directory (pyfunc flavour), zipped.

MLflow is not installed beside the project (it pins older libraries; it lives in
bench/.venv-serving), so the directory is written by hand, in the layout
`mlflow.pyfunc.save_model` gives a "model from code" (MLflow 3.x):

    MLmodel                     the flavour, signature, input example and model config (YAML)
    python_model.py             the model's code: loads the artifacts, answers with the engine
    artifacts/mlmanager/        one `output-<n>.joblib` per output and `manifest.json`
    input_example.json          a few input rows (pandas "split" orient)
    serving_input_example.json  the same rows as `mlflow models serve` takes them
    requirements.txt, python_env.yaml, conda.yaml

The artifacts stay verified but not signed: the signing key never leaves the server, so the
export carries each pickle's sha256 (in `manifest.json`, whose own sha256 is in MLmodel's model
config) and `python_model.py` refuses to unpickle any file whose bytes do not match. A checksum
proves the files are the ones exported together, not who exported them: whoever may change the
directory may change the checksums, exactly as with any MLflow model (MLflow itself unpickles
what the directory holds). Each output also keeps its server signature (`signature` in the
manifest); a loader given the key in MLMANAGER_ARTIFACT_KEY (hex) checks it as well.

The pickles are MLManager's own TrainedModel objects, so the environment that loads the
model needs the `mlmanager` package (as bench/.venv-serving has it, installed -e).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from importlib import metadata
from typing import Any

import joblib
import pandas as pd
import yaml
from django.utils import timezone
from django.utils.translation import gettext as _

from mlmanager.core.errors import Conflict
from mlmanager.datasets import files as dataset_files
from mlmanager.datasets.models import Dataset
from mlmanager.engine.artifacts import ArtifactError, read_signed_bytes
from mlmanager.engine.prediction import Predictor, output_columns
from mlmanager.machines import files
from mlmanager.machines.models import ModelVersion

ARTIFACT_NAME = "mlmanager"  # the key of context.artifacts, and the folder under artifacts/
MANIFEST = "manifest.json"
EXAMPLE_ROWS = 3
# The MLflow release the directory's layout follows (bench/constraints-serving.txt).
MLFLOW_VERSION = "3.17.2"
# The libraries the pickles need at the versions they were written with.
REQUIRED_PACKAGES = (
    "numpy",
    "pandas",
    "pyarrow",
    "scikit-learn",
    "scipy",
    "lightgbm",
    "xgboost",
    "catboost",
    "flaml",
    "joblib",
)

# MLflow column types (mlflow.types.DataType) of MLManager's input types. Categories and
# texts are strings; numbers doubles (whole numbers too: the engine reads them as floats).
_COLUMN_TYPES = {
    "numeric": "double",
    "integer": "double",
    "boolean": "boolean",
}

# MLflow column types of the Arrow types of prediction columns (labels of any other type are
# strings).
_ARROW_TYPES = {
    "double": "double",
    "float": "float",
    "int64": "long",
    "int32": "integer",
    "bool": "boolean",
    "string": "string",
}

# The model's code, run by MLflow ("models from code") in the environment that serves it.
PYTHON_MODEL = '''"""MLManager model {machine}, version {number}, as an MLflow pyfunc model.

Loads the version's artifacts only after their sha256 matches the manifest (whose own sha256
is in MLmodel's model config); with MLMANAGER_ARTIFACT_KEY (hex) set, also checks each
artifact's server signature. Answers like MLManager's batch predictions: per output
`predicted_<output>`, then for classification `probability_<output>_<class>` per class.
"""

import hashlib
import hmac
import io
import json
import os
from pathlib import Path

import joblib
import mlflow
import pandas as pd

ARTIFACT_NAME = "{artifact_name}"


class ChecksumError(Exception):
    """An exported file is not the one MLManager exported; nothing was unpickled."""


def _verified(path, sha256, signature=None):
    data = Path(path).read_bytes()
    if not hmac.compare_digest(hashlib.sha256(data).hexdigest(), sha256):
        raise ChecksumError(f"{{path}} does not match its recorded sha256; not loaded")
    key = os.environ.get("MLMANAGER_ARTIFACT_KEY", "").strip()
    if key and signature is not None:
        actual = hmac.new(bytes.fromhex(key), data, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(actual, signature):
            raise ChecksumError(f"{{path}} does not match its MLManager signature; not loaded")
    return data


class MLManagerModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        from mlmanager.engine.prediction import Predictor

        folder = Path(context.artifacts[ARTIFACT_NAME])
        config = context.model_config or {{}}
        manifest = json.loads(_verified(folder / "{manifest}", config["manifest_sha256"]))
        models = [
            joblib.load(
                io.BytesIO(
                    _verified(folder / output["file"], output["sha256"], output.get("signature"))
                )
            )
            for output in manifest["outputs"]
        ]
        self.predictor = Predictor.of(
            models, inputs=manifest["inputs"], threshold=manifest["threshold"]
        )

    def predict(self, context, model_input, params=None):
        from mlmanager.engine.prediction import predict_table

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        present = [name for name in self.predictor.inputs if name in frame.columns]
        inputs = frame[present].reset_index(drop=True)
        answered = predict_table(self.predictor, inputs)
        return answered.drop(columns=present)


mlflow.models.set_model(MLManagerModel())
'''


def export_problem(*, version: ModelVersion) -> str | None:
    """Why this version cannot be exported as an MLflow model (None when it can)."""
    if version.is_image_model:
        return _("Image models cannot be exported as MLflow models yet.")
    if not version.outputs or any(not output.get("artifact") for output in version.outputs):
        return _("This version has no saved model file to export.")
    return None


def mlflow_model_zip(*, version: ModelVersion) -> bytes:
    """The version as a zip of an MLflow model directory (see the module's docstring).

    Every artifact is verified against its server signature before it is exported; a 409
    `export_unsupported` says why a version cannot be (an image model), a 409
    `artifact_invalid` that its files are missing or were modified."""
    problem = export_problem(version=version)
    if problem is not None:
        raise Conflict(problem, code="export_unsupported")
    return zip_directory(mlflow_model_files(version=version))


def mlflow_model_files(*, version: ModelVersion) -> dict[str, bytes]:
    """The files of the MLflow model directory, by path inside it."""
    machine = version.machine
    directory: dict[str, bytes] = {}
    manifest_outputs = []
    models = []
    for index, output in enumerate(version.outputs, start=1):
        data = _artifact_bytes(output)
        # Verified against the server signature just above: the platform's own pickle.
        models.append(joblib.load(io.BytesIO(data)))
        name = f"output-{index}.joblib"
        directory[f"artifacts/{ARTIFACT_NAME}/{name}"] = data
        manifest_outputs.append(
            {
                "name": output["name"],
                "task": output.get("task"),
                "file": name,
                "sha256": hashlib.sha256(data).hexdigest(),
                "signature": output.get("artifact_signature"),
            }
        )
    names = input_names(version)
    manifest = {
        "model": {"id": machine.pk, "name": machine.name, "version": version.number},
        "inputs": names,
        "threshold": version.threshold,
        "outputs": manifest_outputs,
    }
    manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode()
    directory[f"artifacts/{ARTIFACT_NAME}/{MANIFEST}"] = manifest_bytes
    example = input_example(version)
    directory["input_example.json"] = json.dumps(
        json.loads(example.to_json(orient="split", index=False))
    ).encode()
    directory["serving_input_example.json"] = json.dumps(
        {"dataframe_split": json.loads(example.to_json(orient="split", index=False))}, indent=2
    ).encode()
    directory["python_model.py"] = PYTHON_MODEL.format(
        machine=json.dumps(machine.name)[1:-1],
        number=version.number,
        artifact_name=ARTIFACT_NAME,
        manifest=MANIFEST,
    ).encode()
    requirements = python_requirements()
    directory["requirements.txt"] = ("\n".join(requirements) + "\n").encode()
    directory["python_env.yaml"] = _yaml(
        {
            "python": _python_version(),
            "build_dependencies": ["pip"],
            "dependencies": ["-r requirements.txt"],
        }
    )
    directory["conda.yaml"] = _yaml(
        {
            "name": "mlflow-env",
            "channels": ["conda-forge"],
            "dependencies": [f"python={_python_version()}", "pip", {"pip": requirements}],
        }
    )
    predictor = Predictor.of(models, inputs=names, threshold=version.threshold)
    directory["MLmodel"] = _yaml(
        mlmodel(
            version,
            outputs=signature_outputs(predictor),
            manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(),
        )
    )
    return directory


def mlmodel(
    version: ModelVersion, *, outputs: list[dict[str, Any]], manifest_sha256: str
) -> dict[str, Any]:
    """The MLmodel file's content: a pyfunc "model from code" with its signature."""
    return {
        "artifact_path": "model",
        "flavors": {
            "python_function": {
                "artifacts": {
                    ARTIFACT_NAME: {
                        "path": f"artifacts/{ARTIFACT_NAME}",
                        "uri": f"artifacts/{ARTIFACT_NAME}",
                    }
                },
                "code": None,
                "config": {"manifest_sha256": manifest_sha256},
                "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                "loader_module": "mlflow.pyfunc.loaders.code_model",
                "model_code_path": "python_model.py",
                "python_version": _python_version(),
                "streamable": False,
            }
        },
        "is_signature_from_type_hint": False,
        "mlflow_version": MLFLOW_VERSION,
        "model_id": None,
        "model_uuid": hashlib.sha256(
            f"{version.machine_id}:{version.number}:{version.storage_dir}".encode()
        ).hexdigest()[:32],
        "saved_input_example_info": {
            "artifact_path": "input_example.json",
            "type": "dataframe",
            "pandas_orient": "split",
            "serving_input_path": "serving_input_example.json",
        },
        "signature": {
            "inputs": json.dumps(signature_inputs(version)),
            "outputs": json.dumps(outputs),
            "params": None,
        },
        "type_hint_from_example": False,
        "utc_time_created": timezone.now().strftime("%Y-%m-%d %H:%M:%S.%f"),
        "metadata": {
            "mlmanager.model_id": str(version.machine_id),
            "mlmanager.version": str(version.number),
        },
    }


def input_names(version: ModelVersion) -> list[str]:
    return [str(item["name"]) for item in version.inputs]


def signature_inputs(version: ModelVersion) -> list[dict[str, Any]]:
    """MLflow ColSpecs of the inputs; none required (a missing input is a missing value to
    the model, as in MLManager's own predictions)."""
    return [
        {"type": _COLUMN_TYPES.get(item.get("type", ""), "string"), "name": item["name"]}
        | {"required": False}
        for item in version.inputs
    ]


def signature_outputs(predictor: Predictor) -> list[dict[str, Any]]:
    """The columns the model answers with (engine.prediction.output_columns), as ColSpecs."""
    return [
        {
            "type": _ARROW_TYPES.get(str(column.type), "string"),
            "name": column.name,
            "required": True,
        }
        for column in output_columns(predictor)
    ]


def input_example(version: ModelVersion) -> pd.DataFrame:
    """A few rows of the version's inputs: the first rows of its dataset when it is still
    there, else one row made of what training saw (a category, the middle of a range)."""
    names = input_names(version)
    run = version.run
    dataset_id = (run.spec.get("dataset_id") if run is not None else None) or (
        version.machine.dataset_id
    )
    dataset = (
        Dataset.objects.filter(pk=dataset_id, team_id=version.team_id).first()
        if dataset_id is not None
        else None
    )
    if dataset is not None and dataset.status == Dataset.Status.READY:
        try:
            import pyarrow.parquet as pq

            path = dataset_files.materialise(dataset.parquet_path)
            schema_names = set(pq.read_schema(path).names)
            columns = [name for name in names if name in schema_names]
            if columns == names:
                table = pq.ParquetFile(path).iter_batches(batch_size=EXAMPLE_ROWS, columns=names)
                frame = next(table).to_pandas()
                return frame.head(EXAMPLE_ROWS).reset_index(drop=True)
        except (FileNotFoundError, OSError, StopIteration):
            pass
    row: dict[str, Any] = {}
    for item in version.inputs:
        if item.get("categories"):
            row[item["name"]] = sorted(item["categories"])[0]
        elif item.get("min") is not None and item.get("max") is not None:
            row[item["name"]] = (float(item["min"]) + float(item["max"])) / 2
        elif item.get("type") in _COLUMN_TYPES and item.get("type") != "boolean":
            row[item["name"]] = 0.0
        elif item.get("type") == "boolean":
            row[item["name"]] = False
        else:
            row[item["name"]] = ""
    return pd.DataFrame([row], columns=names)


def _artifact_bytes(output: dict[str, Any]) -> bytes:
    """The artifact's bytes once they match the server signature the version recorded."""
    try:
        path = files.materialise_artifact(output["artifact"])
        return read_signed_bytes(
            path, key=files.artifact_key(), expected_signature=output["artifact_signature"]
        )
    except ArtifactError as error:
        raise Conflict(error.message, code=error.code) from None


def python_requirements() -> list[str]:
    """Pins of what loading the pickles needs, as installed here (MLflow's own included)."""
    pins = [f"mlflow=={MLFLOW_VERSION}"]
    try:
        pins.append(f"mlmanager=={metadata.version('mlmanager')}")
    except metadata.PackageNotFoundError:
        pins.append("mlmanager")
    for package in REQUIRED_PACKAGES:
        try:
            pins.append(f"{package}=={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    return pins


def _python_version() -> str:
    import platform

    return platform.python_version()


def _yaml(content: dict[str, Any]) -> bytes:
    return yaml.safe_dump(content, sort_keys=False, default_flow_style=False).encode()


def zip_directory(directory: dict[str, bytes], *, prefix: str = "") -> bytes:
    """The files in a zip (deflated), under `prefix` when given; fixed timestamps, so the
    same version always zips to the same bytes but for MLmodel's creation time."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory):
            info = zipfile.ZipInfo(f"{prefix}{path}", date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, directory[path])
    return buffer.getvalue()
