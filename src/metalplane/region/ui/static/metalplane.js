/* metalplane web UI: the one script. Pages work without it; it adds
   live updates (server-sent events), copy buttons and nothing else. */
(function () {
  "use strict";

  var stateEl = document.getElementById("live-state");
  function setState(state, text) {
    if (!stateEl) return;
    stateEl.dataset.state = state;
    stateEl.textContent = text;
  }

  // -- Copy buttons: <button data-copy="ID"> copies the text of #ID and says how it went
  // in the status beside it (the button's own name stays put: it is its accessible name).
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    var ok = document.execCommand("copy");
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.dataset.copy);
    var status = document.querySelector("[data-copy-status='" + button.dataset.copy + "']");
    function say(text) { if (status) status.textContent = text; }
    copyText(source.textContent.trim()).then(function () {
      say("Copied");
    }, function () {
      say("Select the text and copy it");
    });
    setTimeout(function () { say(""); }, 2000);
  });

  // A form someone is typing in is not replaced by a live refresh.
  document.addEventListener("input", function (event) {
    if (event.target.form) event.target.form.dataset.dirty = "1";
  });

  // -- Live parts: <section data-live-part="TOPIC" data-src="URL?part=...">
  var topics = (document.body.dataset.liveTopics || "").split(" ").filter(Boolean);
  if (!topics.length || !window.EventSource) return;

  var busy = new Map();
  function refresh(part) {
    var state = busy.get(part);
    if (state) { state.again = true; return; }
    state = { again: false };
    busy.set(part, state);
    function round() {
      state.again = false;
      return fetch(part.dataset.src, { credentials: "same-origin", cache: "no-store" }).then(function (response) {
        if (response.redirected && new URL(response.url).pathname.indexOf("/MAAS/accounts/login/") === 0) {
          window.location.assign("/MAAS/accounts/login/?next=" + encodeURIComponent(location.pathname + location.search));
          return null;
        }
        return response.ok ? response.text() : null;
      }).then(function (html) {
        if (html === null) return;
        if (part.querySelector("form[data-dirty]")) {
          setState("stale", "changed elsewhere: reload to see it");
          return;
        }
        // What the reader opened stays open: <details data-key> by key.
        var open = Array.prototype.map.call(part.querySelectorAll("details[open][data-key]"),
                                            function (d) { return d.dataset.key; });
        part.innerHTML = html;
        part.querySelectorAll("details[data-key]").forEach(function (d) {
          if (open.indexOf(d.dataset.key) >= 0) d.open = true;
        });
        if (state.again) return round();
      });
    }
    round().catch(function () {}).then(function () { busy.delete(part); });
  }
  function refreshTopic(topic) {
    document.querySelectorAll("[data-live-part~='" + topic + "']").forEach(refresh);
  }

  var source = null, watchdog = null, delay = 1000;
  var url = document.body.dataset.events + "?" + topics.map(function (t) { return "topic=" + encodeURIComponent(t); }).join("&");
  function alive() {
    clearTimeout(watchdog);
    // The region pings every 5 s; silence for 12 s means it is gone without closing.
    watchdog = setTimeout(function () { setState("reconnecting", "reconnecting…"); reopen(); }, 12000);
  }
  function reopen() {
    clearTimeout(watchdog);
    if (source) source.close();
    setTimeout(connect, delay);
    delay = Math.min(delay * 2, 10000);
    topics.forEach(refreshTopic);  // also notices a session that ended
  }
  function connect() {
    source = new EventSource(url);
    source.addEventListener("ready", function () {
      setState("live", "live");
      delay = 1000;
      alive();
      topics.forEach(refreshTopic);  // whatever changed before this stream began
    });
    source.addEventListener("change", function (event) { alive(); refreshTopic(event.data); });
    source.addEventListener("ping", alive);
    source.onerror = function () {
      setState("reconnecting", "reconnecting…");
      if (source.readyState === EventSource.CLOSED) reopen();
    };
  }
  connect();
})();
