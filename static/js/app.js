// reeltable's small behaviours that htmx cannot express on its own: a spreadsheet's
// keys and in-page cell editors, the per-row save queue, expandable rows,
// shift-click sorting, live-search history and messages. The server renders all
// markup: editors are cloned from the <template>s it puts in every grid, messages
// from #toast-template (the toast partial's own markup); this file only sets text
// and attributes, and parses the server's responses (keepRow, preserveLive). The
// DOM contract (every id, class and data-* attribute used here) is written down
// in app/views/rows.py; tests/test_views_rows.py holds both to it.
// No eval, no inline styles (the CSP forbids both).
"use strict";

document.documentElement.classList.replace("no-js", "js");

const GRID = "table[data-grid]";
const CELL = `${GRID} > tbody > tr.data-row > td`;
const EDITOR_INPUT = "form.cell-editor input[name]";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

// Send the CSRF token with every htmx request.
document.addEventListener("htmx:configRequest", (event) => {
  const token = csrfToken();
  if (token) event.detail.headers["X-CSRFToken"] = token;
});

// A session changed in another tab (signed out and in again) invalidates the
// page's token: fetch the current one and put it everywhere the page keeps it.
async function refreshToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const url = document.querySelector('meta[name="csrf-token-url"]').content;
  const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  if (!response.ok) throw new Error(`token refresh answered ${response.status}`);
  const token = (await response.text()).trim();
  meta.content = token;
  for (const input of document.querySelectorAll('input[name="csrf_token"]')) input.value = token;
}

// ------------------------------------------------------------------ grid geometry

function gridOf(cell) {
  return cell.closest(GRID);
}

function rowsOf(grid) {
  return [...grid.tBodies[0].children].filter((row) => row.classList.contains("data-row"));
}

function cellsOf(row) {
  return [...row.children].filter((cell) => cell.tagName === "TD" && cell.offsetParent !== null);
}

function cellAt(row, index) {
  if (!row) return null;
  const cells = cellsOf(row);
  return cells[Math.min(index, cells.length - 1)] || null;
}

function fieldCell(row, field) {
  return row ? row.querySelector(`:scope > td[data-field="${CSS.escape(field)}"]`) : null;
}

function isEditable(cell) {
  return cell.classList.contains("editable") && !cell.closest("tr").classList.contains("is-gone");
}

function editableCells(row) {
  return cellsOf(row).filter(isEditable);
}

// A value cell shows its value as text, or the "none" mark for an empty one.
function valueOf(cell) {
  return cell.querySelector(".none") ? "" : cell.textContent;
}

function editorInput(cell) {
  return cell.querySelector(EDITOR_INPUT);
}

// Where a key that leaves a cell goes: "down"/"up" the same column, "next"/"prev"
// along the editable cells, wrapping to the next or previous row.
function neighbour(cell, move) {
  const row = cell.closest("tr");
  const rows = rowsOf(gridOf(cell));
  const at = rows.indexOf(row);
  if (move === "down" || move === "up") {
    return fieldCell(rows[at + (move === "down" ? 1 : -1)], cell.dataset.field);
  }
  if (move !== "next" && move !== "prev") return null;
  const step = move === "next" ? 1 : -1;
  const along = editableCells(row);
  const found = along[along.indexOf(cell) + step];
  if (found) return found;
  const other = rows[at + step] ? editableCells(rows[at + step]) : [];
  return (step > 0 ? other[0] : other[other.length - 1]) || null;
}

function focusCell(cell) {
  if (!cell) return;
  const input = cell.matches("td.editing") && editorInput(cell);
  (input || cell).focus();
}

// True when the person's focus is somewhere a message must not pull it from.
function busyElsewhere(here) {
  const active = document.activeElement;
  if (!active || active === document.body || active === here) return false;
  if (active.matches("input, textarea, select")) return true;
  return !active.closest(GRID) && !active.closest("#toasts");
}

// ------------------------------------------------------------------ editors

// The display nodes of each cell whose editor is open, to put back on Escape.
const shown = new WeakMap();

// Open the cell's editor, cloned from its grid's template: no request, so keys
// typed at once land in it. `text` replaces the value (type to replace).
function openEditor(cell, { text = null, select = false, focus = true } = {}) {
  endRange();
  if (cell.classList.contains("editing")) {
    const input = editorInput(cell);
    if (input && focus) input.focus();
    return input;
  }
  if (!isEditable(cell)) return null;
  const template = gridOf(cell).querySelector(
    `:scope > template[data-editor="${CSS.escape(cell.dataset.field)}"]`,
  );
  if (!template) return null;
  const original = valueOf(cell);
  const form = template.content.firstElementChild.cloneNode(true);
  const input = form.querySelector("input[name]");
  input.value = text === null ? original : text;
  input.dataset.original = original;
  shown.set(cell, [...cell.childNodes]);
  cell.replaceChildren(form);
  cell.classList.add("editing");
  if (focus) {
    input.focus();
    if (select) input.select();
    else input.setSelectionRange(input.value.length, input.value.length);
  }
  return input;
}

// Show `text` in a cell while the server has not drawn it yet.
function showValue(cell, text) {
  if (text === "") {
    const none = gridOf(cell).querySelector(":scope > template[data-none]");
    cell.replaceChildren(none.content.cloneNode(true));
  } else {
    cell.textContent = text;
  }
}

// Close a cell's editor: show `text` (a save in flight) or what it showed before.
function closeEditor(cell, text = null) {
  const input = editorInput(cell);
  if (input) input.dataset.done = "1"; // its removal must not save it again
  const before = shown.get(cell);
  shown.delete(cell);
  cell.classList.remove("editing");
  if (text === null && before) cell.replaceChildren(...before);
  else showValue(cell, text === null ? (input ? input.dataset.original || "" : "") : text);
}

function showFieldError(input, message) {
  const error = input.form.querySelector(".field-error");
  const cell = input.closest("td");
  error.id = `${cell.id}-error`;
  error.textContent = message;
  error.hidden = false;
  input.setAttribute("aria-invalid", "true");
  input.setAttribute("aria-describedby", error.id);
}

