// Small behaviours the server cannot render: running clocks and the disposition form's
// fields that depend on the chosen outcome. Everything else is htmx and server-sent HTML.
(function () {
  "use strict";

  function pad(n) { return String(n).padStart(2, "0"); }
  function clock(s) {
    s = Math.max(0, Math.floor(s));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return (h ? h + ":" + pad(m) : pad(m)) + ":" + pad(s % 60);
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-since]").forEach(function (el) {
      var t = Date.parse(el.getAttribute("data-since"));
      if (!isNaN(t)) el.textContent = clock((now - t) / 1000);
    });
    document.querySelectorAll("[data-until]").forEach(function (el) {
      var end = Number(el.getAttribute("data-until")) * 1000;
      el.textContent = clock((end - now) / 1000);
    });
  }

  // Show, and require, the fields the chosen outcome needs (the engine checks them again).
  function fitForm(form) {
    var select = form.querySelector("select[name=code]");
    var opt = select ? select.selectedOptions[0] : null;
    var needs = opt ? (opt.getAttribute("data-needs") || "").split(" ") : ["amount", "date", "callback_at"];
    form.querySelectorAll("[data-field]").forEach(function (label) {
      var on = needs.indexOf(label.getAttribute("data-field")) >= 0;
      label.hidden = !on;
      var input = label.querySelector("input");
      if (input) input.required = on && !!select;
    });
    var date = form.querySelector("input[name=date]");
    if (date) {
      var d = new Date();
      date.min = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate());
    }
    var tz = form.querySelector("input[name=tz]");
    if (tz) tz.value = String(new Date().getTimezoneOffset());
  }

  function fitAll() {
    document.querySelectorAll("form.disposition").forEach(fitForm);
  }

  document.addEventListener("change", function (e) {
    var form = e.target.closest && e.target.closest("form.disposition");
    if (form) fitForm(form);
  });
  document.addEventListener("htmx:afterSwap", function () { fitAll(); tick(); });
  document.addEventListener("htmx:sseMessage", function () { fitAll(); tick(); });
  document.addEventListener("DOMContentLoaded", function () { fitAll(); tick(); });
  setInterval(tick, 1000);
})();
