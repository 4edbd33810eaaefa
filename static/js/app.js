// reeltable's small behaviours that htmx cannot express on its own: the keyboard
// and focus rules of a spreadsheet, expandable rows, shift-click sorting and toasts.
// No eval, no inline styles (the CSP forbids both); the server renders all HTML.
"use strict";

document.documentElement.classList.replace("no-js", "js");

// Send the CSRF token (from the meta tag) with every htmx request.
document.addEventListener("htmx:configRequest", (event) => {
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) event.detail.headers["X-CSRFToken"] = meta.content;
});

// ------------------------------------------------------------------ cells

const EDITOR = "form.cell-editor";
const GRID_CELL = "table[data-grid] > tbody > tr.data-row > td";

// What to do once a row has been re-rendered after a save or cancel, by row id:
// {open: field to edit next} or {focus: field whose cell gets the focus back}.
const pending = new Map();

function editorInput(form) {
  return form.querySelector('input[name]:not([type="hidden"])');
}

function rowBusy(row) {
  const form = row.querySelector(EDITOR);
  return Boolean(form && form.dataset.state);
}

function openCell(cell) {
  const row = cell.closest("tr");
  if (!cell.dataset.editUrl || !row) return;
  if (rowBusy(row)) {
    // A save of this row is in flight: its answer re-renders the row, so open
    // the cell in the new row rather than lose it.
    pending.set(row.id, { open: cell.dataset.field });
    return;
  }
  if (row.querySelector("form.cell-conflict")) return; // settle that first
  htmx.ajax("GET", cell.dataset.editUrl, { source: cell, target: cell, swap: "outerHTML" });
}

function restoreRow(row) {
  htmx.ajax("GET", row.dataset.rowUrl, { source: row, target: row, swap: "outerHTML" });
}

// Leave the editor: save if the value changed (only that field is sent), else
// put the display cell back. `next` names a cell to edit afterwards; `keyboard`
// brings the focus back to this cell, as a spreadsheet does after Enter.
function finishEdit(input, { next = null, keyboard = false, cancel = false } = {}) {
  const form = input.form;
  if (!form || form.dataset.state) return;
  const cell = form.closest("td");
  const row = cell.closest("tr");
  pending.set(row.id, { open: next, focus: keyboard && !next ? cell.dataset.field : null });
  if (!cancel && input.value !== input.dataset.original) {
    form.dataset.state = "saving";
    htmx.process(form); // wired up already unless a swap is still settling
    form.requestSubmit();
  } else {
    form.dataset.state = "cancelling";
    restoreRow(row);
  }
}

function neighbourField(cell, step) {
  const cells = [...cell.closest("tr").querySelectorAll(":scope > td.editable, :scope > td.editing")];
  const other = cells[cells.indexOf(cell) + step];
  return other ? other.dataset.field : null;
}

function focusLost() {
  const active = document.activeElement;
  return !active || active === document.body;
}

function applyPending() {
  for (const [id, want] of pending) {
    const row = document.getElementById(id);
    if (!row) {
      pending.delete(id);
      continue;
    }
    if (rowBusy(row)) continue; // not answered yet
    pending.delete(id);
    // A 422 or 409 left an editor or a choice in the row: stay with it.
    if (row.querySelector(`${EDITOR}, form.cell-conflict`)) continue;
    const field = want.open || want.focus;
    const cell = field && row.querySelector(`:scope > td[data-field="${CSS.escape(field)}"]`);
    if (!cell) continue;
    if (want.open) openCell(cell);
    else if (focusLost()) cell.focus();
  }
}

document.addEventListener("click", (event) => {
  const cell = event.target.closest("td[data-edit-url]");
  if (cell && !event.target.closest("a, button, input")) openCell(cell);
});

document.addEventListener("keydown", (event) => {
  const input = event.target;
  if (input.matches && input.matches(`${EDITOR} input`)) {
    editorKey(event, input);
    return;
  }
  if (event.key === "Escape" && input.closest && input.closest("form.cell-conflict")) {
    event.preventDefault();
    input.closest("form.cell-conflict").querySelector("[data-take-theirs]").click();
    return;
  }
  if (input.matches && input.matches(GRID_CELL)) gridKey(event, input);
});

