"""Live updates: job progress, log lines and state changes reach open pages over a WebSocket.

HTTP stays on gunicorn (WSGI, `mlmanager web`); the sockets are served by `mlmanager live`, one
uvicorn process running config.asgi. A page opens one socket (core/static/core/live.js) to the
consumer at /ws/events/, which carries the events of the jobs of the user's current team only;
the page's htmx partials re-fetch themselves over HTTP when an event for their object arrives.

Two transports, chosen by the settings (CHANNEL_LAYERS, from REDIS_URL), never by domain code:

* scale-out (a channel layer, Redis): jobs change in workers on other machines. Each change
  sends `mlmanager.jobs.signals.job_changed` in the process that made it; `events` turns it into
  a message to the team's group in Redis, which every live process subscribes to. Nothing polls.
* embedded default (no channel layer): the workers are other processes, and an in-memory layer
  lives inside one process, so it cannot carry their changes; running Redis only for this would
  break "no extra server". Instead each socket looks at its team's jobs in the database about
  once a second (`polling`) and sends what changed. The Job row is the truth either way.

A socket closes (code 4403) when the user's membership of its team is removed: pushed through
the user's group in scale-out, seen at the next look in the embedded default.
"""
