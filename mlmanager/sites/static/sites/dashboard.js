/* The live site dashboard: one socket per dashboard to `ws/sites/<id>/` (mlmanager/sites/consumers.py).
 *
 * The element with data-site-socket names the path. Each message (the site's snapshot, sent on
 * connect and after each change) fires `sites:changed` on <body>, on which the dashboard's live
 * partial re-fetches itself with htmx (hx-trigger="sites:changed from:body"). Messages are
 * passed on at most once a second: a burst of readings becomes one re-fetch, made after the
 * last one seen. The socket reconnects with a growing, jittered delay and gives up when the
 * server says the user may no longer see the site (4403). Where: <body data-live-url>, else
 * this host on <body data-live-port>, as core/live.js.
 */
(function () {
  "use strict";

  var NOT_ALLOWED = 4403;
  var FIRST_RETRY_MS = 1000;
  var LAST_RETRY_MS = 30000;
  var SPACING_MS = 1000;

  var body = document.body;
  var live = document.querySelector("[data-site-socket]");
  if (!body || !live || !("WebSocket" in window)) return;
  var path = live.getAttribute("data-site-socket");
  var url = socketUrl(body.getAttribute("data-live-url"), body.getAttribute("data-live-port"));
  if (!url) return;

  var retryMs = FIRST_RETRY_MS;
  var timer = null;
  var lastFire = 0;
  window.sitesLiveConnected = false;

  function socketUrl(base, port) {
    if (base) return base.replace(/^http/, "ws").replace(/\/+$/, "") + path;
    if (!port) return null;
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + window.location.hostname + ":" + port + path;
  }

  function fire() {
    timer = null;
    lastFire = Date.now();
    if (window.htmx) window.htmx.trigger(body, "sites:changed", {});
  }

  function changed() {
    if (timer !== null) return;
    timer = window.setTimeout(fire, Math.max(0, lastFire + SPACING_MS - Date.now()));
  }

  function connect() {
    var socket;
    try {
      socket = new WebSocket(url);
    } catch (error) {
      return;
    }
    socket.onopen = function () {
      retryMs = FIRST_RETRY_MS;
      window.sitesLiveConnected = true;
    };
    socket.onmessage = function (message) {
      var snapshot;
      try {
        snapshot = JSON.parse(message.data);
      } catch (error) {
        return;
      }
      if (snapshot && snapshot.type === "site") changed();
    };
    socket.onclose = function (closed) {
      window.sitesLiveConnected = false;
      if (closed.code === NOT_ALLOWED) return;
      var delay = retryMs * (0.5 + Math.random());
      retryMs = Math.min(retryMs * 2, LAST_RETRY_MS);
      window.setTimeout(connect, delay);
    };
  }

  connect();
})();