function editorKey(event, input) {
  const cell = input.closest("td");
  if (event.key === "Escape") {
    event.preventDefault();
    finishEdit(input, { keyboard: true, cancel: true });
  } else if (event.key === "Enter") {
    event.preventDefault();
    finishEdit(input, { keyboard: true });
  } else if (event.key === "Tab") {
    const next = neighbourField(cell, event.shiftKey ? -1 : 1);
    event.preventDefault();
    finishEdit(input, { next, keyboard: true });
  }
}

// Leaving the field saves it, unless the whole window lost focus (switching
// tabs): then the editor simply waits for the person to come back.
document.addEventListener("focusout", (event) => {
  const input = event.target;
  if (!input.matches || !input.matches(`${EDITOR} input[name]:not([type="hidden"])`)) return;
  if (!input.isConnected || !document.hasFocus()) return;
  const to = event.relatedTarget;
  // Into its own form, or onto a message (say, dismissing a failed save's error).
  if (to && (input.form.contains(to) || to.closest("#toasts"))) return;
  finishEdit(input);
});

// Open editors with their value selected, ready to be typed over.
document.addEventListener("htmx:load", (event) => {
  const form = event.target.matches(EDITOR) ? event.target : event.target.querySelector(EDITOR);
  const input = form && editorInput(form);
  if (input && document.activeElement === input) input.select();
  armToasts(event.target);
});

// ------------------------------------------------------------------ grid keys

function gridCells(row) {
  return [...row.children].filter((cell) => cell.tagName === "TD" && cell.offsetParent !== null);
}

function gridKey(event, cell) {
  if (event.key === "Enter" || event.key === "F2") {
    event.preventDefault();
    if (cell.dataset.editUrl) openCell(cell);
    else {
      const controls = cell.querySelectorAll("button, a[href], input:not([type=hidden])");
      const control = [...controls].find((el) => el.offsetParent !== null);
      if (control) control.focus();
    }
    return;
  }
  const row = cell.parentElement;
  const cells = gridCells(row);
  const index = cells.indexOf(cell);
  let target = null;
  if (event.key === "ArrowLeft") target = cells[index - 1];
  else if (event.key === "ArrowRight") target = cells[index + 1];
  else if (event.key === "Home") target = cells[0];
  else if (event.key === "End") target = cells[cells.length - 1];
  else if (event.key === "ArrowUp" || event.key === "ArrowDown") {
    let other = row;
    do {
      other = event.key === "ArrowUp" ? other.previousElementSibling : other.nextElementSibling;
    } while (other && !other.classList.contains("data-row"));
    if (other) {
      const across = gridCells(other);
      target = across[Math.min(index, across.length - 1)];
    }
  } else return;
  event.preventDefault();
  if (target) target.focus();
}

// One tab stop per grid (roving tabindex): Tab enters the table at the last cell
// used, the arrow keys move inside it.
function setTabStop(cell) {
  const table = cell.closest("table");
  for (const other of table.querySelectorAll(':scope > tbody > tr > td[tabindex="0"]')) {
    other.tabIndex = -1;
  }
  cell.tabIndex = 0;
}

function ensureTabStops(root) {
  for (const table of root.querySelectorAll("table[data-grid]")) {
    if (table.querySelector(':scope > tbody > tr.data-row > td[tabindex="0"]')) continue;
    const first = table.querySelector(":scope > tbody > tr.data-row > td.editable")
      || table.querySelector(":scope > tbody > tr.data-row > td[tabindex]");
    if (first) first.tabIndex = 0;
  }
}

// Only the cells themselves: the buttons inside cells keep their own tab stops.
document.addEventListener("focusin", (event) => {
  if (event.target.matches && event.target.matches(GRID_CELL)) setTabStop(event.target);
});

// ------------------------------------------------------------------ expandable rows

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-expand-url]");
  if (!button || button.dataset.loading) return;
  const open = document.getElementById(button.dataset.controls);
  if (open) {
    open.remove();
    syncRows();
    return;
  }
  button.dataset.loading = "1";
  htmx
    .ajax("GET", button.dataset.expandUrl, { source: button, target: button.closest("tr"), swap: "afterend" })
    .finally(() => delete button.dataset.loading);
});

