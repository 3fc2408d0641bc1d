"""Sign-up tells nothing about existing accounts: the same answer either way, and the address's
mailbox, reached over a real SMTP server, learns the rest (an activation link, or a note)."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client
from rest_framework.test import APIClient

from mlmanager.accounts import services
from mlmanager.accounts.models import Membership, User
from mlmanager.core.tests.factories import PASSWORD, UserFactory
from mlmanager.core.tests.smtp import SITE_URL, Mailbox, smtp_server

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "quartz-meadow-lantern-77"


@pytest.fixture
def mailbox(settings: Any, transactional_db: None) -> Iterator[Mailbox]:
    """A real SMTP server on 127.0.0.1; Django sends to it. E-mails go out on commit, so the
    test commits (transactional_db) instead of running in one transaction that never does."""
    with smtp_server(settings) as received:
        yield received


def _links(message: EmailMessage) -> list[str]:
    body = message.get_content()
    return re.findall(rf"{re.escape(SITE_URL)}\S+", body)


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def _signup(address: str, password: str = NEW_PASSWORD, name: str = "") -> Any:
    return APIClient().post(
        "/api/v1/auth/signup/",
        {"email": address, "password": password, "name": name},
        format="json",
    )


def _token_status(address: str, password: str) -> int:
    response = APIClient().post(
        "/api/v1/auth/token/", {"email": address, "password": password}, format="json"
    )
    return int(response.status_code)


def test_api_answers_the_same_whether_or_not_the_address_has_an_account(
    mailbox: Mailbox,
) -> None:
    owner = UserFactory(email="taken@example.com")
    for_new = _signup("new@example.com", name="Ada Lovelace")
    for_taken = _signup("Taken@Example.com", name="Ada Lovelace")
    assert (for_new.status_code, for_taken.status_code) == (202, 202)
    assert for_new.json() == for_taken.json()
    assert set(for_new.json()) == {"detail"}
    assert for_new.headers["Content-Type"] == for_taken.headers["Content-Type"]
    # The account that existed is left exactly as it was.
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD) and not owner.check_password(NEW_PASSWORD)
    assert User.objects.filter(email="taken@example.com").count() == 1


def test_weak_password_is_refused_the_same_for_a_taken_address() -> None:
    UserFactory(email="taken@example.com")
    for_new = _signup("new@example.com", password="123")
    for_taken = _signup("taken@example.com", password="123")
    assert (for_new.status_code, for_taken.status_code) == (400, 400)
    assert for_new.json() == for_taken.json()
    assert for_new.json()["error"]["code"] == "invalid"
    assert not User.objects.filter(email="new@example.com").exists()


def test_owner_of_a_taken_address_is_told_by_email(mailbox: Mailbox) -> None:
    UserFactory(email="taken@example.com")
    _signup("taken@example.com")
    [message] = mailbox.messages
    assert message["To"] == "taken@example.com"
    assert message["Subject"] == "Someone tried to sign up with your MLManager address"
    assert "which already has an account. Nothing was changed." in message.get_content()
    assert _links(message) == [
        f"{SITE_URL}/accounts/login/",
        f"{SITE_URL}/accounts/password/reset/",
    ]


def test_new_address_gets_an_inactive_account_and_a_link_that_activates_it_once(
    mailbox: Mailbox,
) -> None:
    assert _signup("Ada@Example.com", name="Ada Lovelace").status_code == 202
    user = User.objects.get(email="ada@example.com")
    assert not user.is_active
    assert (user.first_name, user.last_name) == ("Ada", "Lovelace")
    membership = Membership.objects.select_related("team").get(user=user)
    assert (membership.role, membership.team.name) == ("owner", "Ada's team")
    assert _token_status("ada@example.com", NEW_PASSWORD) == 401  # not before activation

    [message] = mailbox.to("ada@example.com")
    assert message["Subject"] == "Activate your MLManager account"
    [link] = _links(message)
    assert re.fullmatch(rf"{re.escape(SITE_URL)}/accounts/activate/[\w-]+/[\w-]+/", link)

    client = Client()
    page = client.get(_path(link))  # what a mail scanner does: nothing changes
    assert page.status_code == 200
    assert 'type="submit"' in page.content.decode()
    user.refresh_from_db()
    assert not user.is_active

    response = client.post(_path(link))
    assert (response.status_code, response["Location"]) == (302, "/datasets/")
    user.refresh_from_db()
    assert user.is_active
    assert client.get("/datasets/").status_code == 200  # logged in
    assert _token_status("ada@example.com", NEW_PASSWORD) == 201

    again = Client().post(_path(link))
    assert again.status_code == 200
    assert 'data-testid="activation-invalid"' in again.content.decode()


def test_a_second_signup_of_an_unactivated_address_lets_the_mailbox_choose_the_password(
    mailbox: Mailbox,
) -> None:
    # Someone else signed up with the address first and knows that password.
    _signup("victim@example.com", password="squatter-password-12")
    [first] = mailbox.to("victim@example.com")
    [first_link] = _links(first)

    assert _signup("victim@example.com", password=NEW_PASSWORD).status_code == 202
    _first, second = mailbox.to("victim@example.com")
    assert second["Subject"] == "Activate your MLManager account"
    assert "has not been activated yet" in second.get_content()
    [link] = _links(second)
    assert link.endswith("/password/")
    assert User.objects.filter(email="victim@example.com").count() == 1

    client = Client()
    mismatch = client.post(
        _path(link), {"new_password1": NEW_PASSWORD, "new_password2": "something-else-99"}
    )
    assert mismatch.status_code == 200
    assert not User.objects.get(email="victim@example.com").is_active
    response = client.post(
        _path(link), {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert (response.status_code, response["Location"]) == (302, "/datasets/")
    assert _token_status("victim@example.com", NEW_PASSWORD) == 201
    assert _token_status("victim@example.com", "squatter-password-12") == 401
    # The first link, sent to the first sign-up, died with the password it was made for.
    stale = Client().post(_path(first_link))
    assert 'data-testid="activation-invalid"' in stale.content.decode()


def test_signup_page_goes_to_the_same_next_page_either_way(mailbox: Mailbox) -> None:
    UserFactory(email="taken@example.com")
    pages = []
    for address in ("new@example.com", "taken@example.com"):
        client = Client()
        response = client.post(
            "/accounts/signup/", {"name": "Grace", "email": address, "password": NEW_PASSWORD}
        )
        assert (response.status_code, response["Location"]) == (302, "/accounts/signup/sent/")
        page = client.get(response["Location"]).content.decode()
        pages.append(re.sub(r"[A-Za-z0-9]{64}", "<csrf token>", page))  # masked anew each time
        assert "_auth_user_id" not in client.session  # nobody is logged in by a sign-up
    assert pages[0] == pages[1]
    assert "Check your e-mail" in pages[0]
    assert [message["To"] for message in mailbox.messages] == [
        "new@example.com",
        "taken@example.com",
    ]


def test_activation_follows_a_local_next_only(mailbox: Mailbox) -> None:
    Client().post(
        "/accounts/signup/?next=/accounts/invite/abc/",
        {"email": "invited@example.com", "password": NEW_PASSWORD},
    )
    Client().post(
        "/accounts/signup/?next=//evil.example/",
        {"email": "other@example.com", "password": NEW_PASSWORD},
    )
    [invited] = _links(mailbox.to("invited@example.com")[0])
    assert invited.endswith("?next=%2Faccounts%2Finvite%2Fabc%2F")
    assert Client().post(_path(invited))["Location"] == "/accounts/invite/abc/"
    [other] = _links(mailbox.to("other@example.com")[0])
    assert "next" not in other
    assert Client().post(f"{_path(other)}?next=//evil.example/")["Location"] == "/datasets/"


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/activate/bm90LWFuLWlk/abc-def/",  # "not-an-id"
        "/accounts/activate/OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk/abc-def/",  # 99999999999999999999999
        "/accounts/activate/MQ/forged-token/password/",
        "/accounts/activate/%F0%9F%92%A5/x/",
    ],
)
def test_forged_activation_links_change_nothing(path: str) -> None:
    UserFactory(email="pending@example.com", is_active=False)
    response = Client().post(path, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response.status_code == 200
    assert 'data-testid="activation-invalid"' in response.content.decode()
    assert not User.objects.filter(is_active=True).exists()


def test_signup_closed_answers_403_for_every_address(settings: Any) -> None:
    settings.MLMANAGER_SIGNUP_OPEN = False
    UserFactory(email="taken@example.com")
    for_new, for_taken = _signup("new@example.com"), _signup("taken@example.com")
    assert (for_new.status_code, for_taken.status_code) == (403, 403)
    assert for_new.json() == for_taken.json()
    assert for_new.json()["error"]["code"] == "signup_closed"


def test_admin_bootstrap_takes_over_an_unactivated_signup_of_its_address(
    mailbox: Mailbox,
) -> None:
    _signup("admin@example.com", password="squatter-password-12")
    user, created = services.admin_bootstrap(email="admin@example.com", password=NEW_PASSWORD)
    assert created
    assert (user.is_active, user.is_staff, user.is_superuser) == (True, True, True)
    assert _token_status("admin@example.com", NEW_PASSWORD) == 201
    assert _token_status("admin@example.com", "squatter-password-12") == 401


def test_schema_documents_the_one_answer() -> None:
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    responses = schema["paths"]["/api/v1/auth/signup/"]["post"]["responses"]
    assert "201" not in responses
    body = responses["202"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    assert schema["components"]["schemas"][body]["properties"] == {"detail": {"type": "string"}}


def test_a_mail_server_that_is_down_changes_no_answer(
    mailbox: Mailbox, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as unused:  # bound, never listening: connections are refused
        unused.bind(("127.0.0.1", 0))
        settings.EMAIL_PORT = unused.getsockname()[1]
        response = _signup("new@example.com")
    assert response.status_code == 202
    assert not User.objects.get(email="new@example.com").is_active
    assert "the activation e-mail to user" in caplog.text
