// Live updates for the portal.
//
// An element with data-live-path (the incident list, an incident's page) names the
// websocket to follow.  The server only says "incident N changed"; the page then
// fires "incident-changed" on <body> and htmx re-fetches its fragment through the
// ordinary views, so what a user may see is decided in one place.
(function () {
  "use strict";

  const MIN_DELAY = 1000;
  const MAX_DELAY = 30000;

  function start() {
    const live = document.querySelector("[data-live-path]");
    if (!live) return;
    const status = document.getElementById("live-status");
    // Empty port: the page's own origin serves websockets (a proxy routes /ws/).
    // Otherwise the ASGI tier listens on another port of the same host.
    const port = document.body.dataset.websocketPort;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const host = port ? location.hostname + ":" + port : location.host;
    const url = scheme + "//" + host + live.dataset.livePath;

    let delay = MIN_DELAY;
    let everOpen = false;
    let pending = null;

    function show(state, text) {
      if (!status) return;
      status.hidden = false;
      status.dataset.state = state;
      status.textContent = text;
    }

    // A burst of alerts means a burst of messages: refresh at most every 300 ms,
    // but always after the last one (a trailing throttle never drops the final state).
    function refresh() {
      if (pending) return;
      pending = setTimeout(function () {
        pending = null;
        htmx.trigger(document.body, "incident-changed");
      }, 300);
    }

    function connect() {
      const socket = new WebSocket(url);
      socket.onopen = function () {
        show("connected", "live");
        delay = MIN_DELAY;
        // Changes made while we were disconnected were not pushed: catch up once.
        if (everOpen) refresh();
        everOpen = true;
      };
      socket.onmessage = function (message) {
        const data = JSON.parse(message.data);
        if (data.event === "incident.changed") refresh();
      };
      socket.onclose = function () {
        show("reconnecting", "reconnecting…");
        // Exponential backoff with jitter, so a restarted server is not stormed by every page at once.
        setTimeout(connect, delay * (0.5 + Math.random() / 2));
        delay = Math.min(delay * 2, MAX_DELAY);
      };
    }

    connect();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
