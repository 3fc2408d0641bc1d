"""The seams shared apps offer: registries each app fills in its `AppConfig.ready()`.

`jobs` and `live` read these and name no app: an app adds a job kind, a periodic task, a queue
start-up hook or a live-event resolver by registering it here, never by editing them.

Registering a name twice is an error (two apps claiming one job kind would silently share it),
except with an equal entry: Django runs `ready()` again when tests change INSTALLED_APPS, so
entries are frozen dataclasses of module-level functions, equal each time they are built.
This module imports no app.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar


class _Named(Protocol):
    @property
    def name(self) -> str: ...


Entry = TypeVar("Entry", bound=_Named)


class Registry(Generic[Entry]):
    """Entries by name, in the order they were registered."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, Entry] = {}

    def register(self, entry: Entry) -> Entry:
        known = self._entries.get(entry.name)
        if known is not None and known != entry:
            raise ValueError(f"{self.what} {entry.name!r} is already registered: {known!r}")
        self._entries[entry.name] = entry
        return entry

    def unregister(self, name: str) -> None:
        """For tests that install an app for a while: its entries leave with it."""
        self._entries.pop(name, None)

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise LookupError(f"no {self.what} {name!r} is registered") from None

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True)
class SubjectLink:
    """A link from a job to something it worked on, on the jobs pages."""

    kind: str  # what it links to ("dataset", "model"): the link's test id
    label: str  # shown as is (escaped), already translated: "Dataset: Customers"
    url: str


# Subject ids (of one job kind) -> for each subject that still exists: its team id and links.
SubjectLinks = Callable[[Sequence[int]], Mapping[int, tuple[int, Sequence[SubjectLink]]]]


@dataclass(frozen=True)
class JobKind:
    """A kind of long operation: `name` is stored on the Job row ("dataset.process"), `label`
    shown to users, `subject_model` ("app_label.ModelName") the model its jobs work on, and
    `links` what the jobs pages link a job to (one call for the subjects of many jobs)."""

    name: str
    label: Any  # a (lazy) translated string
    subject_model: str
    links: SubjectLinks | None = None


@dataclass(frozen=True)
class PeriodicTask:
    """Work run once per slot of `interval_s()` seconds, by one scheduler however many run
    (jobs.scheduler). `interval_s` is called each tick, so it may read settings."""

    name: str
    interval_s: Callable[[], float]
    run: Callable[[], object]


@dataclass(frozen=True)
class QueueStartupHook:
    """Run once when a worker that takes `queue` starts, before it takes work (e.g. start the
    training fork server so the first run does not pay for importing the ML libraries)."""

    name: str
    queue: str
    run: Callable[[], object]


# Subject ids (of one job kind) -> for each, the fields a page matches the event on.
Resolve = Callable[[Sequence[int]], Mapping[int, Mapping[str, Any]]]


@dataclass(frozen=True)
class LiveEventResolver:
    """How the live event of a job of kind `name` says which page it concerns: `resolve` maps
    the subject ids of such jobs (one call for many) to the fields pages filter events on
    (`data-job-machine-id` matches `machine_id`). `fields` names every field it may set; each
    event carries the fields of all resolvers (null where not set), so pages see one shape.
    The event's team is the job's own (a job and its subject belong to one team)."""

    name: str  # the job kind
    fields: tuple[str, ...]
    resolve: Resolve


job_kinds: Registry[JobKind] = Registry("job kind")
periodic_tasks: Registry[PeriodicTask] = Registry("periodic task")
queue_startup_hooks: Registry[QueueStartupHook] = Registry("queue start-up hook")
live_event_resolvers: Registry[LiveEventResolver] = Registry("live event resolver")