// Leave an editor, saving a changed value, and go where the key says.
function commit(input, move = "stay") {
  if (input.dataset.done) return;
  const cell = input.closest("td");
  const row = cell.closest("tr");
  const value = input.value;
  const original = input.dataset.original || "";
  const changed = value !== original;
  const next = neighbour(cell, move); // before the DOM changes
  const hadFocus = document.activeElement === input;
  closeEditor(cell, changed ? value : null);
  if (changed) enqueue(row, cell.dataset.field, value, original);
  if (move === "stay" && !hadFocus) return; // left by a click: focus is already there
  if ((move === "next" || move === "prev") && next) openEditor(next, { select: true });
  else focusCell(next || cell);
}

function cancel(input) {
  const cell = input.closest("td");
  closeEditor(cell);
  focusCell(cell);
}

// Delete/Backspace on a cell: save it empty (a required field gets its message).
function clearCell(cell) {
  const original = valueOf(cell);
  if (original === "" && !cell.hasAttribute("aria-busy")) return;
  showValue(cell, "");
  enqueue(cell.closest("tr"), cell.dataset.field, "", original);
}

// ------------------------------------------------------------------ the save queue

// Saves of a row go one at a time, in order; each is sent with the version the
// previous one returned and the value its editor started from, so the server can
// merge it with other people's edits of other fields (issue 10).
const queues = new Map(); // row id -> the promise of its last save
const waiting = new Map(); // cell id -> saves of that cell not answered yet
const inflight = new Map(); // update URL (one per row) -> the save being answered
const goneRows = new Map(); // row id -> {message, also: typed later}: deleted elsewhere

function enqueue(row, field, value, original) {
  const save = {
    rowId: row.id,
    cellId: `${row.id}-${field}`,
    field,
    value,
    original,
    url: row.dataset.updateUrl,
    version: row.dataset.version,
    retried: false,
  };
  const cell = document.getElementById(save.cellId);
  if (cell) cell.setAttribute("aria-busy", "true");
  waiting.set(save.cellId, (waiting.get(save.cellId) || 0) + 1);
  const tail = (queues.get(save.rowId) || Promise.resolve()).then(() => send(save));
  queues.set(save.rowId, tail);
  tail.then(() => {
    if (queues.get(save.rowId) === tail) queues.delete(save.rowId);
  });
  return save;
}

async function send(save) {
  if (goneRows.has(save.rowId)) {
    markGone(document.getElementById(save.rowId), "", save.value);
    return finish(save);
  }
  const row = document.getElementById(save.rowId);
  if (row && row.dataset.version) save.version = row.dataset.version;
  save.status = 0;
  save.message = "";
  save.reason = "";
  inflight.set(save.url, save);
  // A row no longer on screen (the view changed meanwhile) is still saved.
  const source = row || document.getElementById("toasts");
  try {
    await htmx.ajax("PATCH", save.url, {
      source,
      target: source,
      swap: row ? "outerHTML" : "none",
      values: {
        version: save.version,
        [save.field]: save.value,
        [`original.${save.field}`]: save.original,
      },
    });
  } catch {
    // No answer at all (network down): status stays 0, reported as a failed save.
  }
  inflight.delete(save.url);
  if (save.reason === "csrf" && !save.retried) {
    save.retried = true;
    try {
      await refreshToken();
      return send(save);
    } catch {
      // Fall through: reported as the failure it is.
    }
  }
  return settle(save);
}

// What the answer to a save leaves on screen.
function settle(save) {
  if (save.reopened) reconcile(save);
  const row = document.getElementById(save.rowId);
  const cell = fieldCell(row, save.field);
  const status = save.status;
  if (status >= 200 && status < 300) return finish(save);
  if (status === 422 || status === 409) {
    // The server drew the editor with its message, or the conflict choice.
    const control = cell && (editorInput(cell) || cell.querySelector("form.cell-conflict button"));
    if (control && !busyElsewhere()) {
      control.focus();
      if (control.setSelectionRange) control.setSelectionRange(control.value.length, control.value.length);
    }
    return finish(save);
  }
  if (status === 404) {
    markGone(row, save.message, save.value);
    return finish(save);
  }
  const signIn = save.reason === "sign-in";
  const again = status >= 500 || !status ? " Press Enter to try again." : "";
  const message = status
    ? `Not saved: ${save.message || `the server answered ${status}.`}${again}`
    : `Could not reach the server: not saved. Check the connection.${again}`;
  failed(save, cell, message, signIn);
  return finish(save);
}

// An editor reopened on a cell whose save was in flight now starts from what the
// server stored (and shows why, if it refused the save); Escape puts that back.
function reconcile(save) {
  const fresh = save.reopened;
  save.reopened = null;
  const cell = document.getElementById(save.cellId);
  const input = cell && editorInput(cell);
  if (!input) return;
  const before = input.dataset.original;
  const refused = fresh.querySelector(EDITOR_INPUT);
  if (refused) {
    input.dataset.original = refused.dataset.original || "";
    shown.delete(cell);
    const error = fresh.querySelector(".field-error");
    if (error && error.textContent) showFieldError(input, error.textContent);
    return;
  }
  input.dataset.original = valueOf(fresh);
  shown.set(cell, [...fresh.childNodes]);
  // Untouched since it reopened: show the value as stored ("8" becomes "8.0").
  if (input.value === before) input.value = input.dataset.original;
}

function finish(save) {
  const left = (waiting.get(save.cellId) || 1) - 1;
  if (left) {
    waiting.set(save.cellId, left);
    return;
  }
  waiting.delete(save.cellId);
  const cell = document.getElementById(save.cellId);
  if (cell) cell.removeAttribute("aria-busy");
}

// A save that failed: what was typed goes back into the cell's editor, with why.
function failed(save, cell, message, signIn) {
  const retry = () => {
    const input = cell && cell.isConnected && editorInput(cell);
    if (input) {
      commit(input);
      if (focusLost()) focusCell(cell);
    } else {
      enqueue(document.getElementById(save.rowId), save.field, save.value, save.original);
    }
  };
  const toast = { key: `save:${save.cellId}`, text: message, signIn, retry: signIn ? retry : null };
  if (!cell || !cell.isConnected) {
    showToast({ ...toast, text: `${message} You typed: “${save.value}”.`, retry });
    return;
  }
  if (cell.classList.contains("editing")) {
    // The person is typing in it again: keep their text, say it in a message.
    showToast({ ...toast, text: `${message} You had typed: “${save.value}”.` });
    return;
  }
  const input = openEditor(cell, { text: save.value, focus: false });
  if (!input) return;
  input.dataset.original = save.original;
  showFieldError(input, message);
  if (signIn) showToast(toast);
  if (!busyElsewhere()) {
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }
}

