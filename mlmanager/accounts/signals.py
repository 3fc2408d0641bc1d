"""`membership_removed(user_id=, team_id=)`: sent once a membership removal is committed. The
live updates (mlmanager.live) close that user's sockets on that team; a signal rather than a
call, so accounts does not depend on the live app."""

from __future__ import annotations

from django.dispatch import Signal

membership_removed = Signal()
