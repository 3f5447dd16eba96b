/*
 * streamrec.js: the browser side of streamrec, with no build step.
 *
 *   <script src="https://collector.example.com/static/streamrec.js"></script>
 *   <script>
 *     StreamRec.init({endpoint: "https://collector.example.com/v1/events", apiKey: "<application key>",
 *                     userId: "<logged-in user id, or leave out for an anonymous id>",
 *                     push: {url: "https://notifier.example.com", token: "<token minted by your backend>"}});
 *     StreamRec.track("add_to_cart", {item_id: "sku-1", price: 19.9});
 *   </script>
 *
 * Tracks page views and sessions (a session ends after 30 idle minutes), batches events, retries failed
 * batches with exponential backoff (honouring Retry-After), hands what is left to navigator.sendBeacon when
 * the page is hidden, and shows pushed recommendations as toasts (Server-Sent Events through EventSource).
 */
(function (global) {
  "use strict";

  var SESSION_KEY = "streamrec.session";
  var ANONYMOUS_KEY = "streamrec.anonymous_id";
  var PENDING_KEY = "streamrec.pending";
  var DEFAULTS = {
    endpoint: "/v1/events",
    apiKey: "",
    userId: null,
    flushIntervalMs: 2000,
    maxBatch: 50,
    sessionTimeoutMs: 30 * 60 * 1000,
    trackPageViews: true,
    retryBaseMs: 1000,
    retryMaxMs: 60000,
    toastMs: 15000,
    push: null // {url, token, onNotification(notification, id)}
  };

  var config = null;
  var queue = [];
  var flushTimer = null;
  var retryTimer = null;
  var backoffMs = 0;
  var sending = false;
  var source = null;
  var listeners = {};

  // --- small helpers -------------------------------------------------------------------------------
  function newId() {
    if (global.crypto && global.crypto.randomUUID) return global.crypto.randomUUID().replace(/-/g, "");
    var out = "";
    for (var i = 0; i < 32; i++) out += Math.floor(Math.random() * 16).toString(16);
    return out;
  }

  function load(key) {
    try {
      var raw = global.localStorage.getItem(key);
      return raw ? JSON.parse(raw) : null;
    } catch (e) {
      return null; // storage disabled or full: the snippet still works, without persistence
    }
  }

  function save(key, value) {
    try {
      if (value === null) global.localStorage.removeItem(key);
      else global.localStorage.setItem(key, JSON.stringify(value));
    } catch (e) { /* see load */ }
  }

  function emit(name, payload) {
    (listeners[name] || []).forEach(function (fn) {
      try { fn(payload); } catch (e) { global.console && console.error(e); }
    });
  }

  function userId() {
    if (config.userId) return String(config.userId);
    var anonymous = load(ANONYMOUS_KEY);
    if (!anonymous) {
      anonymous = "anon-" + newId();
      save(ANONYMOUS_KEY, anonymous);
    }
    return anonymous;
  }

  function deviceClass() {
    var width = global.innerWidth || 1024;
    return width < 768 ? "mobile" : width < 1100 ? "tablet" : "desktop";
  }

  function clean(event) {
    Object.keys(event).forEach(function (k) {
      if (event[k] === undefined || event[k] === null || event[k] === "") delete event[k];
    });
    return event;
  }

  function build(type, props, sessionId) {
    var event = {};
    Object.keys(props || {}).forEach(function (k) { event[k] = props[k]; });
    event.type = type;
    event.event_id = newId(); // set here, so a retried batch is recognised downstream as the same events
    event.user_id = userId();
    event.session_id = sessionId;
    event.ts = new Date().toISOString();
    return clean(event);
  }

  // --- sessions ------------------------------------------------------------------------------------
  function currentSession() {
    var now = Date.now();
    var session = load(SESSION_KEY);
    if (!session || session.userId !== userId() || now - session.lastSeen > config.sessionTimeoutMs) {
      session = {id: newId(), userId: userId(), lastSeen: now};
      save(SESSION_KEY, session);
      enqueue(build("session_start", {referrer: global.document.referrer, device: deviceClass()}, session.id));
    } else {
      session.lastSeen = now;
      save(SESSION_KEY, session);
    }
    return session.id;
  }

  // --- batching and delivery -----------------------------------------------------------------------
  function enqueue(event) {
    queue.push(event);
    if (queue.length >= config.maxBatch) flush();
    else if (!flushTimer) flushTimer = setTimeout(function () { flushTimer = null; flush(); }, config.flushIntervalMs);
  }

  function retryLater(batch, retryAfterHeader) {
    queue = batch.concat(queue);
    backoffMs = backoffMs ? Math.min(backoffMs * 2, config.retryMaxMs) : config.retryBaseMs;
    var delay = backoffMs * (0.8 + Math.random() * 0.4); // jitter spreads a crowd of retrying pages
    var retryAfter = parseInt(retryAfterHeader || "", 10);
    if (retryAfter > 0) delay = Math.max(delay, retryAfter * 1000);
    emit("retry", {events: batch.length, delayMs: Math.round(delay)});
    retryTimer = setTimeout(function () { retryTimer = null; flush(); }, delay);
  }

  function flush() {
    if (flushTimer) { clearTimeout(flushTimer); flushTimer = null; }
    if (sending || retryTimer || !queue.length) return;
    var batch = queue.splice(0, config.maxBatch);
    sending = true;
    global.fetch(config.endpoint, {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-API-Key": config.apiKey},
      body: JSON.stringify({events: batch}),
      keepalive: true
    }).then(function (response) {
      sending = false;
      if (response.status === 202) {
        backoffMs = 0;
        emit("sent", batch);
        if (queue.length) flush();
      } else if (response.status === 408 || response.status === 429 || response.status >= 500) {
        retryLater(batch, response.headers.get("Retry-After"));
      } else {
        // Another 4xx will fail the same way again: drop the batch, but loudly.
        response.text().then(function (body) {
          global.console && console.warn("streamrec: batch rejected", response.status, body);
          emit("rejected", {status: response.status, body: body, events: batch});
        });
        if (queue.length) flush();
      }
    }, function () {
      sending = false; // network error: the collector is unreachable
      retryLater(batch, null);
    });
  }

  function flushOnHide() {
    // The page may be gone in a moment: hand everything to the browser. sendBeacon cannot set headers
    // (the key goes in the query) and sends text/plain, which needs no CORS preflight.
    if (!queue.length) return;
    var pending = queue.splice(0);
    var url = config.endpoint + (config.endpoint.indexOf("?") < 0 ? "?" : "&") +
      "api_key=" + encodeURIComponent(config.apiKey);
    var unsent = [];
    for (var i = 0; i < pending.length; i += config.maxBatch) {
      var chunk = pending.slice(i, i + config.maxBatch);
      var queued = global.navigator.sendBeacon &&
        global.navigator.sendBeacon(url, new Blob([JSON.stringify({events: chunk})], {type: "text/plain"}));
      if (!queued) unsent = unsent.concat(chunk);
    }
    // What the browser would not take waits in storage for the next page of this site.
    if (unsent.length) save(PENDING_KEY, (load(PENDING_KEY) || []).concat(unsent).slice(-500));
  }

  // --- push: Server-Sent Events and toasts ------------------------------------------------------------
  function ensureToastStyles() {
    if (global.document.getElementById("streamrec-toast-style")) return;
    var style = global.document.createElement("style");
    style.id = "streamrec-toast-style";
    style.textContent =
      ".streamrec-toasts{position:fixed;right:16px;bottom:16px;display:flex;flex-direction:column;gap:10px;" +
      "z-index:2147483647;max-width:340px;font:14px/1.4 system-ui,sans-serif}" +
      ".streamrec-toast{background:#1d2330;color:#fff;border-radius:10px;padding:12px 14px;" +
      "box-shadow:0 6px 24px rgba(0,0,0,.25);animation:streamrec-in .25s ease-out}" +
      ".streamrec-toast h4{margin:0 0 6px;font-size:14px}.streamrec-toast p{margin:0 0 6px;color:#c9d1e0}" +
      ".streamrec-toast ul{margin:0;padding-left:18px}.streamrec-toast li{margin:2px 0}" +
      "@keyframes streamrec-in{from{transform:translateY(12px);opacity:0}to{transform:none;opacity:1}}";
    global.document.head.appendChild(style);
  }

  function toast(title, text, lines) {
    ensureToastStyles();
    var doc = global.document;
    var box = doc.querySelector(".streamrec-toasts");
    if (!box) {
      box = doc.createElement("div");
      box.className = "streamrec-toasts";
      box.setAttribute("role", "status");
      doc.body.appendChild(box);
    }
    var card = doc.createElement("div");
    card.className = "streamrec-toast";
    var heading = doc.createElement("h4");
    heading.textContent = title; // textContent everywhere: pushed data never becomes markup
    card.appendChild(heading);
    if (text) {
      var para = doc.createElement("p");
      para.textContent = text;
      card.appendChild(para);
    }
    if (lines && lines.length) {
      var list = doc.createElement("ul");
      lines.forEach(function (line) {
        var li = doc.createElement("li");
        li.textContent = line;
        list.appendChild(li);
      });
      card.appendChild(list);
    }
    box.appendChild(card);
    if (config.toastMs > 0) setTimeout(function () { card.remove(); }, config.toastMs);
    return card;
  }

  function defaultRender(notification) {
    toast("Recommended for you", notification.reason,
      notification.items.map(function (item) { return item.item_id; }));
  }

  function subscribe(options) {
    var push = options || config.push;
    if (!push || !push.url || !push.token || !global.EventSource) return null;
    if (source) source.close();
    var url = push.url.replace(/\/$/, "") + "/v1/users/" + encodeURIComponent(userId()) +
      "/notifications/stream?token=" + encodeURIComponent(push.token);
    // EventSource reconnects by itself and sends Last-Event-ID, so nothing queued meanwhile is missed.
    source = new global.EventSource(url);
    source.addEventListener("open", function () { emit("push", {state: "connected"}); });
    source.addEventListener("error", function () {
      emit("push", {state: source.readyState === 2 ? "closed" : "reconnecting"});
    });
    source.addEventListener("notification", function (message) {
      var notification = JSON.parse(message.data);
      (push.onNotification || defaultRender)(notification, message.lastEventId);
      emit("notification", notification);
    });
    return source;
  }

  // --- public API ------------------------------------------------------------------------------------
  var StreamRec = {
    init: function (options) {
      config = {};
      Object.keys(DEFAULTS).forEach(function (k) { config[k] = DEFAULTS[k]; });
      Object.keys(options || {}).forEach(function (k) { config[k] = options[k]; });
      var leftover = load(PENDING_KEY);
      if (leftover && leftover.length) {
        save(PENDING_KEY, null);
        leftover.forEach(enqueue);
      }
      global.addEventListener("pagehide", flushOnHide);
      global.document.addEventListener("visibilitychange", function () {
        if (global.document.visibilityState === "hidden") flushOnHide();
      });
      if (config.trackPageViews) StreamRec.pageView();
      if (config.push) subscribe(config.push);
      return StreamRec;
    },
    track: function (type, props) {
      var event = build(type, props, currentSession());
      enqueue(event);
      return event.event_id;
    },
    pageView: function (props) {
      var merged = {page: global.location.pathname + global.location.search};
      Object.keys(props || {}).forEach(function (k) { merged[k] = props[k]; });
      return StreamRec.track("page_view", merged);
    },
    endSession: function () {
      var session = load(SESSION_KEY);
      if (session) {
        enqueue(build("session_end", {}, session.id));
        save(SESSION_KEY, null);
      }
      flush();
    },
    flush: flush,
    subscribe: subscribe,
    toast: toast,
    on: function (name, fn) { (listeners[name] = listeners[name] || []).push(fn); },
    userId: function () { return userId(); },
    sessionId: function () { var s = load(SESSION_KEY); return s ? s.id : null; },
    pendingEvents: function () { return queue.length; }
  };

  global.StreamRec = StreamRec;
})(window);