// A row someone else deleted: say so once, with what was typed (the server's
// message quotes the save it refused; later saves of the row are added), and
// retire the row.
function markGone(row, message, typed = null) {
  const id = row ? row.id : "";
  let gone = id && goneRows.get(id);
  if (!gone) {
    gone = { message, also: [] };
    if (id) goneRows.set(id, gone);
  } else if (typed !== null) {
    gone.also.push(typed);
  }
  const also = gone.also.length ? ` Also typed: ${gone.also.map((text) => `“${text}”`).join(", ")}.` : "";
  showToast({ key: `gone:${id}`, text: `${gone.message}${also}` });
  if (!row || row.classList.contains("is-gone")) return;
  const hadFocus = row.contains(document.activeElement);
  const index = hadFocus ? document.activeElement.closest("td").cellIndex : 0;
  for (const cell of row.querySelectorAll(":scope > td.editing")) closeEditor(cell);
  row.classList.add("is-gone");
  row.setAttribute("aria-disabled", "true");
  for (const control of row.querySelectorAll("button, a, form")) control.remove();
  if (hadFocus) {
    const rows = rowsOf(gridOf(row)).filter((other) => !other.classList.contains("is-gone"));
    const after = rows.find((other) => row.compareDocumentPosition(other) & Node.DOCUMENT_POSITION_FOLLOWING);
    focusCell(cellAt(after || rows[rows.length - 1], index));
  }
}

// ------------------------------------------------------------------ swaps that keep work

// A row re-rendered by the server (a save's answer, "Take theirs") keeps the cells
// the person is still working in: an open editor, or a later save's typed value.
// htmx's hx-preserve moves them into the new row (moveBefore keeps the focus).
let swapping = false;

document.addEventListener("htmx:beforeSwap", (event) => {
  const detail = event.detail;
  const save = savingBy(detail);
  if (save) save.status = detail.xhr.status;
  let target = detail.target;
  if (target && target.matches && target.matches("tr.data-row") && !target.isConnected) {
    // The row was drawn again meanwhile: the answer goes to the one on screen.
    const current = document.getElementById(target.id);
    if (current) detail.target = target = current;
  }
  if (!detail.shouldSwap || !target || !target.isConnected) return;
  rememberFocus(target, detail.serverResponse);
  swapping = true;
  // After the swap (htmx swaps at once), also when it left nothing to fire on.
  setTimeout(() => {
    swapping = false;
    restoreFocus();
  });
  if (target.matches("tr.data-row")) {
    preserveLive(detail, save);
    keepRow(detail, target);
  }
});

// A row drawn again keeps its <tr>: only its cells and attributes change. Other
// requests about the row (an expand, a delete) target that <tr>, and would
// otherwise land on a detached copy if a save's answer came first.
function keepRow(detail, row) {
  const parsed = document.createElement("template");
  parsed.innerHTML = detail.serverResponse;
  const fresh = parsed.content.querySelector("tr.data-row");
  if (!fresh || fresh.id !== row.id) return;
  for (const { name, value } of fresh.attributes) row.setAttribute(name, value);
  fresh.replaceWith(...fresh.childNodes);
  detail.serverResponse = parsed.innerHTML;
  detail.swapOverride = "innerHTML";
}

// The save a response answers, if it is one (a row has one in flight at most).
function savingBy(detail) {
  const config = detail.requestConfig;
  return (config && config.verb === "patch" && inflight.get(config.path)) || null;
}

function preserveLive(detail, save) {
  const row = detail.target;
  const keep = [...row.children].filter((cell) => {
    if (!cell.id) return false;
    if (cell.classList.contains("editing")) return true;
    const others = (waiting.get(cell.id) || 0) - (save && save.cellId === cell.id ? 1 : 0);
    return others > 0;
  });
  if (!keep.length) return;
  const parsed = document.createElement("template");
  parsed.innerHTML = detail.serverResponse;
  let marked = false;
  for (const cell of keep) {
    const fresh = parsed.content.getElementById(cell.id);
    if (!fresh || fresh.tagName !== "TD") continue;
    if (save && cell.id === save.cellId && cell.classList.contains("editing")) {
      // Reopened while its own save was in flight: the editor stays, and learns
      // the answer (reconcile); a conflict's choice replaces it.
      if (detail.xhr.status === 409) continue;
      save.reopened = fresh.cloneNode(true);
    }
    fresh.setAttribute("hx-preserve", "true");
    marked = true;
  }
  if (marked) detail.serverResponse = parsed.innerHTML;
  // Browsers without moveBefore() drop the focus of a moved input: note the caret.
  const active = document.activeElement;
  if (active && active.matches(EDITOR_INPUT) && row.contains(active)) {
    caret = { input: active, start: active.selectionStart, end: active.selectionEnd };
  }
}

let caret = null;

document.addEventListener("htmx:afterSwap", () => {
  swapping = false;
  if (caret && caret.input.isConnected && document.activeElement !== caret.input) {
    caret.input.focus();
    caret.input.setSelectionRange(caret.start, caret.end);
  }
  caret = null;
});

// ------------------------------------------------------------------ focus

// Focus is never left on <body>: after a swap takes away the focused element, the
// same element (by id), else the same column of the same or a neighbouring row.
let focusMemory = null;
let pageTurn = null;

function rememberFocus(target, response) {
  const active = document.activeElement;
  if (!active || active === document.body || !target.contains(active)) return;
  // After an undo, focus goes to the row it brings back. Read from the text: the
  // row sits in an <hx-partial>, where an HTML parser would drop a bare <tr>.
  const restored = active.matches(".undo-button")
    ? (/<tr id="([^"]+)" class="data-row/.exec(response || "") || [])[1] || null
    : null;
  const cell = active.closest("td, th");
  const row = active.closest("tr.data-row");
  const grid = active.closest(GRID);
  const rows = grid ? rowsOf(grid) : [];
  const at = rows.indexOf(row);
  focusMemory = {
    ids: [active.id, cell && cell.id, row && row.id].filter(Boolean),
    rows: [row, rows[at + 1], rows[at - 1]].filter(Boolean).map((r) => r.id),
    index: cell ? cell.cellIndex : 0,
    region: (active.closest(".table-region") || {}).id,
    restored,
    at: performance.now(),
  };
}

function focusLost() {
  const active = document.activeElement;
  return !active || active === document.body;
}

