"""`job_changed(job_id=...)`: sent after every change of a Job row (state, progress, log), in
the process that made it. The live updates (mlmanager.live) listen to it."""

from __future__ import annotations

from django.dispatch import Signal

job_changed = Signal()
