"""The log is append-only: no path edits or deletes a row, yet users and teams can go."""

from __future__ import annotations

import pytest

from mlmanager.audit.models import AuditEvent
from mlmanager.core.tests.factories import member

pytestmark = pytest.mark.django_db


def test_a_saved_event_cannot_be_saved_again(owner, record) -> None:
    event = record(owner, owner.current_team, "team.renamed")
    event.action = "team.created"
    with pytest.raises(TypeError, match="never edited"):
        event.save()
    assert AuditEvent.objects.get().action == "team.renamed"


def test_no_bulk_update_or_delete(owner, record) -> None:
    event = record(owner, owner.current_team, "team.renamed")
    with pytest.raises(TypeError, match="never edited"):
        AuditEvent.objects.filter(pk=event.pk).update(action="team.created")
    with pytest.raises(TypeError, match="never deleted"):
        AuditEvent.objects.all().delete()
    with pytest.raises(TypeError, match="never deleted"):
        event.delete()
    assert AuditEvent.objects.get().action == "team.renamed"


def test_a_deleted_users_events_stay_readable(owner, record) -> None:
    admin = member("admin", team=owner.current_team)
    record(admin, owner.current_team, "membership.role_changed", target=owner)
    email = admin.email
    admin.delete()
    event = AuditEvent.objects.get()
    assert (event.actor_id, event.actor_email) == (None, email)


def test_a_deleted_team_takes_its_events_along(owner, record) -> None:
    other = member("owner")
    record(owner, owner.current_team, "team.renamed")
    kept = record(other, other.current_team, "team.renamed")
    owner.current_team.delete()
    assert list(AuditEvent.objects.values_list("pk", flat=True)) == [kept.pk]


def test_labels(owner, record) -> None:
    event = record(owner, owner.current_team, "membership.role_changed")
    assert (event.action_label, event.credential_label) == ("Member's role changed", "web session")