// Called right after a swap and whenever a swap settles: a response's parts (an
// undo's toast and its <hx-partial> row) swap and settle one after the other, so
// the memory waits (briefly) until the focus is actually lost and the row is there.
function restoreFocus() {
  let memory = focusMemory;
  if (memory && performance.now() - memory.at > 2000) memory = focusMemory = null;
  if (memory && (!focusLost() || (memory.restored && !document.getElementById(memory.restored)))) {
    memory = null; // not yet
  } else {
    focusMemory = null;
  }
  const turn = pageTurn;
  const region = turn && document.getElementById(turn.region);
  const grid = region && region.querySelector(GRID);
  if (grid && grid !== turn.grid) {
    // The new page has come (another swap, say a save's answer, may come first).
    pageTurn = null;
    const rows = rowsOf(grid);
    const row = rows[Math.min(turn.row, rows.length - 1)];
    const cell = (row && fieldCell(row, turn.field)) || cellAt(row, turn.index);
    if (cell) return focusCell(cell);
  }
  if (!memory || !focusLost()) return;
  const back = memory.restored && document.getElementById(memory.restored);
  if (back) return focusCell(editableCells(back)[0] || cellsOf(back)[0]);
  for (const id of memory.ids) {
    const same = document.getElementById(id);
    if (same && !same.matches("tr") && same.offsetParent !== null) return focusCell(same);
  }
  for (const rowId of memory.rows) {
    const row = document.getElementById(rowId);
    if (row && !row.classList.contains("is-gone")) return focusCell(cellAt(row, memory.index));
  }
  const home = memory.region && document.getElementById(memory.region);
  const table = home && home.querySelector(GRID);
  const first = table && rowsOf(table)[0];
  if (first) focusCell(cellAt(first, memory.index));
}

// ------------------------------------------------------------------ keys

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.isComposing) return;
  const target = event.target;
  if (!(target instanceof Element)) return;
  if (changeKey(event, target)) return;
  if (target.matches(EDITOR_INPUT)) return editorKey(event, target);
  if (event.key === "Escape") {
    const conflict = target.closest("form.cell-conflict");
    if (conflict) {
      event.preventDefault();
      conflict.querySelector("[data-take-theirs]").click();
      return;
    }
    const keys = target.closest("details.grid-keys");
    if (keys && keys.open) {
      event.preventDefault();
      keys.open = false;
      focusCell(keysFrom && keysFrom.isConnected ? keysFrom : null);
      return;
    }
    if (range && target.matches(CELL)) {
      event.preventDefault();
      endRange();
      return;
    }
    if (dismissToast(target.closest(".toast") || newestToast())) event.preventDefault();
    return;
  }
  const cell = target.closest("td");
  if (!cell || !cell.matches(CELL)) return;
  // A control inside a cell (an expand or delete button) moves like its cell.
  if (target !== cell && !/^(Arrow|Home|End|Page)/.test(event.key)) return;
  gridKey(event, cell, target === cell);
});

function editorKey(event, input) {
  if (event.key === "Escape") {
    event.preventDefault();
    cancel(input);
  } else if (event.key === "Enter") {
    event.preventDefault();
    commit(input, event.shiftKey ? "up" : "down");
  } else if (event.key === "Tab") {
    event.preventDefault();
    commit(input, event.shiftKey ? "prev" : "next");
  }
}

function gridKey(event, cell, onCell) {
  const { key } = event;
  const ctrl = event.ctrlKey || event.metaKey;
  if (onCell && key === "?") {
    event.preventDefault();
    showKeys(cell);
    return;
  }
  if (onCell && key.length === 1 && !ctrl && !event.altKey) {
    if (!isEditable(cell)) return;
    event.preventDefault();
    openEditor(cell, { text: key });
    return;
  }
  if (onCell && (key === "Enter" || key === "F2")) {
    event.preventDefault();
    if (isEditable(cell)) openEditor(cell);
    else {
      const control = [...cell.querySelectorAll("button, a[href], input:not([type=hidden])")].find(
        (el) => el.offsetParent !== null,
      );
      if (control) control.focus();
    }
    return;
  }
  if (onCell && (key === "Delete" || key === "Backspace") && isEditable(cell)) {
    event.preventDefault();
    clearCell(cell);
    return;
  }
  const row = cell.parentElement;
  const cells = cellsOf(row);
  const index = cells.indexOf(cell);
  const rows = rowsOf(gridOf(cell));
  const at = rows.indexOf(row);
  let to;
  if (key === "ArrowLeft") to = cells[index - 1];
  else if (key === "ArrowRight") to = cells[index + 1];
  else if (key === "ArrowUp") to = cellAt(rows[at - 1], index);
  else if (key === "ArrowDown") to = cellAt(rows[at + 1], index);
  else if (key === "Home") to = ctrl ? cellAt(rows[0], 0) : cells[0];
  else if (key === "End") to = ctrl ? cellAt(rows[rows.length - 1], Infinity) : cells[cells.length - 1];
  else if (key === "PageDown" || key === "PageUp") {
    event.preventDefault();
    turnPage(cell, key === "PageDown" ? "next" : "prev", at, index);
    return;
  } else return;
  event.preventDefault();
  if (!to) return;
  if (event.shiftKey && key.startsWith("Arrow")) growRange(cell, to);
  else endRange();
  focusCell(to);
}

// ------------------------------------------------------------------ copy and paste

// As in a spreadsheet: Shift+arrows grow a block of cells (`.in-range`); Ctrl+C
// copies it, or the focused cell, as tab-separated text; Ctrl+V pastes such text
// from the block's first cell, each value saved through its row's queue as if
// typed. One value pasted on a block fills it.
let range = null; // {grid, anchor: [row id, column], end: [row id, column]}

function place(cell) {
  return [cell.parentElement.id, cellsOf(cell.parentElement).indexOf(cell)];
}

function growRange(from, to) {
  if (!range || range.grid !== gridOf(from) || `${range.end}` !== `${place(from)}`) {
    range = { grid: gridOf(from), anchor: place(from) };
  }
  range.end = place(to);
  markRange();
}

function endRange() {
  range = null;
  markRange();
}

// The range's cells, row by row (null if none, or a row of it went).
function rangeCells() {
  if (!range || !range.grid.isConnected) return null;
  const rows = rowsOf(range.grid);
  const [top, bottom] = [range.anchor[0], range.end[0]].map((id) => rows.findIndex((r) => r.id === id)).sort((a, b) => a - b);
  const [left, right] = [range.anchor[1], range.end[1]].sort((a, b) => a - b);
  return top < 0 ? null : rows.slice(top, bottom + 1).map((row) => cellsOf(row).slice(left, right + 1));
}

