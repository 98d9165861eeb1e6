// Live updates of the dashboard's pages (served by the package; see migrator/web/app.py).
// The server sends `change` over /events when the store moved; the page then fetches its own URL with
// X-Live-Fragment: 1 and puts the returned `live` block in place of #live: no reload. An action form being
// filled in (focus inside it, or its <details> open) is not replaced: the update waits until it is left.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var status = document.getElementById("live-status");
  if (!live || !window.EventSource || !window.fetch) { return; }
  var pending = false;
  var busy = false;
  var updates = 0;

  function say(text, state) {
    if (status) { status.textContent = text; status.setAttribute("data-state", state); }
  }

  function editing() {
    var active = document.activeElement;
    if (active && live.contains(active) && active.closest("form")) { return true; }
    return live.querySelector("details.action[open]") !== null;
  }

  function patch() {
    if (busy) { pending = true; return; }
    if (editing()) { pending = true; return; }
    busy = true;
    pending = false;
    fetch(window.location.href, { headers: { "X-Live-Fragment": "1" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        live.innerHTML = html;
        updates += 1;
        document.body.setAttribute("data-live-updates", String(updates));
        say("Live, updated " + new Date().toLocaleTimeString(), "live");
      })
      .catch(function () { say("Could not update; retrying", "lost"); })
      .then(function () {
        busy = false;
        if (pending) { patch(); }
      });
  }

  document.addEventListener("focusout", function () {
    window.setTimeout(function () { if (pending && !editing()) { patch(); } }, 0);
  });
  document.addEventListener("toggle", function () { if (pending && !editing()) { patch(); } }, true);

  var source = new EventSource("/events");
  source.addEventListener("open", function () { say("Live", "live"); document.body.setAttribute("data-live", "open"); });
  source.addEventListener("change", patch);
  source.addEventListener("error", function () { say("Connection lost; reconnecting", "lost"); });
}());
