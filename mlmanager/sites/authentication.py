"""Device keys as an API credential: `Authorization: Device <key>`, or `Authorization: Bearer
<key>` for a key (they start with `mlmd_`, which no API token does).

Only the readings endpoint lists this authentication: everywhere else a device key is no
credential at all (401). The caller it sets has no user, is limited to the key's team and may
only write readings (`readings:write`); the ingest limits it to the key's site.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from mlmanager.accounts.authentication import set_request_caller
from mlmanager.accounts.caller import Caller, Credential
from mlmanager.core.throttling import client_address
from mlmanager.sites.models import DeviceKey
from mlmanager.sites.selectors import device_key_by_hash
from mlmanager.sites.services.sites import DEVICE_KEY_PREFIX, device_key_touch, hash_device_key

DEVICE_KEY_SCOPE = "readings:write"
# last_used_at is written at most this often per key: a device sending every second would
# otherwise add an UPDATE of the same row to every request.
TOUCH_INTERVAL = timedelta(minutes=1)


class DeviceKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Device"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        raw = self.device_key(request)
        if raw is None:
            return None
        key = device_key_by_hash(key_hash=hash_device_key(raw))
        if key is None:
            raise exceptions.AuthenticationFailed(_("Invalid or revoked device key."))
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at >= TOUCH_INTERVAL:
            device_key_touch(key_id=key.pk)
        set_request_caller(request, device_caller(key, address=client_address(request)))
        return AnonymousUser(), key

    def device_key(self, request: Request) -> str | None:
        """The raw key of a `Device` header (or of a `Bearer` one holding a device key)."""
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header:
            return None
        keyword = header[0].lower()
        if keyword == self.keyword.lower():
            if len(header) != 2:
                raise exceptions.AuthenticationFailed(_("Malformed Authorization header."))
            return header[1]
        if keyword == "bearer" and len(header) == 2 and header[1].startswith(DEVICE_KEY_PREFIX):
            return header[1]
        return None

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


def device_caller(key: DeviceKey, *, address: str | None = None) -> Caller:
    return Caller(
        user=None,
        credential=Credential.DEVICE_KEY,
        team_limit=key.team_id,
        scopes=frozenset({DEVICE_KEY_SCOPE}),
        credential_id=key.pk,
        address=address,
    )


def is_device_request(request: Request) -> bool:
    return isinstance(request.auth, DeviceKey)


class DeviceKeyScheme(OpenApiAuthenticationExtension):
    """Describes the device key in the OpenAPI schema (registered on import)."""

    target_class = "mlmanager.sites.authentication.DeviceKeyAuthentication"
    name = "deviceKeyAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Device <key>`: a site's device key (readings only).",
        }
