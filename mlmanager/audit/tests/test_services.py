"""audit_record: what it keeps of the caller and the object, and that it shares the change's
transaction."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction

from mlmanager.accounts.caller import Caller, Credential
from mlmanager.accounts.models import Membership, Team
from mlmanager.audit.models import AuditAction, AuditEvent
from mlmanager.audit.services import audit_record
from mlmanager.core.tests.factories import member


@pytest.mark.django_db
def test_records_caller_credential_object_and_changes(owner) -> None:
    team = owner.current_team
    viewer = member("viewer", team=team)
    membership = Membership.objects.get(user=viewer)
    caller = Caller(
        user=owner,
        credential=Credential.TEAM_TOKEN,
        team_limit=team.pk,
        credential_id=42,
        address="2001:db8::1",
    )
    event = audit_record(
        caller=caller,
        team=team,
        action=AuditAction.MEMBERSHIP_ROLE_CHANGED,
        target=membership,
        changes={"role": ("viewer", "editor")},
        details={"price": Decimal("1.50"), "at": dt.date(2026, 1, 2)},
    )
    event = AuditEvent.objects.get(pk=event.pk)
    assert (
        event.team_id,
        event.actor_id,
        event.actor_email,
        event.credential,
        event.credential_id,
        event.address,
        event.action,
    ) == (
        team.pk,
        owner.pk,
        owner.email,
        "team_token",
        42,
        "2001:db8::1",
        "membership.role_changed",
    )
    assert (event.target_type, event.target_id, event.target_repr) == (
        "membership",
        membership.pk,
        str(membership),
    )
    assert event.changes == {"role": {"before": "viewer", "after": "editor"}}
    assert event.details == {"price": "1.50", "at": "2026-01-02"}


@pytest.mark.django_db
def test_the_platform_itself_and_a_malformed_address(owner) -> None:
    event = audit_record(
        caller=Caller(user=None, credential=Credential.SYSTEM, address="not-an-address"),
        team=owner.current_team,
        action="model_version.activated",
    )
    assert (event.actor_id, event.actor_email, event.credential, event.address) == (
        None,
        "",
        "system",
        None,
    )
    assert (event.target_type, event.target_id, event.target_repr) == ("", None, "")


@pytest.mark.django_db
def test_an_action_outside_the_catalogue_is_a_programming_error(owner) -> None:
    with pytest.raises(ValueError):
        audit_record(caller=Caller.for_session(owner), team=None, action="membership.rolechanged")
    assert not AuditEvent.objects.exists()


class Boom(Exception):
    pass


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_change_leaves_no_event() -> None:
    owner = member("owner")
    team = owner.current_team
    with pytest.raises(Boom), transaction.atomic():
        Team.objects.filter(pk=team.pk).update(name="Renamed")
        audit_record(
            caller=Caller.for_session(owner),
            team=team,
            action="team.renamed",
            target=team,
            changes={"name": (team.name, "Renamed")},
        )
        raise Boom
    team.refresh_from_db()
    assert team.name != "Renamed"
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_committed_change_keeps_its_event() -> None:
    owner = member("owner")
    with transaction.atomic():
        audit_record(
            caller=Caller.for_session(owner), team=owner.current_team, action="team.renamed"
        )
    assert AuditEvent.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_refuses_to_run_outside_a_transaction() -> None:
    owner = member("owner")
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit_record(
            caller=Caller.for_session(owner), team=owner.current_team, action="team.renamed"
        )
    assert not AuditEvent.objects.exists()
