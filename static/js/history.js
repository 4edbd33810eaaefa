// A row's history (issue 14): htmx puts the server's panel into the history
// dialog (base.html); this opens it, answers Alt+H on a focused row, draws the
// panel again after "Restore this value", moves the focus to the entries
// "Show older" adds, and gives the focus back on close.
// The names it uses are in the DOM contract (app/views/rows.py). No markup here.
"use strict";

(() => {
  const dialog = () => document.getElementById("history-dialog");
  let openerRow = ""; // the id of the row whose history is open

  // Alt+H on a focused row (or anything in it) opens that row's history. By
  // the key's position, as Alt+H types another letter on some layouts.
  document.addEventListener("keydown", (event) => {
    if (!event.altKey || event.ctrlKey || event.metaKey || event.code !== "KeyH") return;
    const row = document.activeElement && document.activeElement.closest("tr.data-row");
    const button = row && row.querySelector(".history-button");
    if (!button) return;
    event.preventDefault();
    button.click();
  });

  document.addEventListener("htmx:afterSwap", (event) => {
    const box = dialog();
    if (!box || event.detail.target.id !== "history-panel") return;
    const elt = event.detail.requestConfig && event.detail.requestConfig.elt;
    const row = elt && elt.closest && elt.closest("tr.data-row");
    if (row) openerRow = row.id;
    if (!box.open) box.showModal();
    const heading = document.getElementById("history-heading");
    if (heading) heading.focus();
  });

  // "Show older": the next page's list takes the link's place; the focus goes
  // to it (the link it was on is gone), so reading goes on from there.
  document.addEventListener("htmx:afterSettle", (event) => {
    const elt = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (!elt || !elt.matches || !elt.matches("a.history-older")) return;
    const lists = document.querySelectorAll("#history-panel ol.history-list[tabindex], .history-panel ol.history-list[tabindex]");
    const added = lists[lists.length - 1];
    if (added) added.focus();
  });

  // After a restore: a saved row (2xx) draws the panel again, with the new
  // entry and version; a refused one (409 conflict, 422) closes the dialog so
  // the row's own conflict choice or editor shows.
  document.addEventListener("htmx:afterRequest", (event) => {
    const form = event.detail.elt;
    if (!form.matches || !form.matches("form.history-restore")) return;
    const box = dialog();
    const panel = box && box.querySelector(".history-panel[data-history-url]");
    if (!box || !panel) return;
    // By status: htmx counts a swapped 409 or 422 as successful (base.html's config).
    const status = event.detail.xhr ? event.detail.xhr.status : 0;
    if (status >= 200 && status < 300) {
      htmx.ajax("GET", panel.dataset.historyUrl, { target: "#history-panel", swap: "innerHTML" });
    } else {
      box.close();
    }
  });

  document.addEventListener("close", (event) => {
    if (event.target !== dialog() || !openerRow) return;
    const row = document.getElementById(openerRow);
    const target = row && (row.querySelector("td.conflict button, td.editing input") || row.querySelector(".history-button"));
    if (target) target.focus();
  }, true);
})();
