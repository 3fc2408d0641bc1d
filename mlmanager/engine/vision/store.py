"""An image model on disk: `model.json` plus `member-<i>.safetensors`, each with its `.sig`.

    model/
      model.json                 task, classes, image size, channels, normalisation, members
                                 (network parameters, seed, best epoch) and `files`: the
                                 signature of every weights file
      model.json.sig
      member-0.safetensors       the member's state dict (safetensors: tensors only, no code)
      member-0.safetensors.sig
      …

Every file is signed with `engine.artifacts.write_signed_bytes` and verified before it is
parsed; the weights' signatures are also recorded inside the signed `model.json`, so a weights
file from another model (signed with the same key) cannot be slipped in. Nothing is unpickled:
`safetensors.torch.load` reads tensors from bytes and `json.loads` reads the config.
The folder is written under a temporary name and renamed into place whole.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import shutil
import tempfile
from pathlib import Path

from mlmanager.engine.artifacts import ArtifactError, read_signed_bytes, write_signed_bytes

CONFIG_FILE = "model.json"
FORMAT = "mlmanager-vision"
FORMAT_VERSION = 1
_MEMBER_FILE = re.compile(r"^member-[0-9]{1,3}\.safetensors$")


def save_model(
    directory: Path, *, config: dict, states: dict[str, dict], key: bytes
) -> tuple[Path, dict[str, str]]:
    """Write the model's files to `directory` (replacing a previous model there); return the
    folder and {file name: signature}."""
    import safetensors.torch

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        signatures: dict[str, str] = {}
        for file_name, state in states.items():
            if not _MEMBER_FILE.match(file_name):
                raise ValueError(f"not a member file name: {file_name}")
            tensors = {name: value.detach().cpu().contiguous() for name, value in state.items()}
            signatures[file_name] = write_signed_bytes(
                safetensors.torch.save(tensors), staging / file_name, key=key
            )
        document = {"format": FORMAT, "version": FORMAT_VERSION, **config, "files": signatures}
        signatures[CONFIG_FILE] = write_signed_bytes(
            json.dumps(document, indent=1, allow_nan=False).encode("utf-8"),
            staging / CONFIG_FILE,
            key=key,
        )
        if directory.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old.", dir=directory.parent))
            directory.rename(retired / directory.name)
            shutil.rmtree(retired, ignore_errors=True)
        staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory, signatures


def load_model_files(
    directory: Path, *, key: bytes, signatures: dict[str, str] | None = None
) -> tuple[dict, dict[str, dict]]:
    """The verified config and {file name: state dict} of the model in `directory`.

    `signatures` are the ones recorded when the model was trained (the version's record);
    when given, every file must match them too. Raises ArtifactError on any mismatch.
    """
    import safetensors.torch

    directory = Path(directory)
    config_bytes = read_signed_bytes(
        directory / CONFIG_FILE,
        key=key,
        expected_signature=_expected(signatures, CONFIG_FILE),
    )
    try:
        config = json.loads(config_bytes)
        files = config["files"]
        members = config["members"]
        valid = (
            config.get("format") == FORMAT
            and config.get("version") == FORMAT_VERSION
            and isinstance(files, dict)
            and isinstance(members, list)
            and members
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError("The saved model's description cannot be read.") from exc
    if not valid:
        raise ArtifactError("The saved model's description is not one this version reads.")
    states: dict[str, dict] = {}
    for member in members:
        file_name = member.get("file") if isinstance(member, dict) else None
        if not isinstance(file_name, str) or not _MEMBER_FILE.match(file_name):
            raise ArtifactError()
        recorded = files.get(file_name)
        expected = _expected(signatures, file_name)
        if not isinstance(recorded, str) or (
            expected is not None and not hmac.compare_digest(recorded, expected)
        ):
            raise ArtifactError()
        data = read_signed_bytes(directory / file_name, key=key, expected_signature=recorded)
        try:
            states[file_name] = safetensors.torch.load(data)
        except Exception as exc:  # safetensors raises its own error types
            raise ArtifactError("The saved model's weights cannot be read.") from exc
    return config, states


def file_sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def _expected(signatures: dict[str, str] | None, file_name: str) -> str | None:
    if signatures is None:
        return None
    expected = signatures.get(file_name)
    if not isinstance(expected, str):
        # A record that does not name the file cannot vouch for it.
        raise ArtifactError()
    return expected
