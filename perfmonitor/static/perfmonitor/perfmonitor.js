/*
 * perfmonitor browser client (classic script; exposes window.perfmonitor).
 * perfmonitor.mjs re-exports the same API as an ES module. No build step, no CDN.
 *
 * Vitals follow the web-vitals library: LCP is final at the first input or when the
 * page is hidden; CLS is the largest session window (gap 1 s, max 5 s) of shifts
 * without recent input, reported after FCP; INP is the ~98th percentile interaction
 * from Event Timing (durationThreshold 40 ms; worst of the 10 longest per 50
 * interactions); TTFB is the navigation's responseStart; prerender activationStart
 * is subtracted; after a back/forward-cache restore every metric starts again with a
 * new id. A metric is sent when final; onVital() subscribers also see every change.
 */
(function (global) {
  "use strict";
  if (!global || !global.document || (global.perfmonitor && global.perfmonitor.version)) return;

  var doc = global.document;
  var perf = global.performance;
  var THRESHOLDS = { LCP: [2500, 4000], INP: [200, 500], CLS: [0.1, 0.25], FCP: [1800, 3000],
                     TTFB: [800, 1800], FID: [100, 300] };
  var DEFAULT_WEIGHTS = { LCP: 30, INP: 30, CLS: 15, FCP: 15, TTFB: 10 };
  var MAX_SEND_BYTES = 16 * 1024;      // per sendBeacon call (browsers cap the total in flight)
  var MAX_EVENTS_PER_SEND = 100;
  var MAX_QUEUE = 500;                 // events kept while nothing can be sent
  var MAX_ERRORS_PER_PAGE = 30;
  var MAX_SAME_ERROR = 5;

  var state = {
    config: null, started: false, sampled: true, sessionId: "", queue: [], timer: 0, due: 0,
    vitals: {}, vitalListeners: [], scoreListeners: [], hiddenCallbacks: [],
    fcpCallbacks: [], restored: false, errorCount: 0, errorSeen: {}, pendingApi: {},
    pageReported: false, originalFetch: global.fetch ? global.fetch.bind(global) : null
  };

  // -- small helpers -----------------------------------------------------------------------
  function now() { return perf && perf.now ? perf.now() : Date.now(); }
  function round(value, digits) { var f = Math.pow(10, digits); return Math.round(value * f) / f; }
  function safe(fn) {
    return function () {
      try { return fn.apply(this, arguments); } catch (e) { /* never break the host page */ }
    };
  }
  function runOnce(fn) {
    var done = false;
    return function () { if (!done) { done = true; fn.apply(this, arguments); } };
  }
  function uuid() {
    var c = global.crypto;
    if (c && c.randomUUID) return c.randomUUID();
    var b = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(b);
    else for (var i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); });
    return h.slice(0, 4).join("") + "-" + h.slice(4, 6).join("") + "-" + h.slice(6, 8).join("") +
      "-" + h.slice(8, 10).join("") + "-" + h.slice(10).join("");
  }
  function utf8Length(text) {
    var n = 0;
    for (var i = 0; i < text.length; i++) {
      var c = text.charCodeAt(i);
      n += c < 128 ? 1 : c < 2048 ? 2 : (c >= 0xd800 && c < 0xdc00) ? (i++, 4) : 3;
    }
    return n;
  }
  function storage() { try { return global.sessionStorage; } catch (e) { return null; } }

  /** A URL without fragment and without query parameters that are not allow-listed. */
  function cleanUrl(raw) {
    try {
      var url = new URL(raw, global.location.href);
      var allowed = (state.config && state.config.queryAllowlist) || [];
      var kept = new URLSearchParams();
      url.searchParams.forEach(function (value, key) {
        if (allowed.indexOf(key) >= 0) kept.append(key, value);
      });
      var query = kept.toString();
      return url.origin + url.pathname + (query ? "?" + query : "");
    } catch (e) { return ""; }
  }
  function currentPage() { return cleanUrl(global.location.href); }
  function selector(el) {
    if (!el || !el.tagName) return undefined;
    var name = el.tagName.toLowerCase();
    if (el.id) return name + "#" + el.id;
    var cls = typeof el.className === "string" ? el.className.trim().split(/\s+/)[0] : "";
    return cls ? name + "." + cls : name;
  }

  // -- sending -----------------------------------------------------------------------------
  function enqueue(event, urgent) {
    event.ts = Date.now();
    event.page = currentPage();
    if (!state.sampled) return;
    if (state.queue.length >= MAX_QUEUE) state.queue.shift();
    state.queue.push(event);
    if (!state.started) return;
    if (state.queue.length >= state.config.maxBatchEvents) flush();
    else schedule(urgent ? 250 : state.config.flushInterval);
  }

  function schedule(delay) {
    var due = Date.now() + delay;
    if (state.timer && state.due <= due) return;  // an earlier send is already planned
    clearTimeout(state.timer);
    state.due = due;
    state.timer = setTimeout(flush, delay);
  }

  /** Send everything queued, in sends of at most 16 KiB and 100 events. */
  function flush() {
    clearTimeout(state.timer);
    state.timer = 0;
    if (!state.started || !state.queue.length) return;
    var events = state.queue.splice(0, state.queue.length);
    var page = currentPage();
    var head = { session_id: state.sessionId, sample_rate: state.config.sampleRate, page: page };
    if (state.config.writeKey) head.write_key = state.config.writeKey;
    var prefix = JSON.stringify(head).slice(0, -1) + ',"events":[';
    var budget = MAX_SEND_BYTES - utf8Length(prefix) - 2;
    var parts = [], size = 0;
    for (var i = 0; i < events.length; i++) {
      var event = events[i];
      if (event.page === page) delete event.page;  // the batch's page applies
      var text = JSON.stringify(event);
      var bytes = utf8Length(text) + 1;
      if (bytes > budget) continue;  // cannot be sent in one piece: dropped
      if (parts.length && (size + bytes > budget || parts.length >= MAX_EVENTS_PER_SEND)) {
        post(prefix + parts.join(",") + "]}");
        parts = []; size = 0;
      }
      parts.push(text); size += bytes;
    }
    if (parts.length) post(prefix + parts.join(",") + "]}");
  }

  function post(body) {
    var url = state.config.collectUrl;
    var sent = false;
    try {
      if (global.navigator && global.navigator.sendBeacon) sent = global.navigator.sendBeacon(url, body);
    } catch (e) { sent = false; }
    if (!sent && state.originalFetch) {
      try {
        state.originalFetch(url, { method: "POST", body: body, keepalive: true,
          credentials: "same-origin", headers: { "Content-Type": "text/plain" } })
          .catch(function () {});
      } catch (e) { /* nothing more to try */ }
    }
  }

  function isCollectUrl(url) {
    try {
      return state.config && new URL(url, global.location.href).pathname ===
        new URL(state.config.collectUrl, global.location.href).pathname;
    } catch (e) { return false; }
  }

  // -- page lifecycle ----------------------------------------------------------------------
  function onHidden(cb) { state.hiddenCallbacks.push(cb); }
  var handleHidden = safe(function () {
    var callbacks = state.hiddenCallbacks.slice();
    for (var i = 0; i < callbacks.length; i++) { try { callbacks[i](); } catch (e) { /* next */ } }
    flush();
  });
  function onBFCacheRestore(cb) {
    global.addEventListener("pageshow", safe(function (event) { if (event.persisted) cb(event); }),
      true);
  }
  function whenActivated(cb) {
    if (doc.prerendering) doc.addEventListener("prerenderingchange", function () { cb(); }, true);
    else cb();
  }
  function whenReady(cb) {
    if (doc.prerendering) whenActivated(function () { whenReady(cb); });
    else if (doc.readyState !== "complete") global.addEventListener("load", function () { whenReady(cb); }, true);
    else setTimeout(cb, 0);
  }
  function whenIdle(cb) {
    var once = runOnce(cb);
    if (doc.visibilityState === "hidden") { once(); return; }
    (global.requestIdleCallback || setTimeout)(once);
    onHidden(once);
  }
  function doubleRAF(cb) {
    requestAnimationFrame(function () { requestAnimationFrame(function () { cb(); }); });
  }

  var firstHiddenTime = -1;
  function getFirstHiddenTime() {
    if (firstHiddenTime < 0) {
      firstHiddenTime = doc.visibilityState === "hidden" && !doc.prerendering ? 0 : Infinity;
      var update = function (event) {
        if (doc.visibilityState === "hidden" && firstHiddenTime > -1) {
          firstHiddenTime = event.type === "visibilitychange" ? event.timeStamp : 0;
          doc.removeEventListener("visibilitychange", update, true);
          doc.removeEventListener("prerenderingchange", update, true);
        }
      };
      doc.addEventListener("visibilitychange", update, true);
      doc.addEventListener("prerenderingchange", update, true);
      onBFCacheRestore(function () { firstHiddenTime = Infinity; });
    }
    return firstHiddenTime;
  }

  // -- vitals ------------------------------------------------------------------------------
  function navigationEntry() {
    var entry = perf && perf.getEntriesByType && perf.getEntriesByType("navigation")[0];
    return entry && entry.responseStart > 0 && entry.responseStart < now() ? entry : null;
  }
  function activationStart() {
    var entry = navigationEntry();
    return (entry && entry.activationStart) || 0;
  }
  function navigationType() {
    if (state.restored) return "back-forward-cache";
    var entry = navigationEntry();
    if (!entry) return "navigate";
    if (doc.prerendering || activationStart() > 0) return "prerender";
    if (doc.wasDiscarded) return "restore";
    return entry.type ? entry.type.replace(/_/g, "-") : "navigate";
  }
  function rate(name, value) {
    var t = THRESHOLDS[name];
    return value <= t[0] ? "good" : value <= t[1] ? "needs-improvement" : "poor";
  }
  function newMetric(name, value) {
    return { name: name, value: value === undefined ? -1 : value, rating: "good", delta: 0,
             id: "v1-" + Date.now() + "-" + (Math.floor(Math.random() * 8999999999999) + 1e12),
             navigationType: navigationType(), entries: [], target: undefined };
  }

  /** Like web-vitals' bindReporter: `final` reports are sent, every change is shown locally. */
  function reporter(metric) {
    var sentValue, shownValue;
    return function (final) {
      if (metric.value < 0) return;
      metric.rating = rate(metric.name, metric.value);
      var send = final && (sentValue === undefined || metric.value !== sentValue);
      if (send) { metric.delta = metric.value - (sentValue || 0); sentValue = metric.value; }
      if (send || metric.value !== shownValue) { shownValue = metric.value; publish(metric, !!send); }
      if (send) sendVital(metric);
    };
  }

  function sendVital(metric) {
    var event = { type: "vital", name: metric.name, id: metric.id,
                  value: round(metric.value, metric.name === "CLS" ? 4 : 1),
                  navigation_type: metric.navigationType };
    if (metric.target) event.target = metric.target;
    enqueue(event);
  }

  function publish(metric, final) {
    var snapshot = { name: metric.name, value: metric.value, rating: metric.rating,
                     delta: metric.delta, id: metric.id, navigationType: metric.navigationType,
                     final: final };
    state.vitals[metric.name] = snapshot;
    state.vitalListeners.slice().forEach(function (cb) { try { cb(snapshot); } catch (e) {} });
    var score = getScore();
    state.scoreListeners.slice().forEach(function (cb) { try { cb(score); } catch (e) {} });
  }

  function observe(type, callback, options) {
    try {
      if (PerformanceObserver.supportedEntryTypes.indexOf(type) < 0) return null;
      var po = new PerformanceObserver(safe(function (list) { callback(list.getEntries()); }));
      var init = { type: type, buffered: true };
      for (var key in options || {}) init[key] = options[key];
      po.observe(init);
      return po;
    } catch (e) { return null; }
  }

  function observeFCP() {
    whenActivated(function () {
      var metric = newMetric("FCP"), report = reporter(metric);
      var po = observe("paint", function (entries) {
        entries.forEach(function (entry) {
          if (entry.name !== "first-contentful-paint") return;
          po.disconnect();
          if (entry.startTime < getFirstHiddenTime()) {
            metric.value = Math.max(entry.startTime - activationStart(), 0);
            report(true);
            state.fcpCallbacks.forEach(function (cb) { cb(); });
          }
        });
      });
      if (!po) return;
      onBFCacheRestore(function (event) {
        metric = newMetric("FCP"); report = reporter(metric);
        doubleRAF(function () { metric.value = now() - event.timeStamp; report(true); });
      });
    });
  }

  function observeLCP() {
    whenActivated(function () {
      var metric = newMetric("LCP"), report = reporter(metric), finished = false;
      var handle = function (entries) {
        var entry = entries[entries.length - 1];
        if (finished || !entry || entry.startTime >= getFirstHiddenTime()) return;
        metric.value = Math.max(entry.startTime - activationStart(), 0);
        metric.target = selector(entry.element);
        report(false);
      };
      var po = observe("largest-contentful-paint", handle);
      if (!po) return;
      var stop = runOnce(function () {
        handle(po.takeRecords());
        po.disconnect();
        finished = true;
        report(true);
      });
      ["keydown", "click"].forEach(function (type) {
        global.addEventListener(type, function () { whenIdle(stop); }, { once: true, capture: true });
      });
      onHidden(stop);
      onBFCacheRestore(function (event) {
        metric = newMetric("LCP"); report = reporter(metric);
        doubleRAF(function () { metric.value = now() - event.timeStamp; report(true); });
      });
    });
  }

  function observeCLS() {
    var start = runOnce(function () {
      var metric = newMetric("CLS", 0), report = reporter(metric);
      var sessionValue = 0, sessionEntries = [];
      var handle = function (entries) {
        entries.forEach(function (entry) {
          if (entry.hadRecentInput) return;
          var first = sessionEntries[0], last = sessionEntries[sessionEntries.length - 1];
          if (sessionValue && entry.startTime - last.startTime < 1000 &&
              entry.startTime - first.startTime < 5000) {
            sessionValue += entry.value; sessionEntries.push(entry);
          } else {
            sessionValue = entry.value; sessionEntries = [entry];
          }
        });
        if (sessionValue > metric.value) { metric.value = sessionValue; report(false); }
      };
      var po = observe("layout-shift", handle);
      if (!po) return;
      onHidden(function () { handle(po.takeRecords()); report(true); });
      onBFCacheRestore(function () {
        sessionValue = 0; sessionEntries = [];
        metric = newMetric("CLS", 0); report = reporter(metric);
        doubleRAF(function () { report(false); });
      });
      setTimeout(function () { report(false); }, 0);
    });
    state.fcpCallbacks.push(start);  // web-vitals starts CLS once FCP is reported
  }

  // INP: the longest interactions, per interactionId (web-vitals' estimate of p98).
  var interactions = { longest: [], byId: {}, minId: Infinity, maxId: 0, count: 0, before: 0 };
  function interactionCount() {
    return "interactionCount" in perf ? perf.interactionCount : interactions.count;
  }
  function countInteractions() {
    if ("interactionCount" in perf) return;
    observe("event", function (entries) {
      entries.forEach(function (e) {
        if (!e.interactionId) return;
        interactions.minId = Math.min(interactions.minId, e.interactionId);
        interactions.maxId = Math.max(interactions.maxId, e.interactionId);
        // Chrome assigns interaction ids in steps of 7.
        interactions.count = (interactions.maxId - interactions.minId) / 7 + 1;
      });
    }, { durationThreshold: 0 });
  }
  function processInteraction(entry) {
    var list = interactions.longest, shortest = list[list.length - 1];
    var existing = interactions.byId[entry.interactionId];
    if (!existing && list.length >= 10 && entry.duration <= shortest.latency) return;
    if (existing) {
      if (entry.duration > existing.latency) { existing.entries = [entry]; existing.latency = entry.duration; }
    } else {
      var item = { id: entry.interactionId, latency: entry.duration, entries: [entry] };
      interactions.byId[item.id] = item;
      list.push(item);
    }
    list.sort(function (a, b) { return b.latency - a.latency; });
    list.splice(10).forEach(function (i) { delete interactions.byId[i.id]; });
  }
  function estimateP98() {
    var list = interactions.longest;
    var index = Math.min(list.length - 1,
      Math.floor((interactionCount() - interactions.before) / 50));
    return list[index];
  }
  function observeINP() {
    if (!("PerformanceEventTiming" in global) ||
        !("interactionId" in global.PerformanceEventTiming.prototype)) return;
    whenActivated(function () {
      countInteractions();
      var metric = newMetric("INP"), report = reporter(metric);
      var handle = function (entries) {
        entries.forEach(function (entry) {
          if (entry.interactionId) processInteraction(entry);
          if (entry.entryType === "first-input" && !interactions.longest.some(function (i) {
            return i.entries.some(function (p) {
              return entry.duration === p.duration && entry.startTime === p.startTime;
            });
          })) processInteraction(entry);
        });
        var inp = estimateP98();
        if (inp && inp.latency !== metric.value) {
          metric.value = inp.latency;
          metric.target = selector(inp.entries[0].target);
          report(false);
        }
      };
      var po = observe("event", handle, { durationThreshold: 40 });
      if (!po) return;
      try { po.observe({ type: "first-input", buffered: true }); } catch (e) {}
      onHidden(function () { handle(po.takeRecords()); report(true); });
      onBFCacheRestore(function () {
        interactions.longest = []; interactions.byId = {};
        interactions.before = interactionCount();
        metric = newMetric("INP"); report = reporter(metric);
      });
    });
  }

  function observeTTFB() {
    var metric = newMetric("TTFB"), report = reporter(metric);
    whenReady(function () {
      var entry = navigationEntry();
      if (!entry) return;
      metric.value = Math.max(entry.responseStart - activationStart(), 0);
      report(true);
    });
    onBFCacheRestore(function () {
      metric = newMetric("TTFB", 0); report = reporter(metric); report(true);
    });
  }

  function observeFID() {
    whenActivated(function () {
      var metric = newMetric("FID"), report = reporter(metric);
      var po = observe("first-input", function (entries) {
        entries.forEach(function (entry) {
          if (entry.startTime >= getFirstHiddenTime()) return;
          metric.value = entry.processingStart - entry.startTime;
          po.disconnect();
          report(true);
        });
      });
      if (po) onBFCacheRestore(function () { metric = newMetric("FID"); report = reporter(metric); });
    });
  }

  // -- score (DESIGN §Scores: Lighthouse log-normal curve, weighted mean) --------------------
  function erf(x) {  // Abramowitz & Stegun 7.1.26, |error| < 1.5e-7
    var sign = x < 0 ? -1 : 1;
    x = Math.abs(x);
    var t = 1 / (1 + 0.3275911 * x);
    var y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t +
                 0.254829592) * t * Math.exp(-x * x);
    return sign * y;
  }
  function vitalScore(name, value) {
    var t = THRESHOLDS[name];
    if (value <= 0) return 1;
    var s = (1 - erf(Math.log(value / t[1]) * 0.9061938 / Math.log(t[1] / t[0]))) / 2;
    return Math.min(1, Math.max(0, s));
  }
  /** This page's front-end score (0-100) from the vitals seen so far, or null. */
  function getScore() {
    var weights = (state.config && state.config.vitalWeights) || DEFAULT_WEIGHTS;
    var total = 0, weighted = 0, parts = {};
    Object.keys(weights).forEach(function (name) {
      var vital = state.vitals[name];
      if (!vital || !THRESHOLDS[name]) return;
      var s = vitalScore(name, vital.value);
      parts[name] = { value: vital.value, rating: vital.rating, score: Math.round(s * 100),
                      weight: weights[name] };
      total += weights[name]; weighted += weights[name] * s;
    });
    if (!total) return null;
    return { score: Math.round(100 * weighted / total), vitals: parts,
             method: "weighted mean of per-vital log-normal scores (Lighthouse curves)" };
  }

  // -- API calls ---------------------------------------------------------------------------
  function recordApi(rawUrl, method, status, duration, size, cache, failed) {
    var absolute;
    try { absolute = new URL(rawUrl, global.location.href).href; } catch (e) { return; }
    var event = { type: "api", url: cleanUrl(absolute), method: method, status: status,
                  duration: round(Math.max(duration, 0), 1) };
    if (size >= 0 && isFinite(size)) event.size = size;
    if (cache !== undefined) event.cache = cache;
    if (failed) event.failed = true;
    // Resource Timing knows sizes and cache hits once the body is read; fill them in if
    // the event has not been sent yet.
    state.pendingApi[absolute] = event;
    enqueue(event);
  }
  function watchApiResources() {
    observe("resource", function (entries) {
      entries.forEach(function (entry) {
        var event = state.pendingApi[entry.name];
        if (!event) return;
        delete state.pendingApi[entry.name];
        if (event.size === undefined && entry.encodedBodySize > 0) event.size = entry.encodedBodySize;
        if (event.cache === undefined && entry.decodedBodySize > 0) event.cache = entry.transferSize === 0;
      });
    });
  }
  function headerCache(headers) {
    var value = (headers.get("x-cache") || headers.get("cf-cache-status") || "").toLowerCase();
    return value ? value.indexOf("hit") >= 0 : undefined;
  }
  function wrapFetch() {
    var original = global.fetch;
    if (!original || original.__perfmonitor) return;
    var wrapped = function (input, init) {
      var url, method;
      try {
        url = typeof input === "string" ? input : (input && input.url) || String(input);
        method = String((init && init.method) || (input && input.method) || "GET").toUpperCase();
      } catch (e) { url = ""; }
      if (!url || isCollectUrl(url)) return original.apply(this, arguments);
      var start = now();
      var promise = original.apply(this, arguments);
      promise.then(safe(function (response) {
        var length = parseInt(response.headers.get("content-length"), 10);
        recordApi(url, method, response.status, now() - start, isNaN(length) ? undefined : length,
          headerCache(response.headers), false);
      }), safe(function () { recordApi(url, method, 0, now() - start, undefined, undefined, true); }));
      return promise;
    };
    wrapped.__perfmonitor = true;
    global.fetch = wrapped;
  }
  function wrapXHR() {
    var XHR = global.XMLHttpRequest;
    if (!XHR || XHR.prototype.__perfmonitor) return;
    var open = XHR.prototype.open, send = XHR.prototype.send;
    XHR.prototype.__perfmonitor = true;
    XHR.prototype.open = function (method, url) {
      try { this.__pm = { method: String(method || "GET").toUpperCase(), url: String(url) }; } catch (e) {}
      return open.apply(this, arguments);
    };
    XHR.prototype.send = function () {
      var info = this.__pm, xhr = this;
      if (info && !isCollectUrl(info.url)) {
        var start = now();
        xhr.addEventListener("loadend", safe(function () {
          var length = parseInt(xhr.getResponseHeader("content-length"), 10);
          recordApi(info.url, info.method, xhr.status, now() - start,
            isNaN(length) ? undefined : length, undefined, xhr.status === 0);
        }));
      }
      return send.apply(this, arguments);
    };
  }

  // -- errors, resources, memory -----------------------------------------------------------
  function recordError(error) {
    var key = error.error_type + ":" + error.message;
    state.errorSeen[key] = (state.errorSeen[key] || 0) + 1;
    if (state.errorCount >= MAX_ERRORS_PER_PAGE || state.errorSeen[key] > MAX_SAME_ERROR) return;
    state.errorCount++;
    var event = { type: "error", message: String(error.message || "Unknown error").slice(0, 1000),
                  error_type: String(error.error_type || "Error").slice(0, 100), kind: error.kind };
    if (error.source) event.source = cleanUrl(error.source);
    if (error.line >= 0) event.line = error.line;
    if (error.column >= 0) event.column = error.column;
    if (error.stack) event.stack = String(error.stack).slice(0, 4000);
    enqueue(event, true);
  }
  function watchErrors() {
    global.addEventListener("error", safe(function (event) {
      if (event.target && event.target !== global && event.target.nodeType) return;  // a resource
      var err = event.error;
      recordError({ message: (err && err.message) || event.message || "Script error",
                    error_type: (err && err.name) || "Error", source: event.filename,
                    line: event.lineno, column: event.colno, stack: err && err.stack,
                    kind: "error" });
    }), true);
    global.addEventListener("unhandledrejection", safe(function (event) {
      var reason = event.reason, isError = reason instanceof Error;
      var message;
      try { message = isError ? reason.message : JSON.stringify(reason); } catch (e) { message = String(reason); }
      recordError({ message: message || String(reason), stack: isError && reason.stack,
                    error_type: isError ? reason.name : "UnhandledRejection",
                    kind: "unhandledrejection" });
    }));
  }
  function resourceKind(entry) {
    var type = entry.contentType || "", path = "";
    try { path = new URL(entry.name).pathname; } catch (e) {}
    if (/javascript|ecmascript/.test(type) || entry.initiatorType === "script" || /\.m?js$/.test(path)) return "js";
    if (/css/.test(type) || entry.initiatorType === "css" || /\.css$/.test(path)) return "css";
    return "";
  }
  function reportPage() {  // once per page load, at the first hide
    if (state.pageReported) return;
    state.pageReported = true;
    if (perf && perf.getEntriesByType && state.config.captureResources) {
      var totals = { js_transfer: 0, css_transfer: 0, js_decoded: 0, css_decoded: 0, total_transfer: 0 };
      var entries = perf.getEntriesByType("resource");
      entries.forEach(function (entry) {
        var kind = resourceKind(entry);
        totals.total_transfer += entry.transferSize || 0;
        if (kind) {
          totals[kind + "_transfer"] += entry.transferSize || 0;
          totals[kind + "_decoded"] += entry.decodedBodySize || 0;
        }
      });
      var nav = navigationEntry();
      if (nav) totals.total_transfer += nav.transferSize || 0;
      totals.type = "resource"; totals.count = entries.length;
      enqueue(totals);
    }
    var memory = perf && perf.memory;
    if (memory && memory.usedJSHeapSize && state.config.captureMemory) {
      enqueue({ type: "memory", used: memory.usedJSHeapSize, total: memory.totalJSHeapSize,
                limit: memory.jsHeapSizeLimit });
    }
  }

  // -- public API --------------------------------------------------------------------------
  function recordRender(name, duration, meta) {
    var event = { type: "render", component: String(name).slice(0, 255),
                  duration: round(Math.max(duration, 0), 2) };
    if (meta && meta.phase) event.phase = String(meta.phase).slice(0, 32);
    enqueue(event);
  }
  /** trackRender(name, fn[, meta]) times fn; trackRender(name, ms[, meta]) records a time. */
  function trackRender(name, fn, meta) {
    if (typeof fn !== "function") { recordRender(name, Number(fn) || 0, meta); return undefined; }
    var start = now();
    try { return fn(); } finally { recordRender(name, now() - start, meta); }
  }
  function smallMetadata(meta) {
    if (!meta) return undefined;
    try { var text = JSON.stringify(meta); return text.length <= 2000 ? JSON.parse(text) : undefined; }
    catch (e) { return undefined; }
  }
  /** Record any named value (custom series). */
  function track(name, value, meta) {
    var event = { type: "custom", name: String(name).slice(0, 255), value: Math.max(Number(value) || 0, 0) };
    if (meta && meta.unit) event.unit = String(meta.unit).slice(0, 16);
    if (meta && meta.error) event.error = true;
    var small = smallMetadata(meta && meta.metadata);
    if (small) event.metadata = small;
    enqueue(event);
  }
  /** Time an async operation: trackAsync(name, () => promise, metadata) -> that promise. */
  function trackAsync(name, fn, metadata) {
    var start = now();
    var done = function (failed) {
      track(name, round(now() - start, 2), { unit: "ms", error: failed, metadata: metadata });
    };
    var promise;
    try { promise = Promise.resolve(typeof fn === "function" ? fn() : fn); }
    catch (err) { done(true); return Promise.reject(err); }
    return promise.then(function (value) { done(false); return value; },
                        function (err) { done(true); throw err; });
  }

  function journey(action, id, fields) {
    var event = { type: "journey", action: action, journey_id: String(id).slice(0, 64) };
    for (var key in fields) if (fields[key] !== undefined && fields[key] !== null) event[key] = fields[key];
    if (event.metadata) event.metadata = smallMetadata(event.metadata);
    if (event.reason) event.reason = String(event.reason).slice(0, 255);
    enqueue(event, true);
    return event.journey_id;
  }
  var journeys = {
    start: function (journeyType, metadata) {
      return journey("start", uuid(), { journey_type: String(journeyType), metadata: metadata });
    },
    step: function (id, step, metadata) { journey("step", id, { step: String(step), metadata: metadata }); },
    complete: function (id, metadata) { journey("complete", id, { metadata: metadata }); },
    // fail(id, step, reason[, metadata]) as in Python; fail(id, reason[, metadata]) also works
    // (the server then names the last step reached).
    fail: function (id, stepOrReason, reason, metadata) {
      if (typeof reason === "string") {
        journey("fail", id, { step: String(stepOrReason).slice(0, 128), reason: reason, metadata: metadata });
      } else {
        journey("fail", id, { reason: stepOrReason, metadata: reason });
      }
    },
    abandon: function (id, reason, metadata) { journey("abandon", id, { reason: reason, metadata: metadata }); }
  };

  function subscribe(list, cb, replay) {
    list.push(cb);
    replay();
    return function () { var i = list.indexOf(cb); if (i >= 0) list.splice(i, 1); };
  }
  /** onVital(cb): every change of every vital (final: true when it is the sent value). */
  function onVital(cb) {
    return subscribe(state.vitalListeners, cb, function () {
      Object.keys(state.vitals).forEach(function (name) { try { cb(state.vitals[name]); } catch (e) {} });
    });
  }
  function onScore(cb) {
    return subscribe(state.scoreListeners, cb, function () {
      var score = getScore();
      if (score) { try { cb(score); } catch (e) {} }
    });
  }
  function getVitals() {
    var copy = {};
    Object.keys(state.vitals).forEach(function (name) { copy[name] = state.vitals[name]; });
    return copy;
  }

  function decideSampling(rate) {
    var store = storage(), key = "perfmonitor.sampled";
    try {
      var saved = store && JSON.parse(store.getItem(key) || "null");
      if (saved && saved.rate === rate) return saved.sampled;
      var sampled = Math.random() < rate;
      if (store) store.setItem(key, JSON.stringify({ rate: rate, sampled: sampled }));
      return sampled;
    } catch (e) { return Math.random() < rate; }
  }
  function sessionId() {
    var store = storage(), key = "perfmonitor.session";
    try {
      var id = store && store.getItem(key);
      if (!id) { id = uuid(); if (store) store.setItem(key, id); }
      return id;
    } catch (e) { return uuid(); }
  }

  /** Start reporting. Config: collectUrl, sampleRate, writeKey, queryAllowlist, flushInterval. */
  function init(config) {
    if (state.started) return api;
    var c = {
      collectUrl: "/perfmonitor/api/v1/collect", sampleRate: 1, writeKey: null,
      queryAllowlist: [], flushInterval: 5000, maxBatchEvents: 50, captureApi: true,
      captureErrors: true, captureResources: true, captureMemory: true, vitalWeights: null
    };
    for (var key in config || {}) c[key] = config[key];
    c.sampleRate = Math.min(1, Math.max(0, Number(c.sampleRate)));
    if (isNaN(c.sampleRate)) c.sampleRate = 1;
    state.config = c;
    state.sessionId = sessionId();
    state.sampled = decideSampling(c.sampleRate);
    state.started = true;
    doc.addEventListener("visibilitychange", function () {
      if (doc.visibilityState === "hidden") handleHidden();
    }, true);
    global.addEventListener("pagehide", handleHidden, true);
    onBFCacheRestore(function () { state.restored = true; state.pageReported = false; });
    onHidden(safe(reportPage));
    getFirstHiddenTime();
    safe(observeFCP)(); safe(observeCLS)(); safe(observeLCP)(); safe(observeINP)();
    safe(observeTTFB)(); safe(observeFID)();
    if (state.sampled) {
      if (c.captureApi) { safe(wrapFetch)(); safe(wrapXHR)(); safe(watchApiResources)(); }
      if (c.captureErrors) safe(watchErrors)();
    }
    if (!state.sampled) state.queue.length = 0;  // events recorded before init
    else if (state.queue.length) schedule(0);
    return api;
  }

  var api = {
    version: "1", init: init, trackRender: trackRender, trackAsync: trackAsync, track: track,
    journeys: journeys, onVital: onVital, getVitals: getVitals, getScore: getScore,
    onScore: onScore, flush: safe(flush), rate: rate,
    get sessionId() { return state.sessionId; }, get sampled() { return state.sampled; }
  };
  global.perfmonitor = api;

  // Auto-init from {% perfmonitor_script %} (a JSON script element) or window.perfmonitorConfig.
  safe(function () {
    var element = doc.getElementById("perfmonitor-config");
    if (element) init(JSON.parse(element.textContent));
    else if (global.perfmonitorConfig) init(global.perfmonitorConfig);
  })();
})(typeof window !== "undefined" ? window : undefined);
