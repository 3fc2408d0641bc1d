/* Live updates: one WebSocket per page to `mlmanager live` (mlmanager/live).
 *
 * Each job event from the socket becomes a DOM event on <body>, `mlmanager:job` (detail: the
 * event), which htmx partials listen to and re-fetch themselves on; their data-job-* attributes
 * say which jobs concern them (each names a field of the event, all must match):
 *   hx-trigger="mlmanager:job from:body" data-job-kind="machine.train" data-job-machine-id="7"
 * The re-fetch for any other job's event is cancelled here (htmx:confirm). Not htmx's event
 * filters (mlmanager:job[detail.id==42]): htmx compiles those with Function(), which the
 * Content-Security-Policy forbids (no 'unsafe-eval').
 * On every (re)connect `mlmanager:resync` tells the partials showing running work to re-fetch
 * once, for what changed while no socket was open. `window.mlmanagerLiveConnected` is true while
 * the socket is open; while it is not, `mlmanager:poll` fires every <body
 * data-live-fallback-poll> for those partials' slow fallback poll:
 *   hx-trigger="mlmanager:job from:body, mlmanager:resync from:body, mlmanager:poll from:body"
 * An in-app notification of the user (`{"type": "notification", ...}`, with a channel layer)
 * becomes `mlmanager:notification` on <body>, for a badge partial to re-fetch itself on.
 * The socket reconnects with a growing, jittered delay; it gives up when the server says the
 * user left the team (4403). Where: <body data-live-url> (MLMANAGER_LIVE_URL), else this host
 * on <body data-live-port>, ws: or wss: as the page.
 */
(function () {
  "use strict";

  var PATH = "/ws/events/";
  var NOT_A_MEMBER = 4403;
  var FIRST_RETRY_MS = 1000;
  var LAST_RETRY_MS = 30000;
  // Events are passed on at most this often: a partial re-fetched while its previous request
  // is in flight would lose the newer request (htmx drops it when the old element is swapped
  // out), and a chatty job must not turn into a request storm.
  var SPACING_MS = 1000;
  // A finished job is announced a second time after this: the owner of the work (a dataset,
  // a batch) records its own outcome just after the job's.
  var SETTLE_MS = 1500;
  var FALLBACK_POLL_MS = 5000;  // when <body data-live-fallback-poll> does not say
  var JOB_FIELD_PREFIX = "data-job-";

  var body = document.body;
  if (!body) return;
  window.mlmanagerLiveConnected = false;
  body.addEventListener("htmx:confirm", skipOtherJobs);
  window.setInterval(pollWhileOffline, fallbackPollMs());
  if (!("WebSocket" in window)) return;
  var url = socketUrl(body.getAttribute("data-live-url"), body.getAttribute("data-live-port"));
  if (!url) return;

  var retryMs = FIRST_RETRY_MS;
  var waiting = {};  // job id -> its latest event not yet passed on
  var flushTimer = null;
  var lastFlush = 0;

  function socketUrl(base, port) {
    if (base) return base.replace(/^http/, "ws").replace(/\/+$/, "") + PATH;
    if (!port) return null;
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + window.location.hostname + ":" + port + PATH;
  }

  // The element's data-job-* fields, each equal to the event's ("data-job-machine-id" is the
  // event's machine_id).
  function concerns(element, event) {
    return Array.prototype.every.call(element.attributes, function (attribute) {
      if (attribute.name.indexOf(JOB_FIELD_PREFIX) !== 0) return true;
      var field = attribute.name.slice(JOB_FIELD_PREFIX.length).replace(/-/g, "_");
      return String(event[field]) === attribute.value;
    });
  }

  function skipOtherJobs(confirm) {
    var trigger = confirm.detail.triggeringEvent;
    if (trigger && trigger.type === "mlmanager:job" && !concerns(confirm.detail.elt, trigger.detail)) {
      confirm.preventDefault();
    }
  }

  function fallbackPollMs() {
    var text = body.getAttribute("data-live-fallback-poll");
    var ms = text && window.htmx ? window.htmx.parseInterval(text) : undefined;
    return ms > 0 ? ms : FALLBACK_POLL_MS;
  }

  function pollWhileOffline() {
    if (!window.mlmanagerLiveConnected) fire("mlmanager:poll", {});
  }

  function fire(name, detail) {
    if (window.htmx) {
      window.htmx.trigger(body, name, detail);
    } else {
      body.dispatchEvent(new CustomEvent(name, { detail: detail }));
    }
  }

  function flush() {
    flushTimer = null;
    lastFlush = Date.now();
    var events = waiting;
    waiting = {};
    Object.keys(events).forEach(function (id) {
      var event = events[id];
      fire("mlmanager:job", event);
      if (event.finished && !event.settled) {
        window.setTimeout(function () {
          receive(Object.assign({}, event, { settled: true }));
        }, SETTLE_MS);
      }
    });
  }

  function receive(event) {
    waiting[event.id] = event;
    if (flushTimer !== null) return;
    var wait = Math.max(0, lastFlush + SPACING_MS - Date.now());
    flushTimer = window.setTimeout(flush, wait);
  }

  function connect() {
    var socket;
    try {
      socket = new WebSocket(url);
    } catch (error) {
      return;  // an invalid URL: stay on the fallback poll
    }
    socket.onopen = function () {
      retryMs = FIRST_RETRY_MS;
      window.mlmanagerLiveConnected = true;
      fire("mlmanager:resync", {});
    };
    socket.onmessage = function (message) {
      var event;
      try {
        event = JSON.parse(message.data);
      } catch (error) {
        return;
      }
      if (event && event.type === "job") receive(event);
      if (event && event.type === "notification") fire("mlmanager:notification", event);
    };
    socket.onclose = function (closed) {
      window.mlmanagerLiveConnected = false;
      if (closed.code === NOT_A_MEMBER) return;
      var delay = retryMs * (0.5 + Math.random());
      retryMs = Math.min(retryMs * 2, LAST_RETRY_MS);
      window.setTimeout(connect, delay);
    };
  }

  connect();
})();
