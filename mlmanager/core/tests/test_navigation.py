"""Getting around: the top bar and its menu reach every section, the API tokens and docs;
the profile is not the Django admin, which only staff see; destructive buttons look it and ask
first."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from mlmanager.accounts.models import User
from mlmanager.core.tests.factories import member
from mlmanager.jobs import services as jobs

pytestmark = pytest.mark.django_db


def page_of(user: User, path: str = "/datasets/", **headers: str) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(path, **headers)
    assert response.status_code == 200
    return response.content.decode()


def test_the_menu_reaches_sections_tokens_docs_and_profile(owner: User) -> None:
    page = page_of(owner)
    for href in ("/datasets/", "/models/", "/predictions/", "/jobs/"):
        # Once in the bar, once in the menu that replaces it on a narrow screen.
        assert page.count(f'href="{href}"') >= 2, href
    assert 'href="/accounts/tokens/" data-testid="menu-api-tokens"' in page
    assert 'href="/api/docs/" data-testid="menu-api-docs"' in page
    assert 'href="/accounts/profile/" data-testid="menu-profile">Profile and preferences<' in page
    assert "/admin/" not in page  # not staff


def test_staff_get_the_admin_as_its_own_link(owner: User) -> None:
    User.objects.filter(pk=owner.pk).update(is_staff=True)
    owner.refresh_from_db()
    page = page_of(owner)
    assert 'href="/admin/" data-testid="menu-admin">Django admin (staff)<' in page
    profile = re.search(r'<a href="/accounts/profile/"[^>]*>([^<]*)<', page)
    assert profile is not None and "admin" not in profile.group(1).lower()


def test_destructive_buttons_are_red_and_ask_first(owner: User) -> None:
    job = jobs.job_create(team=owner.current_team, created_by=owner, kind="dataset.process")
    page = page_of(owner, f"/jobs/{job.pk}/")
    form = re.search(r'<form method="post" action="/jobs/\d+/cancel/"[^>]*>', page)
    assert form is not None
    assert 'hx-confirm="' in form.group(0) and 'hx-boost="true"' in form.group(0)
    assert 'class="danger" data-testid="cancel-job"' in page
    member("viewer", team=owner.current_team)
    team = page_of(owner, f"/accounts/teams/{owner.current_team_id}/")
    remove = re.search(
        r'<form[^>]*>(?:(?!</form>).)*name="remove"(?:(?!</form>).)*</form>', team, re.S
    )
    assert remove is not None
    assert 'hx-confirm="Remove this member from the team?"' in remove.group(0)
    assert 'class="danger outline"' in remove.group(0)


def test_a_boosted_request_gets_the_whole_page(owner: User) -> None:
    """A form htmx submits to confirm first follows the redirect and swaps the whole body:
    the page it lands on must come whole, not as the partial an htmx refresh gets."""
    boosted = page_of(owner, "/jobs/", HTTP_HX_REQUEST="true", HTTP_HX_BOOSTED="true")
    assert boosted.startswith("<!doctype html>") and 'data-testid="user-menu"' in boosted
    partial = page_of(owner, "/jobs/", HTTP_HX_REQUEST="true")
    assert partial.startswith('<div id="job-table"')
