"""Copies of a model in another team (the marketplace's paid copies and their updates).

A copy is a new Machine of the buyer's team with one version whose artifacts are the source
version's files, copied byte for byte through the storage API into the copy's own folder. The
signatures stay valid (an artifact's HMAC covers its bytes, not its name) and are checked on
the copied files before the version is recorded, and again by the loader on every load, as for
any version: a copy is as much a platform-written signed file as a trained one. Nothing of the
source's team comes along: no dataset, no runs, no training record (`reproducibility` names
only where the copy came from).
"""

from __future__ import annotations

import logging
import shutil
import uuid
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from mlmanager.core import storage
from mlmanager.core.errors import Conflict
from mlmanager.engine.artifacts import SIGNATURE_SUFFIX, ArtifactError, read_signed_bytes
from mlmanager.machines import files
from mlmanager.machines.models import Machine, ModelVersion, machine_storage_dir

logger = logging.getLogger(__name__)

# The configuration file of an image model's artifact folder (engine.vision), signed like its
# weights though a version's `signatures` may not name it.
_IMAGE_MODEL_CONFIG = "model.json"


def _relative(name: str, folder: str) -> str:
    prefix = folder.rstrip("/") + "/"
    if not name.startswith(prefix):  # pragma: no cover - versions record names in their folder
        raise ValueError(f"{name!r} is not inside the version's folder {folder!r}")
    return name[len(prefix) :]


def _signed_files(version: ModelVersion) -> list[tuple[str, str | None]]:
    """The version's artifact files (storage names), each with the signature it recorded
    (None where only the `.sig` beside the file vouches for it)."""
    found: list[tuple[str, str | None]] = []
    for record in version.outputs:
        if "artifact" in record:
            found.append((record["artifact"], record.get("artifact_signature")))
        if "artifact_dir" in record:
            signatures: dict[str, str] = dict(record.get("signatures") or {})
            for file_name in sorted({_IMAGE_MODEL_CONFIG, *signatures}):
                found.append((f"{record['artifact_dir']}/{file_name}", signatures.get(file_name)))
    return found


def _copy_file(source: str, destination: str) -> None:
    with (
        storage.open_for_reading(source) as reader,
        storage.writing(destination) as path,
        open(path, "wb") as writer,
    ):
        shutil.copyfileobj(reader, writer, 1 << 20)


def _copy_artifacts(version: ModelVersion, folder: str) -> None:
    """Copy the version's signed files (and their `.sig`) under `folder`, then check every
    copy against its signature; a missing or modified file is a 409 and nothing is left."""
    try:
        for name, expected in _signed_files(version):
            target = f"{folder}/{_relative(name, version.storage_dir)}"
            _copy_file(name + SIGNATURE_SUFFIX, target + SIGNATURE_SUFFIX)
            _copy_file(name, target)
            local = storage.materialise(target, companions=(SIGNATURE_SUFFIX,))
            read_signed_bytes(local, key=files.artifact_key(), expected_signature=expected)
    except (ArtifactError, FileNotFoundError) as error:
        storage.delete_folder(folder)
        logger.warning("copy of version %s refused: %s", version.pk, error)
        raise Conflict(ArtifactError().message, code="artifact_invalid") from None
    except BaseException:
        storage.delete_folder(folder)
        raise


def _rename(value: Any, old: str, new: str) -> Any:
    """`value` (a version's outputs) with storage names under `old` moved under `new`."""
    if isinstance(value, dict):
        return {key: _rename(item, old, new) for key, item in value.items()}
    if isinstance(value, list):
        return [_rename(item, old, new) for item in value]
    if isinstance(value, str) and (value == old or value.startswith(old.rstrip("/") + "/")):
        return new + value[len(old.rstrip("/")) :]
    return value


def _version_of_copy(
    *, source: ModelVersion, copy: Machine, created_by_id: int | None, origin: dict[str, Any]
) -> ModelVersion:
    """Copy `source`'s files into `copy`'s folder and record them as the copy's next version,
    made active. The files are written before the rows: a caller whose transaction rolls back
    after this (a refused charge) removes the version's `storage_dir` (`copy_files_remove`)."""
    folder = f"{copy.storage_dir}/copy-{uuid.uuid4().hex}"
    _copy_artifacts(source, folder)
    try:
        number = (
            ModelVersion.objects.filter(machine=copy).aggregate(Max("number"))["number__max"] or 0
        ) + 1
        version = ModelVersion(
            team_id=copy.team_id,
            machine=copy,
            created_by_id=created_by_id,
            number=number,
            outcome=ModelVersion.Outcome.SUCCEEDED,
            storage_dir=folder,
            inputs=source.inputs,
            outputs=_rename(source.outputs, source.storage_dir, folder),
            reproducibility=origin,
            threshold=source.threshold,
        )
        version.full_clean()
        version.save()
        Machine.objects.filter(pk=copy.pk).update(active_version=version)
        copy.active_version = version
    except BaseException:
        storage.delete_folder(folder)
        raise
    return version


@transaction.atomic
def machine_copy(
    *,
    source: Machine,
    team_id: int,
    created_by_id: int | None,
    origin: dict[str, Any],
) -> Machine:
    """A new model of team `team_id` holding a copy of `source`'s active version (its name,
    description, inputs and outputs; no dataset: the copy predicts, it is not trained again).
    `origin` is kept as the copied version's `reproducibility` (where it came from)."""
    version = source.active_version
    if version is None:
        raise Conflict(_("This model has no trained version to copy."), code="not_trained")
    copy = Machine(
        team_id=team_id,
        created_by_id=created_by_id,
        name=source.name[:200],
        description=source.description,
        dataset=None,
        inputs=source.inputs,
        outputs=source.outputs,
        level=source.level,
        time_budget_s=source.time_budget_s,
        storage_dir=machine_storage_dir(team_id),
    )
    copy.full_clean()
    copy.save()
    _version_of_copy(source=version, copy=copy, created_by_id=created_by_id, origin=origin)
    logger.info("model %s copied into team %s as model %s", source.pk, team_id, copy.pk)
    return copy


@transaction.atomic
def machine_copy_update(
    *, source: Machine, copy: Machine, created_by_id: int | None, origin: dict[str, Any]
) -> ModelVersion:
    """A new active version of `copy` holding `source`'s active version (the owner's push)."""
    version = source.active_version
    if version is None:
        raise Conflict(_("This model has no trained version to copy."), code="not_trained")
    copied = _version_of_copy(source=version, copy=copy, created_by_id=created_by_id, origin=origin)
    logger.info("model %s updated from model %s v%s", copy.pk, source.pk, version.number)
    return copied


def copy_files_remove(*, storage_dir: str) -> None:
    """Remove a copy's folder whose rows were rolled back (see `_version_of_copy`)."""
    storage.delete_folder(storage_dir)
