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
})();
