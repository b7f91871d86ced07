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
    let ended = false;
    // EventSource reconnects by itself (sending Last-Event-ID) after a dropped connection or
    // a server restart; when the browser gives up on it (readyState CLOSED, e.g. after
    // window.stop() or a non-SSE answer), a new one starts from the last offset received.
    const connect = function () {
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
        ended = true;
        source.close();
        if (status) { status.textContent = "finished"; status.className = "muted"; status.dataset.state = "ended"; }
      });
      source.addEventListener("open", function () {
        if (status && !ended && follow) { status.textContent = "live"; status.className = "live"; }
      });
      source.addEventListener("error", function () {
        if (ended) { return; }
        if (status) { status.textContent = "reconnecting…"; status.className = "paused"; }
        if (source.readyState === EventSource.CLOSED) { setTimeout(connect, 1000); }
      });
    };
    connect();
  }
})();
