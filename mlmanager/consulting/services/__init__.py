"""Consulting's services: the request's steps (`requests`) and their e-mails (`emails`)."""

from mlmanager.consulting.services.requests import (
    MAX_DELAY_DAYS,
    WrongState,
    consulting_request_accept,
    consulting_request_approve,
    consulting_request_cancel,
    consulting_request_contract,
    consulting_request_create,
    consulting_request_finish,
)

__all__ = [
    "MAX_DELAY_DAYS",
    "WrongState",
    "consulting_request_accept",
    "consulting_request_approve",
    "consulting_request_cancel",
    "consulting_request_contract",
    "consulting_request_create",
    "consulting_request_finish",
]