// Child rows go with their parent row; toggles say whether theirs is open.
function syncRows() {
  for (const child of document.querySelectorAll("tr[data-child-of]")) {
    if (!document.getElementById(child.dataset.childOf)) child.remove();
  }
  for (const button of document.querySelectorAll("button[data-controls]")) {
    const open = Boolean(document.getElementById(button.dataset.controls));
    button.setAttribute("aria-expanded", String(open));
    if (open) button.setAttribute("aria-controls", button.dataset.controls);
    else button.removeAttribute("aria-controls");
  }
}

// ------------------------------------------------------------------ sorting

// Shift-click on a header adds it as a further sort key. Capture phase, so this
// runs before htmx's own click handler on the link (and the browser's new window).
document.addEventListener(
  "click",
  (event) => {
    const link = event.target.closest && event.target.closest("a[data-shift-href]");
    if (!link || !event.shiftKey) return;
    event.preventDefault();
    event.stopPropagation();
    htmx.ajax("GET", link.dataset.shiftHref, {
      source: link,
      target: link.getAttribute("hx-target"),
      swap: "outerHTML",
    });
  },
  true,
);

// ------------------------------------------------------------------ toasts

function armToasts(root) {
  const toasts = root.matches && root.matches(".toast") ? [root] : root.querySelectorAll(".toast");
  for (const toast of toasts) {
    const wait = Number(toast.dataset.timeout);
    if (!wait || toast.dataset.armed) continue;
    toast.dataset.armed = "1";
    const expire = () => {
      // Not while someone is reading it or about to press Undo.
      if (toast.matches(":hover, :focus-within")) setTimeout(expire, 1000);
      else toast.remove();
    };
    setTimeout(expire, wait);
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-dismiss]");
  if (button) button.closest(".toast").remove();
});

function showError(text) {
  const toast = document.createElement("div");
  toast.className = "toast toast-error";
  toast.setAttribute("role", "alert");
  const message = document.createElement("p");
  message.className = "toast-text";
  message.textContent = text;
  const close = document.createElement("button");
  close.type = "button";
  close.className = "toast-close";
  close.dataset.dismiss = "";
  const cross = document.createElement("span");
  cross.setAttribute("aria-hidden", "true");
  cross.textContent = "×";
  const label = document.createElement("span");
  label.className = "visually-hidden";
  label.textContent = "Dismiss";
  close.append(cross, label);
  toast.append(message, close);
  document.getElementById("toasts").append(toast);
}

// The server's own words for an error, from its error fragment, if it sent one.
function serverMessage(xhr) {
  const type = xhr.getResponseHeader("Content-Type") || "";
  if (!type.startsWith("text/html") || !xhr.responseText) return "";
  const doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
  const found = doc.querySelector(".error-message");
  return found ? found.textContent.replace(/\s+/g, " ").trim() : "";
}

// A failed request leaves what was typed in place and can be tried again.
function releaseRow(elt) {
  const row = elt && elt.closest && elt.closest("tr");
  if (!row) return;
  pending.delete(row.id);
  for (const form of row.querySelectorAll(EDITOR)) delete form.dataset.state;
}

document.addEventListener("htmx:responseError", (event) => {
  const { xhr, requestConfig } = event.detail;
  const reading = requestConfig && requestConfig.verb === "get";
  const reason = serverMessage(xhr) || `the server answered ${xhr.status} ${xhr.statusText}.`;
  showError(reading ? `Could not load: ${reason}` : `Not saved: ${reason} Please try again.`);
  releaseRow(event.detail.elt);
});

for (const name of ["htmx:sendError", "htmx:timeout"]) {
  document.addEventListener(name, (event) => {
    showError("Could not reach the server: nothing was changed. Check the connection and try again.");
    releaseRow(event.detail.elt);
  });
}

// ------------------------------------------------------------------ after swaps

document.addEventListener("htmx:afterSettle", (event) => {
  syncRows();
  applyPending();
  ensureTabStops(document);
  // Say what a filter, sort or page change found (the region itself is replaced,
  // so it cannot be the live region).
  if (event.target.matches && event.target.matches(".table-region")) {
    const count = event.target.querySelector(".row-count");
    const status = document.getElementById("live-status");
    if (count && status) status.textContent = count.textContent.trim();
  }
});

ensureTabStops(document);
armToasts(document);
