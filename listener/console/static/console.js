// npd-sync console: the little behaviour htmx does not give. A file, not inline code: the
// console's CSP allows scripts from itself only.
(function () {
  "use strict";

  // A page's live part refreshes itself; skip a refresh while someone works in it (a row
  // ticked, or the keyboard focus inside), so that neither is lost.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var live = event.detail.elt;
    if (!live || live.id !== "live") return;
    var focused = document.activeElement;
    var working = live.querySelector("input[type=checkbox]:checked") ||
      (focused && focused !== document.body && live.contains(focused));
    if (working) event.preventDefault();
  });

  // "Select every row on this page".
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!box.matches || !box.matches("[data-select-all]") || !box.form) return;
    box.form.querySelectorAll("input[name=row]").forEach(function (row) {
      row.checked = box.checked;
    });
  });

  // Times come in UTC, labelled so; shown in the browser's own zone, with its name.
  var LOCAL = {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
  };
  function localTimes(root) {
    root.querySelectorAll("time[data-local]").forEach(function (time) {
      var when = new Date(time.getAttribute("datetime"));
      if (isNaN(when.getTime())) return;
      time.title = time.textContent;
      time.textContent = when.toLocaleString(undefined, LOCAL);
      time.removeAttribute("data-local");
    });
  }

  // What an action did is said once, above the page; the page's live part then shows the
  // state as it is. Once that part changes (the rows retried failed again, say), the message
  // is about the past: it goes, and the state stays.
  function settled() {
    localTimes(document);
    var live = document.getElementById("live");
    var flash = document.querySelector(".flash");
    if (!live || !flash) return;
    var now = live.textContent;
    if (flash.npdSeen === undefined) {
      flash.npdSeen = now;
    } else if (flash.npdSeen !== now) {
      flash.remove();
    }
  }
  document.addEventListener("DOMContentLoaded", settled);
  document.addEventListener("htmx:afterSettle", settled);
})();
