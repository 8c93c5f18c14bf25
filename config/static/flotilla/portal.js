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

// Clusters: a per-cluster event name, so that a cluster page refreshes only for its own cluster
// (hx-trigger="flotilla:cluster-12.changed from:body"); after the socket comes back, live
// fragments refresh once (flotilla:live.reconnected), since events may have been missed.
(function () {
  "use strict";
  document.addEventListener("flotilla:cluster.changed", function (event) {
    var payload = event.detail && event.detail.payload;
    if (payload && payload.cluster) {
      document.body.dispatchEvent(new CustomEvent("flotilla:cluster-" + payload.cluster + ".changed", { detail: event.detail }));
    }
  });
  // Apps: per-app and per-cluster names, so an app's page refreshes for that app only and a
  // cluster's Apps part for the apps of that cluster.
  document.addEventListener("flotilla:app.changed", function (event) {
    var payload = event.detail && event.detail.payload;
    if (!payload) return;
    if (payload.app) {
      document.body.dispatchEvent(new CustomEvent("flotilla:app-" + payload.app + ".changed", { detail: event.detail }));
    }
    if (payload.cluster) {
      document.body.dispatchEvent(new CustomEvent("flotilla:cluster-" + payload.cluster + ".apps-changed", { detail: event.detail }));
    }
  });
  // Filters: <select data-autosubmit> sends its form when changed.
  document.addEventListener("change", function (event) {
    var select = event.target;
    if (select instanceof HTMLSelectElement && select.dataset.autosubmit !== undefined && select.form) {
      select.form.requestSubmit();
    }
  });
  var wasDisconnected = false;
  new MutationObserver(function () {
    var state = document.body.dataset.live;
    if (state === "disconnected") wasDisconnected = true;
    if (state === "connected" && wasDisconnected) {
      wasDisconnected = false;
      document.body.dispatchEvent(new CustomEvent("flotilla:live.reconnected"));
    }
  }).observe(document.body, { attributes: true, attributeFilter: ["data-live"] });

  // Formset rows: <button data-formset-add="#template" data-formset-into="#rows"
  // data-formset-total="#id_x-TOTAL_FORMS"> appends the template with the next index;
  // [data-formset-remove] inside a [data-pool-row] drops an added row (left-out indices are ignored).
  document.addEventListener("click", function (event) {
    var add = event.target.closest ? event.target.closest("[data-formset-add]") : null;
    if (add) {
      var template = document.querySelector(add.dataset.formsetAdd);
      var rows = document.querySelector(add.dataset.formsetInto);
      var total = document.querySelector(add.dataset.formsetTotal);
      if (!template || !rows || !total) return;
      var index = parseInt(total.value, 10) || 0;
      var max = document.querySelector(add.dataset.formsetTotal.replace("TOTAL_FORMS", "MAX_NUM_FORMS"));
      if (max && index >= parseInt(max.value, 10)) return;
      var holder = document.createElement("div");
      holder.innerHTML = template.innerHTML.replace(/__prefix__/g, String(index));
      while (holder.firstChild) rows.appendChild(holder.firstChild);
      total.value = String(index + 1);
      var first = rows.lastElementChild && rows.lastElementChild.querySelector("input");
      if (first) first.focus();
      return;
    }
    var remove = event.target.closest ? event.target.closest("[data-formset-remove]") : null;
    if (remove) {
      var row = remove.closest("[data-pool-row]");
      if (row) row.remove();
    }
  });
})();
