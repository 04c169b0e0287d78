/* perfmonitor dashboard: live panel refresh over a WebSocket, polling fallback.
 *
 * Each panel is a <section class="pm-panel" data-topics="metrics alerts"
 * data-src="partial url">. A live message names a topic; the panels that list
 * it are fetched again through htmx and swapped in place. Without a live
 * connection (no channel layer, socket dropped, no WebSocket) every panel is
 * refreshed every data-poll-seconds, and the status line says so.
 */
(function () {
  "use strict";

  function start() {
    var root = document.getElementById("pm-dashboard");
    if (!root || !window.htmx) { return; }
    var status = document.getElementById("pm-live-status");
    var lastUpdate = document.getElementById("pm-last-update");
    var autoBox = document.getElementById("pm-auto-refresh");
    var refreshButton = document.getElementById("pm-refresh-now");
    var pollMs = Math.max(1, parseFloat(root.dataset.pollSeconds) || 30) * 1000;
    var socket = null;
    var pollTimer = null;
    var retryTimer = null;
    var retries = 0;
    var pending = {};
    var received = 0;

    function autoOn() { return !autoBox || autoBox.checked; }

    function setStatus(state, text) {
      root.dataset.liveState = state;
      status.className = "pm-live pm-live-" + state;
      status.textContent = text;
    }

    function panels(topic) {
      var all = root.querySelectorAll(".pm-panel[data-src]");
      return Array.prototype.filter.call(all, function (el) {
        return !topic || (" " + el.dataset.topics + " ").indexOf(" " + topic + " ") >= 0;
      });
    }

    // Several messages in a burst cost one request per panel, and a panel is fetched at
    // most once per MIN_GAP_MS for metrics (the flusher publishes up to once a second);
    // alert changes show at once.
    var MIN_GAP_MS = Math.max(0, parseFloat(root.dataset.minRefreshSeconds) || 5) * 1000;
    var lastFetch = {};

    function refreshPanel(el, urgent) {
      var id = el.id;
      if (pending[id]) { return; }
      var wait = urgent ? 200 : Math.max(200, (lastFetch[id] || 0) + MIN_GAP_MS - Date.now());
      pending[id] = setTimeout(function () {
        delete pending[id];
        lastFetch[id] = Date.now();
        var current = document.getElementById(id);
        if (current) {
          // The panel is the request's source: htmx keeps one request in flight (and one
          // queued) per source, so panels refreshed together do not cancel each other.
          htmx.ajax("GET", current.dataset.src,
                    { source: "#" + id, target: "#" + id, swap: "outerHTML" });
        }
      }, wait);
    }

    function refreshAll() { panels().forEach(function (el) { refreshPanel(el, true); }); }

    function startPolling(reason) {
      setStatus("polling", "Polling every " + pollMs / 1000 + " s: " + reason);
      if (!pollTimer) {
        pollTimer = setInterval(function () { if (autoOn()) { refreshAll(); } }, pollMs);
      }
    }

    function stopPolling() {
      if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
    }

    function onMessage(event) {
      var msg;
      try { msg = JSON.parse(event.data); } catch (e) { return; }
      if (msg.type === "hello") {
        retries = 0;
        stopPolling();
        setStatus("live", "Live");
      } else if (msg.type === "update") {
        received += 1;
        root.dataset.liveMessages = String(received);
        root.dataset.lastTopic = msg.topic;
        lastUpdate.textContent = "last update " + new Date().toLocaleTimeString() + " (" + msg.topic + ")";
        var urgent = msg.topic === "alerts";
        if (autoOn()) { panels(msg.topic).forEach(function (el) { refreshPanel(el, urgent); }); }
      }
    }

    function connect() {
      if (!("WebSocket" in window)) { startPolling("this browser has no WebSocket"); return; }
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      socket = new WebSocket(scheme + window.location.host + root.dataset.wsPath);
      socket.onmessage = onMessage;
      socket.onclose = function (event) {
        socket = null;
        if (event.code === 4403) {
          setStatus("denied", "Live updates refused: you need the perfmonitor.view_dashboard permission");
          return;
        }
        root.dataset.closeCode = String(event.code);
        startPolling(event.code === 4503 ? "live updates are not available on this server"
                                         : "the live connection dropped (" + event.code +
                                           "), reconnecting");
        // Keep trying, with backoff: the page goes back to live once the layer is back.
        retryTimer = setTimeout(connect, Math.min(60000, 2000 * Math.pow(2, retries++)));
      };
    }

    if (autoBox) {
      autoBox.addEventListener("change", function () {
        root.dataset.autoRefresh = autoBox.checked ? "on" : "off";
        if (autoBox.checked) { refreshAll(); }
      });
    }
    if (refreshButton) { refreshButton.addEventListener("click", refreshAll); }
    // A failed refresh keeps the panel's last content and marks it (data-error="<status>").
    document.body.addEventListener("htmx:responseError", function (event) {
      var target = event.detail.target;
      if (target) { target.setAttribute("data-error", String(event.detail.xhr.status)); }
    });
    root.dataset.autoRefresh = autoOn() ? "on" : "off";
    connect();
    window.addEventListener("beforeunload", function () {
      if (retryTimer) { clearTimeout(retryTimer); }
      if (socket) { socket.onclose = null; socket.close(); }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
