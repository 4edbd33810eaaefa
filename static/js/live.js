// Other people's edits, live (issue 14): an open table asks the server what
// changed since the newest change id it knows, and follows. Conditional polling
// (GET /changes/since, app/views/live.py): the state is the change log in the
// database, so any worker of any app server answers and no worker is held per
// tab; an idle tab costs one 204 (one primary-key lookup) per POLL_MS, and none
// while hidden. Rows changed elsewhere are drawn again in place through htmx, so
// app.js's swap rules apply (keepRow; an open editor or a save in flight keeps
// its cell, hx-preserve); rows deleted elsewhere are marked, then go; rows
// created elsewhere wait behind a "3 new movies - Show" notice, so the page never
// jumps under the reader. This tab's own writes are left out (their X-Change-Set).
// Names used here are written down in app/views/rows.py (the DOM contract).
"use strict";

(() => {
  // The worst case until a change shows is POLL_MS plus two round trips (the
  // poll, then the row): 1.5 s keeps it within the 2 s at 200 ms latency.
  const POLL_MS = 1500;
  const GONE_MS = 1200; // a deleted row stays marked this long, then goes
  const LIT_MS = 2000; // as long as the live-changed animation (app.css)

  const mine = new Set(); // change set ids this tab made
  const pending = new WeakMap(); // notice -> ids of rows created elsewhere, not shown
  let writes = 0; // this tab's writes on their way
  let epoch = 0; // counts this tab's writes: a poll crossed by one is asked again
  let asking = false;

  function notice() {
    return document.querySelector(".live-notice[data-live-url]");
  }

  // ---------------------------------------------------------------- this tab's writes

  document.addEventListener("htmx:beforeSend", (event) => {
    const config = event.detail.requestConfig;
    if (config && config.verb !== "get") {
      writes += 1;
      epoch += 1;
    }
  });

  document.addEventListener("htmx:afterRequest", (event) => {
    const { xhr, requestConfig } = event.detail;
    if (requestConfig && requestConfig.verb !== "get") writes = Math.max(0, writes - 1);
    // A token is table, set id and signature, dot-separated (app/views/history.py sign).
    const token = xhr && xhr.getResponseHeader("X-Change-Set");
    const set = token ? Number(token.split(".")[1]) : 0;
    if (set) mine.add(set);
  });

  // ---------------------------------------------------------------- asking

  async function poll() {
    const box = notice();
    if (!box || asking || writes > 0 || document.visibilityState !== "visible") return;
    asking = true;
    const started = epoch;
    const query = new URLSearchParams({ after: box.dataset.liveAfter, table: box.dataset.liveTable });
    try {
      const response = await fetch(`${box.dataset.liveUrl}?${query}`, {
        credentials: "same-origin",
        cache: "no-store",
        headers: { Accept: "application/json" },
      });
      if (response.status !== 200) return; // 204: nothing new; errors: ask again later
      const answer = await response.json();
      // A write of this tab's crossed the question: its set may be in the answer
      // before its token reached this tab. Ask again from the same id.
      if (epoch !== started || writes > 0 || !box.isConnected) return;
      box.dataset.liveAfter = String(answer.last);
      follow(box, answer);
    } catch {
      // Offline or the server is away: the next tick asks again from the same id.
    } finally {
      asking = false;
    }
  }

  setInterval(poll, POLL_MS);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") poll();
  });

  // ---------------------------------------------------------------- following

  // Rows of a group some other tab (or person) touched.
  function othersOf(list) {
    return (list || []).filter(([, sets]) => sets.some((set) => !mine.has(set))).map(([id]) => id);
  }

  function rowOf(region, box, id) {
    const row = document.getElementById(`${box.dataset.singular}-${id}`);
    return row && row.matches("tr.data-row") && region.contains(row) ? row : null;
  }

  function follow(box, answer) {
    const region = box.closest(".table-region");
    if (!region) return;
    if (answer.refresh) {
      // Too many to follow row by row: offer the region drawn again.
      say(box, "Many changes elsewhere.");
      return;
    }
    for (const id of othersOf(answer.updated)) redraw(rowOf(region, box, id));
    const deleted = othersOf(answer.deleted);
    for (const id of deleted) retire(rowOf(region, box, id));
    const created = othersOf(answer.created).filter((id) => !document.getElementById(`${box.dataset.singular}-${id}`));
    if (created.length || deleted.length) recount(box, region, created);
  }

  // A row changed elsewhere: drawn again where it is (app.js keeps its <tr>, and
  // the cells someone is typing in or saving), and lit briefly. Not a row with a
  // conflict's choice open: the choice already shows the stored value, and either
  // answer to it draws the whole row again.
  function redraw(row) {
    if (!row || row.classList.contains("is-gone") || !row.dataset.rowUrl) return;
    if (row.querySelector(":scope > td.conflict")) return;
    htmx.ajax("GET", row.dataset.rowUrl, { source: row, target: row, swap: "outerHTML" }).then(() => {
      const shown = document.getElementById(row.id);
      if (!shown) return;
      shown.classList.remove("live-changed");
      void shown.offsetWidth; // restart the animation if it is still running
      shown.classList.add("live-changed");
      setTimeout(() => shown.classList.remove("live-changed"), LIT_MS);
    });
  }

  // A row deleted elsewhere: marked, then taken out. One being edited or saved
  // stays marked: its save is refused with the server's message and the text.
  function retire(row) {
    if (!row || row.classList.contains("live-removing")) return;
    row.classList.add("is-gone", "live-removing");
    row.setAttribute("aria-disabled", "true");
    if (row.querySelector(":scope > td.editing, :scope > td[aria-busy]")) return;
    setTimeout(() => {
      if (row.querySelector(":scope > td.editing, :scope > td[aria-busy]")) return;
      row.remove();
      document.dispatchEvent(new CustomEvent("reeltable:rows-removed"));
    }, GONE_MS);
  }

  // The view as the server would draw it now: its count is shown at once; rows
  // created elsewhere that it would show wait behind the notice.
  async function recount(box, region, created) {
    try {
      const response = await fetch(location.pathname + location.search, {
        credentials: "same-origin",
        headers: { "HX-Request": "true" },
      });
      if (!response.ok || !box.isConnected) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      const count = `${box.dataset.singular}-count`;
      const now = fresh.getElementById(count);
      const shown = document.getElementById(count);
      if (now && shown) shown.textContent = now.textContent;
      const waiting = pending.get(box) || new Set();
      for (const id of created) {
        if (fresh.getElementById(`${box.dataset.singular}-${id}`)) waiting.add(id);
      }
      pending.set(box, waiting);
      if (waiting.size) {
        const noun = waiting.size === 1 ? box.dataset.singular : box.dataset.plural;
        say(box, `${waiting.size} new ${noun}`);
      }
    } catch {
      // The count stays as drawn; the next change asks again.
    }
  }

  function say(box, text) {
    box.querySelector(".live-notice-text").textContent = text;
    box.hidden = false;
  }

  // "Show": the region drawn again (it carries a fresh notice and change id).
  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest(".live-show");
    if (!button) return;
    const region = button.closest(".table-region");
    if (!region) return;
    htmx.ajax("GET", location.pathname + location.search, { source: region, target: region, swap: "outerHTML" });
  });
})();
