"""`Authorization: Bearer <token>` for the API."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from mlmanager.accounts.services import api_token_authenticate


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        raw = self.bearer_token(request)
        if raw is None:
            return None
        token = api_token_authenticate(raw=raw)
        if token is None:
            raise self.refused()
        user = token.user
        # Team-scoped querysets and access checks read this to keep the token in its team.
        user.restricted_team_id = token.team_id  # type: ignore[attr-defined]
        return user, token

    def bearer_token(self, request: Request) -> str | None:
        """The raw token of an `Authorization: Bearer` header; None without one."""
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0].lower() != self.keyword.lower():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Malformed Authorization header."))
        return header[1]

    @staticmethod
    def refused() -> exceptions.AuthenticationFailed:
        return exceptions.AuthenticationFailed(_("Invalid, revoked or expired token."))

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Describes the bearer token in the OpenAPI schema (registered on import)."""

    target_class = "mlmanager.accounts.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "An MLManager API token."}
