"""Who is asking: one typed value per request, socket or task.

A `Caller` is built once where a request enters (the session middleware, the token
authentication, the WebSocket consumer, a task that acts for a user) and passed to every
`access_*` check and every service that checks rights or records who acted. Nothing about the
credential is patched onto `User`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlmanager.accounts.models import ApiToken, User


class Credential(StrEnum):
    """How the caller proved who they are."""

    SESSION = "session"  # a signed-in browser
    PERSONAL_TOKEN = "personal_token"  # noqa: S105 - an API token acting in every team of its user
    TEAM_TOKEN = "team_token"  # noqa: S105 - an API token limited to one team
    DEVICE_KEY = "device_key"  # a sensor or gateway sending readings (sites)
    MARKETPLACE_KEY = "marketplace_key"  # a buyer of a listed prediction API (marketplace)
    SYSTEM = "system"  # the platform itself: a periodic task, a management command


@dataclass(frozen=True, slots=True)
class Caller:
    """The user (or service) behind one request, with what its credential allows.

    `team_limit` narrows the caller to one team (a team token, a device key); `None` means every
    team the user is a member of. `scopes` empty means the credential's full rights; a
    credential with scopes may only do what they name. `address` is the client address as the
    trusted proxies report it (for the audit log), `credential_id` the token's or key's id.
    """

    user: User | None
    credential: Credential
    team_limit: int | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    address: str | None = None
    credential_id: int | None = None

    @property
    def is_authenticated(self) -> bool:
        return self.user is not None and self.user.is_authenticated

    @property
    def user_id(self) -> int | None:
        return self.user.pk if self.is_authenticated else None  # type: ignore[union-attr]

    @property
    def api_token_id(self) -> int | None:
        """The API token's id when the caller is one (the prediction log records it)."""
        if self.credential in (Credential.PERSONAL_TOKEN, Credential.TEAM_TOKEN):
            return self.credential_id
        return None

    def allows_team(self, team_id: int) -> bool:
        """False when the credential is limited to another team."""
        return self.team_limit is None or self.team_limit == team_id

    def allows_scope(self, scope: str) -> bool:
        return not self.scopes or scope in self.scopes

    @classmethod
    def for_session(cls, user: User, *, address: str | None = None) -> Caller:
        return cls(user=user, credential=Credential.SESSION, address=address)

    @classmethod
    def anonymous(cls, *, address: str | None = None) -> Caller:
        """Nobody signed in: every team-scoped read is empty, every access check "not found"."""
        return cls(user=None, credential=Credential.SESSION, address=address)

    @classmethod
    def for_api_token(cls, token: ApiToken, *, address: str | None = None) -> Caller:
        """The token's user; a token made for one team is limited to it."""
        return cls.for_token_values(
            user=token.user, token_id=token.pk, team_id=token.team_id, address=address
        )

    @classmethod
    def for_token_values(
        cls, *, user: User, token_id: int, team_id: int | None, address: str | None = None
    ) -> Caller:
        """As `for_api_token`, from the columns the predict path's one query reads."""
        return cls(
            user=user,
            credential=Credential.PERSONAL_TOKEN if team_id is None else Credential.TEAM_TOKEN,
            team_limit=team_id,
            address=address,
            credential_id=token_id,
        )

    @classmethod
    def acting_for(cls, user: User) -> Caller:
        """The platform acting for a user with that user's rights (a task they started, a
        management command run for them): no credential of theirs narrows it."""
        return cls(user=user, credential=Credential.SYSTEM)

    @classmethod
    def system(cls) -> Caller:
        return cls(user=None, credential=Credential.SYSTEM)
