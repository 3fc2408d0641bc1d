"""Schemathesis, with every check, over every operation of the API's OpenAPI schema: the schema
must agree with what the app answers, and no input may give a 500.

The app runs on `live_server` with a real user, a real API token and real objects (a dataset,
a trained model and its version, a prediction, a batch); the fuzzer runs as the `st` command,
as anyone would run it, against 127.0.0.1 only. Examples per operation are bounded and the
seed fixed, so a run takes a few minutes and finds the same cases every time.

Select it alone with `pytest -m api_fuzz`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.api_fuzz.seed import SeededIds

pytestmark = pytest.mark.api_fuzz

MAX_EXAMPLES = 20
SEED = 20261206
# Real ids are drawn this often; the rest are generated (mostly ids nobody has: 404).
REAL_ID_PROBABILITY = 0.75

# Rejections of schema-valid requests by rules on data the schema cannot describe: what a
# file holds, names or values that must be the caller's dataset's columns or the model's
# inputs and classes, a password Django's validators find weak. Schemathesis's guidance for
# such rules is to allow the status for the operation; these answer it in the documented error
# shape, and every other check applies.
UPLOAD = ("400", "415")  # not a table; not a supported file type
POSITIVE_DATA_ACCEPTANCE_ALSO_ALLOWS = {
    "POST /api/v1/auth/signup/": ("400",),  # Django's password validators
    "POST /api/v1/datasets/": UPLOAD,
    "PATCH /api/v1/datasets/{dataset_id}/": ("400",),  # column_types: the dataset's columns
    "POST /api/v1/models/": ("400",),  # outputs, inputs, metric: the dataset's columns
    "PATCH /api/v1/models/{machine_id}/": ("400",),  # as POST /models/
    "POST /api/v1/models/{machine_id}/batch_predictions/": UPLOAD,  # and pass_through columns
    # values fit the model's inputs; images (multipart) to a table model are 415
    "POST /api/v1/models/{machine_id}/predict/": ("400", "415"),
    "POST /api/v1/predictions/{prediction_id}/feedback/": ("400",),  # the model's classes
    "POST /api/v1/predictions/{prediction_id}/review/": ("400",),  # a label among the classes
    "POST /api/v1/sensors/": ("400",),  # a band's minimum at most its maximum
    "PATCH /api/v1/sensors/{sensor_id}/": ("400",),  # as POST /sensors/
    "GET /api/v1/sensors/{sensor_id}/readings/": ("400",),  # start before end
    # Monitoring: the sensors of a chart or rule are of one site, a condition's thresholds are
    # consistent (low ≤ high) and its series indices exist, a layout's cells do not overlap.
    "POST /api/v1/charts/": ("400",),
    "PATCH /api/v1/charts/{chart_id}/": ("400",),
    "POST /api/v1/dashboards/": ("400",),
    "PATCH /api/v1/dashboards/{dashboard_id}/": ("400",),
    "POST /api/v1/alert_rules/": ("400",),
    "PATCH /api/v1/alert_rules/{rule_id}/": ("400",),
    "GET /api/v1/models/{machine_id}/monitoring/": ("400",),  # output: one of the model's
    "POST /api/v1/model_attachments/": ("400",),  # inputs: the model's, sensors: the site's
    "POST /api/v1/reports/": ("400",),  # exactly one of chart and dashboard; recipients see it
    "PUT /api/v1/reports/{report_id}/": ("400",),  # as POST /reports/
    "PATCH /api/v1/reports/{report_id}/": ("400",),  # as POST /reports/
    "GET /api/v1/charts/{chart_id}/data/": ("400",),  # start before end
    "POST /api/v1/alerts/{alert_id}/assign/": ("400",),  # a member who sees the alert
    "POST /api/v1/alerts/{alert_id}/comments/": ("400",),  # text, not only spaces
    "POST /api/v1/alerts/{alert_id}/mute/": ("400",),  # until: a time still to come
    "POST /api/v1/alert_rules/{rule_id}/mute/": ("400",),  # as alerts' mute
    "POST /api/v1/webhooks/": ("400",),  # a public http(s) address (no SSRF)
    "PATCH /api/v1/webhooks/{webhook_id}/": ("400",),  # as POST /webhooks/
    "PUT /api/v1/notification_preferences/": ("400",),  # quiet hours: both ends or none
    # Consulting: an attachment's content must be of its name's type; a description not only
    # spaces.
    "POST /api/v1/consulting/": UPLOAD,
    # Marketplace: a sample input names the model's inputs; predict rows as the model's own.
    "POST /api/v1/marketplace/listings/": ("400",),
    "PATCH /api/v1/marketplace/listings/{listing_id}/": ("400",),
    "POST /api/v1/marketplace/listings/{listing_id}/predict/": ("400",),
    # Billing: an amount above zero; a coupon's expiry still to come; a code to redeem that
    # exists, has not expired or been used up, and the team has not redeemed yet.
    "POST /api/v1/billing/credits/": ("400",),
    "POST /api/v1/billing/coupons/": ("400",),
    "POST /api/v1/billing/coupons/redeem/": ("400",),
    "POST /api/v1/billing/payments/": ("400",),
    # Tracking and data (issue 18): graph fields and rows name the dataset's columns, with its
    # types; relations need an output column; rules use the model's inputs and cover every
    # output; an alias is a slug; compare takes 2 to 10 distinct run ids; a retraining policy's
    # schedule fields go together.
    "POST /api/v1/datasets/{dataset_id}/graphs/": ("400",),
    "POST /api/v1/datasets/{dataset_id}/rows/": UPLOAD,
    "GET /api/v1/datasets/{dataset_id}/relations/": ("400",),
    "PUT /api/v1/models/{machine_id}/experimenter/": ("400",),
    "PUT /api/v1/models/{machine_id}/aliases/{alias}/": ("400",),
    "PUT /api/v1/models/{machine_id}/retraining/": ("400",),
    "GET /api/v1/runs/compare/": ("400",),
}


def _toml(value: Any) -> str:
    """A TOML value (JSON's strings, numbers and arrays are TOML's too)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def schemathesis_config(ids: SeededIds) -> str:
    lines = [
        # A NUL character is refused in every text the API reads (400 invalid_text, see
        # mlmanager/core/parsers.py), including the names of fields no operation declares,
        # which OpenAPI 3.0 cannot constrain; generated strings leave it out, and the refusal
        # has tests of its own.
        "[generation]",
        "allow-x00 = false",
        "",
    ]
    dictionaries = {
        **ids.dictionaries(),
        **{f"spare_{name}": values for name, values in ids.spare_dictionaries().items()},
    }
    for name, values in dictionaries.items():
        lines += [f"[dictionaries.{name}]", f"values = {_toml(values)}", ""]
    lines.append("[parameters]")
    for name in ids.dictionaries():
        binding = {"dictionary": name, "probability": REAL_ID_PROBABILITY}
        lines.append(f'"path.{name}" = {_toml(binding)}')
    binding = {"dictionary": "dataset_id", "probability": REAL_ID_PROBABILITY}
    lines.append(f'"body.dataset" = {_toml(binding)}')
    # DELETE gets the spare objects' ids only: a generated id is often small, as real ids are,
    # and deleting the objects every other operation works on would leave them nothing.
    lines += ["", "[[operations]]", 'include-method = "DELETE"', "[operations.parameters]"]
    for name in ids.spare_dictionaries():
        binding = {"dictionary": f"spare_{name}", "probability": 1.0}
        lines.append(f'"path.{name}" = {_toml(binding)}')
    # Schemathesis's own list (without 5xx, which no request may cause) and the rejections
    # the schema cannot state.
    accepted = ["2xx", "3xx", "401", "403", "404", "409", "429"]
    for operation, statuses in POSITIVE_DATA_ACCEPTANCE_ALSO_ALLOWS.items():
        lines += [
            "",
            "[[operations]]",
            f"include-name = {_toml(operation)}",
            "checks.positive_data_acceptance.expected-statuses = "
            + _toml(accepted + list(statuses)),
        ]
    return "\n".join(lines) + "\n"


def test_schema_agrees_with_every_answer(
    live_server: Any, api_token: str, seeded: SeededIds, tmp_path: Path
) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(schemathesis_config(seeded))
    command = [
        str(Path(sys.executable).with_name("st")),
        "--config-file",
        str(config),
        "run",
        f"{live_server.url}/api/schema/",
        "--checks",
        "all",
        "--header",
        f"Authorization: Bearer {api_token}",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--no-color",
    ]
    started = time.monotonic()
    # About 12 minutes for 175 operations on a quiet 2-core machine: the bound is not a goal,
    # only the end of a run that hangs.
    finished = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=1800, check=False
    )
    elapsed = time.monotonic() - started
    output = finished.stdout + finished.stderr
    operations = re.search(r"Tested: (\d+)", output)
    cases = re.search(r"(\d+) generated", output)
    print(  # for the record: `pytest -m api_fuzz -s` shows it
        f"schemathesis: {operations.group(1) if operations else '?'} operations, "
        f"{cases.group(1) if cases else '?'} test cases, exit {finished.returncode}, "
        f"{elapsed:.0f} s"
    )
    assert finished.returncode == 0, output
    assert operations is not None and int(operations.group(1)) >= 35, output
