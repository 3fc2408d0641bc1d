"""Staff read the log in the Django admin; nobody adds, edits or deletes there."""

from __future__ import annotations

import pytest
from django.contrib.admin.utils import quote
from django.test import Client
from django.urls import reverse

from mlmanager.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_read_only_admin(owner, record) -> None:
    event = record(owner, owner.current_team, "team.renamed", target=owner.current_team)
    owner.is_staff = owner.is_superuser = True
    owner.save()
    client = Client()
    client.force_login(owner)
    listing = client.get(reverse("admin:audit_auditevent_changelist"), {"q": "team"})
    assert listing.status_code == 200
    assert listing.context["cl"].result_count == 1
    assert listing.context["action_form"] is None  # no bulk actions, so no "delete selected"
    change = reverse("admin:audit_auditevent_change", args=[quote(event.pk)])
    assert client.get(change).status_code == 200
    assert client.post(change, {"action": "team.created"}).status_code == 403
    delete = reverse("admin:audit_auditevent_delete", args=[quote(event.pk)])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:audit_auditevent_add")).status_code == 403
    assert AuditEvent.objects.get().action == "team.renamed"
