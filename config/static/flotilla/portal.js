// Flotilla portal behaviour. No inline scripts anywhere (CSP): everything is wired here.
(function () {
  "use strict";

  // Destructive actions: <form data-confirm="Really?"> asks before submitting.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  }, true);

  // Copy buttons: <button data-copy="#id">.
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-copy]") : null;
    if (!button) return;
    var source = document.querySelector(button.dataset.copy);
    if (source && navigator.clipboard) {
      navigator.clipboard.writeText(source.textContent.trim());
      button.textContent = "Copied";
    }
  });

  // Live events of the current org. Each event becomes a DOM event "flotilla:<kind>" on
  // <body>, so htmx elements refresh with hx-trigger="flotilla:members.changed from:body".
  function connect(url, attempt) {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + url);
    socket.addEventListener("open", function () {
      document.body.dataset.live = "connected";
      attempt = 0;
    });
    socket.addEventListener("message", function (message) {
      var data;
      try { data = JSON.parse(message.data); } catch (e) { return; }
      var kind = (data.payload && data.payload.kind) || data.topic;
      document.body.dispatchEvent(new CustomEvent("flotilla:" + kind, { detail: data, bubbles: true }));
      document.body.dispatchEvent(new CustomEvent("flotilla:event", { detail: data, bubbles: true }));
    });
    socket.addEventListener("close", function () {
      document.body.dataset.live = "disconnected";
      var delay = Math.min(30000, 1000 * Math.pow(2, attempt));
      window.setTimeout(function () { connect(url, attempt + 1); }, delay);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var url = document.body.dataset.eventsUrl;
    if (url && "WebSocket" in window) connect(url, 0);
  });
})();