function block(cell) {
  const cells = rangeCells();
  return cells && cells.flat().includes(cell) ? cells : [[cell]];
}

function markRange() {
  for (const cell of document.querySelectorAll(".in-range")) cell.classList.remove("in-range");
  const cells = (rangeCells() || []).flat();
  if (cells.length > 1) for (const cell of cells) cell.classList.add("in-range");
}

// A click or Tab elsewhere ends the range; rows drawn again get their marks back.
document.addEventListener("focusin", (event) => {
  const cell = range && gridCellOf(event.target);
  if (range && !(cell && `${place(cell)}` === `${range.end}`)) endRange();
});
document.addEventListener("htmx:afterSettle", () => range && markRange());

function say(text) {
  document.getElementById("live-status").textContent = text;
}

// Quoted when it holds a tab, a line break or a quote, as spreadsheets do.
function tsvCell(text) {
  return /[\t\n\r"]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

// Tab-separated lines (LF or CRLF, quoted cells may hold both) as rows of values.
function parseTsv(text) {
  const rows = [[]];
  const field = /(?:"((?:[^"]|"")*)"|([^\t\r\n]*))(\t|\r?\n|\r|$)/y;
  for (let m; (m = field.exec(text)); ) {
    rows[rows.length - 1].push(m[1] === undefined ? m[2] : m[1].replaceAll('""', '"'));
    if (!m[3] || field.lastIndex >= text.length) {
      if (m[3] === "\t") rows[rows.length - 1].push("");
      break;
    }
    if (m[3] !== "\t") rows.push([]);
  }
  return rows;
}

function gridCellOf(target) {
  const cell = target instanceof Element && target.closest("td");
  return cell && cell === target && cell.matches(CELL) ? cell : null;
}

document.addEventListener("copy", (event) => {
  const cell = gridCellOf(document.activeElement);
  if (!cell) return; // an editor copies its own selection
  const rows = block(cell);
  const text = (c) => (c.dataset.field ? valueOf(c) : c.querySelector("button, form") ? "" : c.textContent.trim());
  event.clipboardData.setData("text/plain", rows.map((cells) => cells.map((c) => tsvCell(text(c))).join("\t")).join("\n"));
  event.preventDefault();
  say(`Copied ${rows.length * rows[0].length} cells.`);
});

document.addEventListener("paste", (event) => {
  const cell = gridCellOf(document.activeElement);
  if (!cell) return;
  event.preventDefault();
  const target = block(cell);
  let values = parseTsv(event.clipboardData.getData("text/plain"));
  if (values.length === 1 && values[0].length === 1) values = target.map((cells) => cells.map(() => values[0][0]));
  const rows = rowsOf(gridOf(cell));
  const [top, left] = [rows.indexOf(target[0][0].parentElement), cellsOf(target[0][0].parentElement).indexOf(target[0][0])];
  let pasted = 0;
  let refused = 0;
  values.forEach((line, r) =>
    line.forEach((value, c) => {
      const into = rows[top + r] && cellsOf(rows[top + r])[left + c];
      if (!into || !isEditable(into) || into.matches(".editing, .conflict")) return (refused += 1);
      pasted += 1;
      const original = valueOf(into);
      if (value === original) return;
      showValue(into, value);
      enqueue(rows[top + r], into.dataset.field, value, original);
    }),
  );
  endRange();
  say(`Pasted ${pasted} cells.`);
  if (refused) {
    const text = `${refused} pasted ${refused === 1 ? "value was" : "values were"} left out: past the last row or column of this page, or for a cell that cannot be edited.`;
    showToast({ key: "paste", text });
  }
});

// PageDown/PageUp: the next or previous page, keeping the column (and the row's
// place); in a list without pages, its last or first row.
function turnPage(cell, rel, at, index) {
  const grid = gridOf(cell);
  const region = cell.closest(".table-region");
  const link = region && grid === region.querySelector(GRID) && region.querySelector(`.pager a[rel="${rel}"][href]`);
  if (!link) {
    const rows = rowsOf(grid);
    focusCell(cellAt(rel === "next" ? rows[rows.length - 1] : rows[0], index));
    return;
  }
  pageTurn = { region: region.id, grid, row: at, field: cell.dataset.field, index };
  link.click();
}

// "?" shows the keys (a disclosure under the table); Escape goes back.
let keysFrom = null;

function showKeys(cell) {
  const region = cell.closest(".table-region") || document;
  const keys = region.querySelector("details.grid-keys");
  if (!keys) return;
  keysFrom = cell;
  keys.open = true;
  keys.querySelector("summary").focus();
}

// ------------------------------------------------------------------ pointer and forms

document.addEventListener("click", (event) => {
  const cell = event.target.closest(CELL);
  if (cell && isEditable(cell) && !event.target.closest("a, button, input, form")) {
    openEditor(cell, { select: true });
  }
});

// The touch-screen buttons of an editor, and "Keep mine" of a conflict.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.matches("form.cell-editor")) {
    event.preventDefault();
    const cell = form.closest("td");
    commit(form.querySelector("input[name]"));
    focusCell(cell);
    return;
  }
  if (form.matches("form.cell-conflict")) {
    event.preventDefault();
    const cell = form.closest("td");
    const mine = form.querySelector("input[name]").value;
    cell.classList.remove("conflict");
    showValue(cell, mine);
    focusCell(cell);
    enqueue(cell.closest("tr"), form.dataset.field, mine, form.dataset.original);
  }
});

document.addEventListener("click", (event) => {
  const button = event.target.closest("form.cell-editor .editor-cancel");
  if (button) cancel(button.form.querySelector("input[name]"));
});

// Leaving the field saves it, unless the whole window lost focus (switching tabs):
// then the editor waits for the person to come back.
document.addEventListener("focusout", (event) => {
  const input = event.target;
  if (!(input instanceof Element) || !input.matches(EDITOR_INPUT)) return;
  if (swapping || input.dataset.done || !input.isConnected || !document.hasFocus()) return;
  const to = event.relatedTarget;
  // Into its own form (the touch buttons), or onto a message.
  if (to && (input.form.contains(to) || to.closest("#toasts"))) return;
  commit(input);
});

// ------------------------------------------------------------------ tab stops

