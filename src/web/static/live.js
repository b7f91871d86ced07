// cc-ci live log: appends server-rendered HTML pieces of a stage's log from a byte offset over
// server-sent events. The server sends each byte once (the event id is the next offset, which
// the browser sends back as Last-Event-ID when it reconnects); auto-scroll pauses while the
// reader is scrolled up. Pieces beyond MAX_PIECES are dropped from the top to keep the page fast.
"use strict";
(function () {
  const MAX_PIECES = 4000;
  for (const pre of document.querySelectorAll("pre.console[data-events]")) {
    const status = document.getElementById(pre.id + "-status");
    let follow = true;
    pre.addEventListener("scroll", function () {
      follow = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
      if (status && status.dataset.state !== "ended") {
        status.textContent = follow ? "live" : "paused (scroll to the bottom to follow)";
        status.className = follow ? "live" : "paused";
      }
    });
    if (follow) { pre.scrollTop = pre.scrollHeight; }
    const url = pre.dataset.events + "?offset=" + encodeURIComponent(pre.dataset.offset);
    const source = new EventSource(url);
    source.addEventListener("log", function (e) {
      const piece = document.createElement("span");
      piece.className = "piece";
      piece.innerHTML = e.data;
      pre.appendChild(piece);
      pre.dataset.offset = e.lastEventId;
      while (pre.childElementCount > MAX_PIECES) { pre.removeChild(pre.firstElementChild); }
      if (follow) { pre.scrollTop = pre.scrollHeight; }
    });
    source.addEventListener("end", function () {
      source.close();
      if (status) { status.textContent = "finished"; status.className = "muted"; status.dataset.state = "ended"; }
    });
    source.addEventListener("open", function () {
      if (status && status.dataset.state !== "ended" && follow) { status.textContent = "live"; status.className = "live"; }
    });
    source.addEventListener("error", function () {
      if (status && status.dataset.state !== "ended") { status.textContent = "reconnecting…"; status.className = "paused"; }
    });
  }
})();
