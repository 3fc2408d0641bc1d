"""Aliases of versions: set, move, delete, history and audit; `?alias=` on predict and batch;
bad input 400s, other teams' 404s, and concurrent moves on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections
from django.test import Client

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.models import Membership
from mlmanager.audit.models import AuditEvent
from mlmanager.core.errors import ApplicationError, NotFound
from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.machines.models import Machine, ModelAlias, ModelAliasEvent, ModelVersion
from mlmanager.machines.services import aliases
from mlmanager.machines.tests.conftest import make_version
from mlmanager.predictions.tests.conftest import (  # noqa: F401 - fixtures
    binary_model,
    install_version,
    make_model,
    trained_binary,
)

ROW = {"plan": "pro", "monthly_fee": 40.0, "tenure_months": 5, "member": True}


def aliases_url(machine: Machine, alias: str = "") -> str:
    return f"/api/v1/models/{machine.pk}/aliases/" + (f"{alias}/" if alias else "")


def _versions(machine: Machine, count: int) -> list[ModelVersion]:
    return [make_version(machine, number=n, activate=n == 1) for n in range(1, count + 1)]


@pytest.fixture
def machine(owner: Any, make_dataset: Callable[..., Any]) -> Machine:
    dataset = make_dataset(owner)
    return Machine.objects.create(
        team=owner.current_team,
        created_by=owner,
        name="Churn",
        dataset=dataset,
        inputs=["plan", "monthly_fee", "tenure_months"],
        outputs=[{"name": "churned", "task": "binary", "metric": "roc_auc"}],
        time_budget_s=60,
        storage_dir=f"models/team-{owner.current_team_id}/aliases",
    )


@pytest.mark.django_db
def test_set_move_delete_with_history_and_audit(api: Any, owner: Any, machine: Machine) -> None:
    _versions(machine, 3)
    created = api.put(aliases_url(machine, "champion"), {"version": 1}, format="json")
    assert created.status_code == 200, created.content
    assert created.json()["name"] == "champion"
    assert created.json()["version"] == 1
    assert created.json()["updated_by"] == owner.email
    moved = api.put(
        aliases_url(machine, "champion"), {"version": 2, "reason": "better AUC"}, format="json"
    )
    assert moved.json()["version"] == 2
    # The same version again changes nothing and records nothing.
    assert (
        api.put(aliases_url(machine, "champion"), {"version": 2}, format="json").status_code == 200
    )
    api.put(aliases_url(machine, "staging_3"), {"version": 3}, format="json")

    listed = api.get(aliases_url(machine)).json()
    assert [(item["name"], item["version"]) for item in listed["aliases"]] == [
        ("champion", 2),
        ("staging_3", 3),
    ]
    assert [
        (item["alias"], item["previous_version"], item["version"], item["reason"])
        for item in listed["history"]
    ] == [
        ("staging_3", None, 3, ""),
        ("champion", 1, 2, "better AUC"),
        ("champion", None, 1, ""),
    ]
    versions = api.get(f"/api/v1/models/{machine.pk}/versions/").json()["results"]
    assert {item["number"]: item["aliases"] for item in versions} == {
        3: ["staging_3"],
        2: ["champion"],
        1: [],
    }
    assert api.get(f"/api/v1/models/{machine.pk}/versions/2/").json()["aliases"] == ["champion"]

    assert api.delete(aliases_url(machine, "champion")).status_code == 204
    assert list(ModelAlias.objects.values_list("name", flat=True)) == ["staging_3"]
    newest = ModelAliasEvent.objects.first()
    assert newest is not None
    assert (newest.alias, newest.previous_version_number, newest.version_number) == (
        "champion",
        2,
        None,
    )
    missing = api.delete(aliases_url(machine, "champion"))
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "alias_not_found"

    audit = list(
        AuditEvent.objects.filter(team=machine.team, action__startswith="model.alias")
        .order_by("pk")
        .values_list("action", "changes")
    )
    assert audit == [
        ("model.alias_set", {"champion": {"before": None, "after": 1}}),
        ("model.alias_set", {"champion": {"before": 1, "after": 2}}),
        ("model.alias_set", {"staging_3": {"before": None, "after": 3}}),
        ("model.alias_deleted", {"champion": {"before": 2, "after": None}}),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("alias", "body", "status", "code"),
    [
        ("Champion", {"version": 1}, 400, "invalid_alias"),
        ("a" * 41, {"version": 1}, 400, "invalid_alias"),
        ("with.dot", {"version": 1}, 400, "invalid_alias"),
        ("champion", {"version": 9}, 404, "not_found"),
        ("champion", {"version": "one"}, 400, "invalid"),
        ("champion", {}, 400, "invalid"),
        ("champion", {"version": 1, "reason": 5}, 400, "invalid"),
    ],
)
def test_bad_alias_requests_are_refused(
    api: Any, machine: Machine, alias: str, body: dict[str, Any], status: int, code: str
) -> None:
    _versions(machine, 1)
    response = api.put(aliases_url(machine, alias), body, format="json")
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert not ModelAlias.objects.exists()
    assert not ModelAliasEvent.objects.exists()


@pytest.mark.django_db
def test_a_version_of_another_model_cannot_be_aliased(owner: Any, machine: Machine) -> None:
    other = Machine.objects.create(
        team=machine.team,
        name="Other",
        outputs=machine.outputs,
        time_budget_s=60,
        storage_dir="models/other",
    )
    version = make_version(other)
    with pytest.raises(NotFound):
        aliases.alias_set(
            caller=Caller.for_session(owner), machine=machine, alias="champion", version=version
        )
    with pytest.raises(ApplicationError) as refused:
        aliases.version_for_alias(machine=machine, alias="champion")
    assert refused.value.code == "alias_not_found"


@pytest.mark.django_db
def test_other_teams_get_404_and_viewers_cannot_change(machine: Machine) -> None:
    _versions(machine, 1)
    aliases.alias_set(
        caller=None, machine=machine, alias="champion", version=machine.versions.get(number=1)
    )
    stranger = api_client_for(member("owner"))
    for method, url, body in [
        ("get", aliases_url(machine), None),
        ("put", aliases_url(machine, "champion"), {"version": 1}),
        ("delete", aliases_url(machine, "champion"), None),
        ("post", f"/api/v1/models/{machine.pk}/predict/?alias=champion", {"rows": [ROW]}),
    ]:
        response = getattr(stranger, method)(url, body, format="json")
        assert response.status_code == 404, (method, url, response.content)
    viewer = api_client_for(member(Membership.Role.VIEWER, team=machine.team))
    assert viewer.get(aliases_url(machine)).status_code == 200
    assert viewer.put(aliases_url(machine, "x"), {"version": 1}, format="json").status_code == 403
    assert viewer.delete(aliases_url(machine, "champion")).status_code == 403
    assert list(ModelAlias.objects.values_list("name", flat=True)) == ["champion"]


@pytest.mark.django_db
def test_predict_and_batch_with_an_alias(
    api: Any,
    binary_model: Machine,  # noqa: F811 - the fixture
    trained_binary: Any,  # noqa: F811 - the fixture
) -> None:
    install_version(binary_model, trained_binary, number=2, activate=False)
    aliases.alias_set(
        caller=None,
        machine=binary_model,
        alias="challenger",
        version=binary_model.versions.get(number=2),
    )
    url = f"/api/v1/models/{binary_model.pk}/predict/"
    answered = api.post(f"{url}?alias=challenger", {"rows": [ROW]}, format="json")
    assert answered.status_code == 200, answered.content
    assert answered.json()["model_version"] == 2
    assert api.post(url, {"rows": [ROW]}, format="json").json()["model_version"] == 1
    both = api.post(f"{url}?alias=challenger&version=1", {"rows": [ROW]}, format="json")
    assert (both.status_code, both.json()["error"]["code"]) == (400, "alias_and_version")
    unknown = api.post(f"{url}?alias=nope", {"rows": [ROW]}, format="json")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "alias_not_found")
    invalid = api.post(f"{url}?alias=NOPE", {"rows": [ROW]}, format="json")
    assert (invalid.status_code, invalid.json()["error"]["code"]) == (400, "invalid_alias")

    batches = f"/api/v1/models/{binary_model.pk}/batch_predictions/"
    batch = api.post(
        f"{batches}?alias=challenger", {"dataset": binary_model.dataset_id}, format="json"
    )
    assert batch.status_code == 202, batch.content
    assert batch.json()["model_version"] == 2
    in_body = api.post(
        batches, {"dataset": binary_model.dataset_id, "alias": "challenger"}, format="json"
    )
    assert in_body.json()["model_version"] == 2
    both = api.post(
        f"{batches}?alias=challenger",
        {"dataset": binary_model.dataset_id, "version": 1},
        format="json",
    )
    assert (both.status_code, both.json()["error"]["code"]) == (400, "alias_and_version")
    missing = api.post(f"{batches}?alias=gone", {"dataset": binary_model.dataset_id}, format="json")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "alias_not_found")


@pytest.mark.django_db
def test_versions_list_queries_stay_flat(
    api: Any, machine: Machine, django_assert_max_num_queries: Any
) -> None:
    versions = _versions(machine, 2)
    for version in versions:
        aliases.alias_set(caller=None, machine=machine, alias=f"v{version.number}", version=version)
    url = f"/api/v1/models/{machine.pk}/versions/"
    api.get(url)
    with django_assert_max_num_queries(7) as few:
        assert api.get(url).status_code == 200
    for version in _more_versions(machine, 3, 20):
        aliases.alias_set(caller=None, machine=machine, alias=f"v{version.number}", version=version)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert api.get(url).json()["count"] == 20


def _more_versions(machine: Machine, first: int, last: int) -> list[ModelVersion]:
    return [make_version(machine, number=n, activate=False) for n in range(first, last + 1)]


@pytest.mark.django_db
def test_the_model_page_shows_badges_and_the_form_to_editors_only(
    owner: Any, machine: Machine
) -> None:
    versions = _versions(machine, 2)
    aliases.alias_set(caller=None, machine=machine, alias="champion", version=versions[1])
    client = Client()
    client.force_login(owner)
    page = client.get(f"/models/{machine.pk}/").content.decode()
    assert 'data-testid="alias-champion"' in page
    assert 'data-testid="alias-form"' in page
    response = client.post(
        f"/models/{machine.pk}/aliases/", {"alias": "staging", "version": "1", "action": "set"}
    )
    assert response.status_code == 302
    assert ModelAlias.objects.get(name="staging").version.number == 1
    client.post(f"/models/{machine.pk}/aliases/", {"alias": "staging", "action": "delete"})
    assert not ModelAlias.objects.filter(name="staging").exists()
    bad = client.post(
        f"/models/{machine.pk}/aliases/",
        {"alias": "Bad!", "version": "1", "action": "set"},
        follow=True,
    )
    assert "lowercase letters" in bad.content.decode()

    viewer = member(Membership.Role.VIEWER, team=machine.team)
    client.force_login(viewer)
    page = client.get(f"/models/{machine.pk}/").content.decode()
    assert 'data-testid="alias-champion"' in page
    assert 'data-testid="alias-form"' not in page
    refused = client.post(
        f"/models/{machine.pk}/aliases/", {"alias": "x", "version": "1", "action": "set"}
    )
    assert refused.status_code == 403


# --- concurrency (PostgreSQL) -----------------------------------------------------------------


def at_once(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run `work(i)` in `count` threads released together, each on its own connection."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except Exception as error:
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("existing", [False, True], ids=["new alias", "existing alias"])
def test_concurrent_moves_leave_one_row_and_a_consistent_history(
    owner: Any, machine: Machine, existing: bool
) -> None:
    assert connection.vendor == "postgresql", "row locks need PostgreSQL (make test-postgres)"
    versions = _versions(machine, 3)
    if existing:
        aliases.alias_set(caller=None, machine=machine, alias="champion", version=versions[0])
    caller = Caller.for_session(owner)

    results = at_once(
        2,
        lambda index: aliases.alias_set(
            caller=caller, machine=machine, alias="champion", version=versions[index + 1]
        ),
    )

    assert all(isinstance(result, ModelAlias) for result in results), results
    row = ModelAlias.objects.get(machine=machine, name="champion")
    moves = list(
        ModelAliasEvent.objects.filter(machine=machine)
        .order_by("pk")
        .values_list("previous_version_number", "version_number")
    )
    if existing:
        assert moves[0] == (None, 1)
        moves = moves[1:]
    assert len(moves) == 2
    start = 1 if existing else None
    # Each move saw the version the one before it left: one chain, ending at the row's.
    assert moves[0][0] == start
    assert moves[1][0] == moves[0][1]
    assert {moves[0][1], moves[1][1]} == {2, 3}
    assert row.version.number == moves[1][1]
    assert AuditEvent.objects.filter(action="model.alias_set").count() == (3 if existing else 2)


@pytest.mark.django_db
def test_a_model_has_at_most_max_aliases(api: Any, machine: Machine, monkeypatch: Any) -> None:
    monkeypatch.setattr(aliases, "MAX_ALIASES", 2)
    _versions(machine, 1)
    for name in ("a", "b"):
        assert api.put(aliases_url(machine, name), {"version": 1}, format="json").status_code == 200
    refused = api.put(aliases_url(machine, "c"), {"version": 1}, format="json")
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "too_many_aliases")
    # Moving an existing one is still allowed.
    assert api.put(aliases_url(machine, "a"), {"version": 1}, format="json").status_code == 200