// One tab stop per grid (roving tabindex): Tab enters a table at the last cell
// used and leaves it for the pager; the buttons in rows are reached by arrows.
function setTabStop(cell) {
  for (const other of gridOf(cell).querySelectorAll(':scope > tbody > tr > td[tabindex="0"]')) {
    other.tabIndex = -1;
  }
  cell.tabIndex = 0;
}

function ensureTabStops(root) {
  const grids = root.matches && root.matches(GRID) ? [root] : root.querySelectorAll(GRID);
  for (const grid of grids) {
    for (const control of grid.querySelectorAll(":scope > tbody > tr.data-row > td :is(button, a[href])")) {
      control.tabIndex = -1;
    }
    if (grid.querySelector(':scope > tbody > tr.data-row > td[tabindex="0"]')) continue;
    const rows = rowsOf(grid);
    const first = rows.length && (editableCells(rows[0])[0] || cellsOf(rows[0])[0]);
    if (first) first.tabIndex = 0;
  }
}

document.addEventListener("focusin", (event) => {
  const cell = event.target.closest && event.target.closest(CELL);
  if (cell) setTabStop(cell);
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

// ------------------------------------------------------------------ live search history

// Typing in the search box rewrites the current history entry; each pause (1 s),
// Enter or leaving the box ends a burst, so Back steps through what was searched
// rather than through every letter. Sort and page links push as always.
let searching = false;
let searchPause = 0;

function endSearch() {
  searching = false;
  clearTimeout(searchPause);
}

document.addEventListener("htmx:beforeHistoryUpdate", (event) => {
  const { history, requestConfig } = event.detail;
  if (history.path === location.pathname + location.search || refilling.has(event.detail.target)) {
    history.type = "replace"; // the same view again: no new entry
    return;
  }
  const trigger = requestConfig && requestConfig.triggeringEvent;
  if (!trigger || trigger.type !== "input" || !trigger.target.closest("form.filters")) return;
  if (searching) history.type = "replace";
  searching = true;
});

document.addEventListener("input", (event) => {
  if (!event.target.closest || !event.target.closest("form.filters")) return;
  clearTimeout(searchPause);
  searchPause = setTimeout(endSearch, 1000);
});

document.addEventListener("submit", (event) => {
  if (event.target.matches("form.filters")) endSearch();
});

document.addEventListener("focusout", (event) => {
  if (event.target.closest && event.target.closest("form.filters")) endSearch();
});

// ------------------------------------------------------------------ back and forward

// Back and Forward ask the server for the page (historyCacheSize is 0: never a
// stale copy). Two quick presses send two requests, and htmx draws whichever
// answers last: only the newest may draw, or the page shows another entry than
// the address bar does.
let restoring = null;

document.addEventListener("htmx:historyCacheMiss", (event) => {
  if (restoring) restoring.abort();
  const xhr = event.detail.xhr;
  restoring = xhr;
  xhr.addEventListener("loadend", () => {
    if (restoring === xhr) restoring = null;
  });
});

// ------------------------------------------------------------------ emptied page

// Deleting the last rows of a page would leave it empty under a pager that still
// counts it: the region is drawn again from its URL, which the server clamps to
// the last page there is (issue 11). That view replaces the stale one in history.
const refilling = new WeakSet();

document.addEventListener("htmx:beforeSwap", (event) => {
  const { requestConfig, target, shouldSwap } = event.detail;
  if (!shouldSwap || requestConfig.verb !== "delete" || !target || !target.matches("tr.data-row")) return;
  const region = target.closest(".table-region");
  if (region && gridOf(target) === region.querySelector(GRID)) setTimeout(() => refill(region)); // after the swap
});

function refill(region) {
  if (!region.isConnected || rowsOf(region.querySelector(GRID)).length) return;
  if (!region.querySelector(".pager a[href]")) return; // the only page: empty is true
  refilling.add(region);
  htmx.ajax("GET", location.pathname + location.search, { source: region, target: region, swap: "outerHTML" });
}

// ------------------------------------------------------------------ filter messages

// A value the filter form sent that the view could not apply: the server fills
// the slot next to its field (out of band), and the field says it is invalid and
// points at the slot while that holds a message (issue 12).
function markFilterErrors() {
  for (const slot of document.querySelectorAll("form.filters .filter-error[data-for]")) {
    const input = document.getElementById(slot.dataset.for);
    if (!input) continue;
    if (slot.textContent.trim()) {
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", slot.id);
    } else {
      input.removeAttribute("aria-invalid");
      input.removeAttribute("aria-describedby");
    }
  }
}

// ------------------------------------------------------------------ busy table

// A view that takes more than ~150 ms to come says so on the table region.
const loading = new WeakMap();

document.addEventListener("htmx:beforeRequest", (event) => {
  const region = event.detail.target;
  if (!region || !region.matches || !region.matches(".table-region")) return;
  loading.set(
    event.detail.xhr,
    setTimeout(() => {
      region.setAttribute("aria-busy", "true");
      const table = region.querySelector(GRID);
      if (table) table.setAttribute("aria-busy", "true");
    }, 150),
  );
});

document.addEventListener("htmx:afterRequest", (event) => {
  clearTimeout(loading.get(event.detail.xhr));
  const region = event.detail.target;
  if (region && region.matches && region.matches(".table-region")) {
    region.removeAttribute("aria-busy");
    const table = region.querySelector(GRID);
    if (table) table.removeAttribute("aria-busy");
  }
});

// ------------------------------------------------------------------ messages

const retries = new WeakMap();

// Show a message cloned from the server's #toast-template. One per `key`: a
// second failure of the same cell or action replaces the first, never stacks.
function showToast({ key = "", text, signIn = false, retry = null }) {
  const box = document.getElementById("toasts");
  let toast = key && [...box.querySelectorAll(".toast[data-key]")].find((t) => t.dataset.key === key);
  if (!toast) {
    toast = document.getElementById("toast-template").content.firstElementChild.cloneNode(true);
    if (key) toast.dataset.key = key;
    box.append(toast);
  }
  toast.querySelector(".toast-text").textContent = text;
  const signInLink = toast.querySelector(".toast-sign-in"); // only where accounts exist
  if (signInLink) signInLink.hidden = !signIn;
  toast.querySelector(".toast-retry").hidden = !retry;
  if (retry) retries.set(toast, retry);
  return toast;
}

function newestToast() {
  const toasts = document.querySelectorAll("#toasts > .toast");
  return toasts[toasts.length - 1] || null;
}

function dismissToast(toast) {
  if (!toast) return false;
  const hadFocus = toast.contains(document.activeElement);
  toast.remove();
  if (hadFocus) restoreGridFocus();
  return true;
}

// Back to the cell the grid last had (its tab stop).
function restoreGridFocus() {
  const stop = document.querySelector(`${CELL}[tabindex="0"]`);
  if (stop) focusCell(stop);
}

document.addEventListener("click", (event) => {
  const dismiss = event.target.closest("[data-dismiss]");
  if (dismiss) {
    dismissToast(dismiss.closest(".toast"));
    return;
  }
  const retry = event.target.closest(".toast-retry");
  if (retry) {
    const toast = retry.closest(".toast");
    const again = retries.get(toast);
    dismissToast(toast);
    if (again) again();
  }
});

// Success messages go by themselves, but not while someone reads or points at them.
function armToasts(root) {
  const toasts = root.matches && root.matches(".toast") ? [root] : root.querySelectorAll(".toast");
  for (const toast of toasts) {
    const wait = Number(toast.dataset.timeout);
    if (!wait || toast.dataset.armed) continue;
    toast.dataset.armed = "1";
    const expire = () => {
      if (!toast.isConnected) return;
      if (toast.matches(":hover, :focus-within")) setTimeout(expire, 1000);
      else toast.remove();
    };
    setTimeout(expire, wait);
  }
}

// The server's own words for an error, and what the client can do about it.
function serverMessage(xhr) {
  const type = xhr.getResponseHeader("Content-Type") || "";
  if (!type.startsWith("text/html") || !xhr.responseText) return { text: "", reason: "" };
  const doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
  const found = doc.querySelector(".error-message");
  if (!found) return { text: "", reason: "" };
  return { text: found.textContent.replace(/\s+/g, " ").trim(), reason: found.dataset.reason || "" };
}

document.addEventListener("htmx:responseError", (event) => {
  const { xhr, requestConfig, elt } = event.detail;
  const { text, reason } = serverMessage(xhr);
  const save = savingBy(event.detail);
  if (save) {
    // The save queue decides what to do (retry, reopen the editor, report).
    Object.assign(save, { status: xhr.status, message: text, reason });
    return;
  }
  const row = elt && elt.closest && elt.closest("tr.data-row");
  if (requestConfig.verb === "delete" && xhr.status === 404 && row) {
    markGone(row, text);
    return;
  }
  if (reason === "csrf" && elt && !elt.dataset.csrfRetried) {
    // Once, with the session's current token (the form's values go along).
    elt.dataset.csrfRetried = "1";
    refreshToken()
      .then(() => htmx.ajax(requestConfig.verb.toUpperCase(), requestConfig.path, { source: elt }))
      .catch(() => showToast({ key: "csrf", text: `Not done: ${text}` }));
    return;
  }
  const reading = requestConfig.verb === "get";
  const tryAgain = xhr.status >= 500 ? " Please try again." : "";
  const reasonText = text || `the server answered ${xhr.status} ${xhr.statusText}.`;
  showToast({
    key: `${requestConfig.verb}:${requestConfig.path}`,
    text: `${reading ? "Could not load" : "Not done"}: ${reasonText}${tryAgain}`,
    signIn: reason === "sign-in",
  });
});

for (const name of ["htmx:sendError", "htmx:timeout"]) {
  document.addEventListener(name, (event) => {
    if (savingBy(event.detail)) return; // a save: its queue reports it
    showToast({
      key: "offline",
      text: "Could not reach the server: nothing was changed. Check the connection and try again.",
    });
  });
}

// ------------------------------------------------------------------ undo and redo

// The change sets this tab made (issue 14), newest last, in sessionStorage (one
// per tab, kept over a reload): {undo: [{token, label}], redo: [...]}. Each
// write's answer names its set (X-Change-Set: a token only this person can use;
// X-Change-Label: what it did, percent-encoded). Undo sends the newest back to
// the server, whose answer holds the token that redoes it, and the other way.
const CHANGES_KEY = "reeltable-change-sets";
const CHANGES_KEPT = 100;
const NOTHING = { undo: "Nothing to undo", redo: "Nothing to redo" };
let changing = false; // an undo or redo is being answered: the next one waits

function changeBar() {
  return document.querySelector(".change-bar");
}

function changeStacks() {
  try {
    const kept = JSON.parse(sessionStorage.getItem(CHANGES_KEY) || "null");
    if (kept && Array.isArray(kept.undo) && Array.isArray(kept.redo)) return kept;
  } catch {
    // Storage turned off or spoilt: this tab starts afresh.
  }
  return { undo: [], redo: [] };
}

function keepStacks(stacks) {
  stacks.undo = stacks.undo.slice(-CHANGES_KEPT);
  stacks.redo = stacks.redo.slice(-CHANGES_KEPT);
  try {
    sessionStorage.setItem(CHANGES_KEY, JSON.stringify(stacks));
  } catch {
    // Not kept over a reload; this page still has them.
  }
  showStacks(stacks);
}

// The buttons say what they would do (title and aria-describedby), or are off.
function showStacks(stacks = changeStacks()) {
  for (const kind of ["undo", "redo"]) {
    const button = document.getElementById(kind === "undo" ? "change-undo" : "change-redo");
    const what = document.getElementById(kind === "undo" ? "change-undo-what" : "change-redo-what");
    if (!button || !what) continue;
    const list = stacks[kind];
    const top = list[list.length - 1];
    const text = top ? top.label : NOTHING[kind];
    button.disabled = !top;
    button.title = text;
    what.textContent = text;
  }
}

function changeMessage(text) {
  const box = document.getElementById("change-message");
  if (box) box.textContent = text;
}

function headerList(xhr, name) {
  return (xhr.getResponseHeader(name) || "").split(" ").filter(Boolean);
}

function labelOf(xhr) {
  try {
    return decodeURIComponent(xhr.getResponseHeader("X-Change-Label") || "") || "a change";
  } catch {
    return "a change";
  }
}

function isChangeRequest(path) {
  const bar = changeBar();
  return Boolean(bar) && (path === bar.dataset.undoUrl || path === bar.dataset.redoUrl);
}

// Every write this tab makes (a save, an add, a delete, an undo of a delete)
// goes on the undo stack; a new write ends what could be redone.
document.addEventListener("htmx:afterRequest", (event) => {
  const { xhr, requestConfig, successful } = event.detail;
  if (!xhr || !successful || !requestConfig || isChangeRequest(requestConfig.path)) return;
  const token = xhr.getResponseHeader("X-Change-Set");
  if (!token) return;
  const stacks = changeStacks();
  stacks.undo.push({ token, label: labelOf(xhr) });
  stacks.redo = [];
  keepStacks(stacks);
});

// Undo (or redo) the newest set on the stack, through the server; a refusal says
// who changed what since, in a toast and next to the buttons.
async function runChange(kind) {
  const bar = changeBar();
  if (!bar || changing) return;
  changing = true;
  try {
    // A save still on its way is the newest change: wait for it to be named.
    await Promise.all([...queues.values()]);
    const stacks = changeStacks();
    const entry = stacks[kind].pop();
    if (!entry) return;
    const at = stacks[kind].length; // where it goes back if it is not done
    keepStacks(stacks);
    const url = kind === "undo" ? bar.dataset.undoUrl : bar.dataset.redoUrl;
    let xhr = null;
    const seen = (event) => {
      if (event.detail.requestConfig && event.detail.requestConfig.path === url) xhr = event.detail.xhr;
    };
    document.addEventListener("htmx:afterRequest", seen);
    try {
      await htmx.ajax("POST", url, { source: bar, swap: "none", values: { token: entry.token } });
    } catch {
      // No answer: handled below as status 0.
    } finally {
      document.removeEventListener("htmx:afterRequest", seen);
    }
    changeAnswered(kind, entry, xhr, at);
  } finally {
    changing = false;
  }
}

function changeAnswered(kind, entry, xhr, at) {
  const status = xhr ? xhr.status : 0;
  const stacks = changeStacks();
  // Back where it was on its stack (under any write made meanwhile), so it can
  // be tried again and what lies under it keeps its order.
  const putBack = () => {
    stacks[kind].splice(Math.min(at, stacks[kind].length), 0, entry);
    keepStacks(stacks);
  };
  if (status === 200) {
    const token = xhr.getResponseHeader("X-Change-Set");
    if (token) stacks[kind === "undo" ? "redo" : "undo"].push({ token, label: entry.label });
    keepStacks(stacks);
    changeMessage(`${kind === "undo" ? "Undone" : "Redone"}: ${entry.label}.`);
    redrawChanged(xhr);
    return;
  }
  if (status === 409) {
    const doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
    const said = doc.querySelector(".toast-text");
    changeMessage(said ? said.textContent.trim() : `Not done: ${entry.label}.`);
    // Refused as things stand (someone changed a field since): it stays, for
    // when the conflict is settled; Undo would otherwise skip to an older set.
    putBack();
    return;
  }
  if (status === 404 || status === 403 || status === 422) {
    changeMessage(`Not done: ${entry.label}.`);
    return;
  }
  // No answer, or the server failed: it can be tried again.
  putBack();
  changeMessage(`Not done (${status ? `the server answered ${status}` : "no connection"}): ${entry.label}.`);
}

// The rows an undo or redo changed are drawn again where they are, rows it
// deleted go; rows it brought back appear with the table drawn again. Counts and
// summaries came out of band with the answer.
function redrawChanged(xhr) {
  const hadFocus = document.activeElement;
  for (const id of headerList(xhr, "X-Removed-Rows")) {
    const row = document.getElementById(id);
    if (row && row.matches("tr.data-row")) row.remove();
  }
  syncRows();
  if (!hadFocus.isConnected) restoreGridFocus();
  for (const id of headerList(xhr, "X-Changed-Rows")) {
    const row = document.getElementById(id);
    if (!row || !row.matches("tr.data-row") || !row.dataset.rowUrl) continue;
    htmx.ajax("GET", row.dataset.rowUrl, { source: row, target: row, swap: "outerHTML" });
  }
  const region = document.querySelector(".table-region");
  const created = headerList(xhr, "X-Created-Rows");
  if (!created.length || !region) return;
  // Rows of this table (or too many to list, "*"): the region is drawn again.
  // Only rows shown under its rows (a rating under its movie): the open lists
  // take them in place (static/js/live.js), keeping every expansion open.
  const own = `${region.id.replace(/-table$/, "")}-`;
  if (created.some((id) => id === "*" || id.startsWith(own))) {
    htmx.ajax("GET", location.pathname + location.search, { source: region, target: region, swap: "outerHTML" });
  } else {
    document.dispatchEvent(new CustomEvent("reeltable:children-created"));
  }
}

// Rows static/js/live.js took out (deleted elsewhere, issue 14): their child rows
// go too, the grid keeps a tab stop, and a focus they held goes back to the grid.
document.addEventListener("reeltable:rows-removed", () => {
  syncRows();
  ensureTabStops(document);
  if (focusLost()) restoreGridFocus();
});

document.addEventListener("click", (event) => {
  const button = event.target.closest && event.target.closest("#change-undo, #change-redo");
  if (button) runChange(button.id === "change-undo" ? "undo" : "redo");
});

// Ctrl+Z undoes, Ctrl+Shift+Z and Ctrl+Y redo, in the table and on the buttons;
// in a text field the browser's own undo of the typing applies.
function changeKey(event, target) {
  if (!(event.ctrlKey || event.metaKey) || event.altKey || !changeBar()) return false;
  if (target.matches("input, textarea, select, [contenteditable]")) return false;
  if (target !== document.body && !target.closest(`${GRID}, .change-bar`)) return false;
  const key = event.key.toLowerCase();
  let kind = null;
  if (key === "z") kind = event.shiftKey ? "redo" : "undo";
  else if (key === "y" && !event.shiftKey) kind = "redo";
  if (!kind) return false;
  event.preventDefault();
  runChange(kind);
  return true;
}

// ------------------------------------------------------------------ after swaps

document.addEventListener("htmx:load", (event) => {
  armToasts(event.target);
});

document.addEventListener("htmx:afterSettle", (event) => {
  syncRows();
  restoreFocus();
  ensureTabStops(document);
  markFilterErrors();
  // Say what a filter, sort or page change found, and what it could not apply
  // (the region itself is replaced, so it cannot be the live region).
  if (event.target.matches && event.target.matches(".table-region")) {
    const said = [...event.target.querySelectorAll(".table-toolbar > :is(.row-count, .not-applied)")];
    const status = document.getElementById("live-status");
    if (said.length && status) status.textContent = said.map((p) => p.textContent.trim()).join(" ");
  }
});

ensureTabStops(document);
armToasts(document);
showStacks();
