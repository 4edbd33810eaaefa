// Other people's edits, live (issue 14): an open table asks the server what
// changed since the newest change id it knows, and follows. Conditional polling
// (GET /changes/since, app/views/live.py): the state is the change log in the
// database, so any worker of any app server answers and no worker is held per
// tab; an idle tab costs one 204 (one index lookup) per POLL_MS, and none
// while hidden. Rows changed elsewhere are drawn again in place through htmx, so
// app.js's swap rules apply (keepRow; an open editor or a save in flight keeps
// its cell, hx-preserve); rows deleted elsewhere are marked, then go; rows
// created elsewhere wait behind a "3 new movies - Show" notice, so the page never
// jumps under the reader. This tab's own writes are left out (their X-Change-Set).
// Rows shown under this table's rows (a movie's ratings) follow too: in an open
// list they are drawn again, go or join it in place, and the parent's summary is
// read again. The cursor is the newest change id seen and, on PostgreSQL, the
// snapshot it was read in (data-live-snapshot, then the answer's "snapshot"): a
// write with a smaller id that commits later is reported by the next poll.
// Names used here are written down in app/views/rows.py (the DOM contract).
"use strict";

(() => {
  // The worst case until a change shows is POLL_MS plus two round trips (the
  // poll, then the row): 1.5 s keeps it within the 2 s at 200 ms latency.
  const POLL_MS = 1500;
  const GONE_MS = 1200; // a deleted row stays marked this long, then goes
  const LIT_MS = 2000; // as long as the live-changed animation (app.css)

  const mine = new Set(); // change set ids this tab made
  // Change sets this tab has followed, never followed twice whichever answers
  // list them (a region drawn again starts from a cursor of its own, read
  // before its rows). Kept to the newest.
  const followed = new Set();
  const FOLLOWED_MAX = 5000;
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
    // The rest of the cursor, as the region was drawn or the last answer gave it.
    if (box.dataset.liveSnapshot) query.set("snapshot", box.dataset.liveSnapshot);
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
      box.dataset.liveSnapshot = answer.snapshot || "";
      follow(box, answer);
      remember(answer);
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

  // Rows of a group some other tab (or person) touched in a set not yet followed.
  function othersOf(list) {
    const fresh = (set) => !mine.has(set) && !followed.has(set);
    return (list || []).filter(([, sets]) => sets.some(fresh)).map(([id]) => id);
  }

  function remember(answer) {
    const groups = [answer.updated, answer.deleted, answer.created];
    for (const child of Object.values(answer.children || {})) groups.push(child.updated, child.deleted, child.created);
    for (const group of groups) {
      for (const [, sets] of group || []) for (const set of sets) followed.add(set);
    }
    // A Set iterates in insertion order: the oldest go first.
    for (const set of followed) {
      if (followed.size <= FOLLOWED_MAX) break;
      followed.delete(set);
    }
  }

  function rowOf(region, box, id, singular = box.dataset.singular) {
    const row = document.getElementById(`${singular}-${id}`);
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
    for (const [name, group] of Object.entries(answer.children || {})) followChildren(box, region, name, group);
  }

  // Rows shown under this table's rows (a movie's ratings) changed elsewhere:
  // those in an open list are drawn again or go, rows created there join the
  // list, and each parent's summary ("7.4 · 12") is read again.
  function followChildren(box, region, name, group) {
    const parents = new Set();
    const grown = new Set();
    const fresh = (sets) => sets.some((set) => !mine.has(set) && !followed.has(set));
    for (const [kind, rows] of [["updated", group.updated], ["deleted", group.deleted], ["created", group.created]]) {
      for (const [id, sets, parent] of rows || []) {
        if (!fresh(sets)) continue;
        if (parent) parents.add(parent);
        const row = rowOf(region, box, id, group.singular);
        if (kind === "updated") redraw(row);
        else if (kind === "deleted") retire(row);
        else if (parent && !row) grown.add(parent);
      }
    }
    for (const parent of parents) {
      const row = rowOf(region, box, parent);
      if (row) refreshSummary(row);
    }
    for (const parent of grown) {
      const list = document.getElementById(`${box.dataset.singular}-${parent}-${name}`);
      if (list && list.matches("tr.child-row")) refreshChildren(list);
    }
  }

  // A server fragment of <tr>s, parsed where rows belong (in `context`, a
  // <tbody>): a parser in a document's body would drop the <tr>s.
  async function fetchRows(url, context) {
    const response = await fetch(url, { credentials: "same-origin", headers: { "HX-Request": "true" } });
    if (!response.ok) return null;
    const range = document.createRange();
    range.selectNodeContents(context);
    return range.createContextualFragment(await response.text());
  }

  function light(element) {
    element.classList.remove("live-changed");
    void element.offsetWidth; // restart the animation if it is still running
    element.classList.add("live-changed");
    setTimeout(() => element.classList.remove("live-changed"), LIT_MS);
  }

  // A parent's summaries read again from its row (the row itself is not
  // swapped: an editor open in it, or its open list, stay as they are).
  async function refreshSummary(row) {
    if (!row.dataset.rowUrl) return;
    try {
      const fresh = await fetchRows(row.dataset.rowUrl, row.parentElement);
      if (!fresh) return;
      for (const figure of fresh.querySelectorAll("span.summary-value[id]")) {
        const shown = document.getElementById(figure.id);
        if (!shown || shown.textContent === figure.textContent) continue;
        shown.className = figure.className;
        shown.textContent = figure.textContent;
        light(shown);
      }
    } catch {
      // The figure stays as drawn; the next change reads it again.
    }
  }

  // An open list under a parent row (tr.child-row) gets the rows it lacks, in
  // the server's order, without being drawn again: the list stays open, and
  // editors and saves in it are left alone. Its "Showing the newest…" line follows.
  async function refreshChildren(list) {
    const parent = document.getElementById(list.dataset.childOf);
    const toggle = parent && parent.querySelector(".toggle-button[data-expand-url]");
    const body = list.querySelector("tbody[id]");
    if (!toggle || !body) return;
    try {
      const fresh = await fetchRows(toggle.dataset.expandUrl, parent.parentElement);
      const freshBody = fresh && fresh.getElementById(body.id);
      if (!freshBody || !list.isConnected) return;
      const rows = [...freshBody.querySelectorAll(":scope > tr.data-row")];
      rows.forEach((row, index) => {
        if (document.getElementById(row.id)) return;
        const next = rows.slice(index + 1).map((r) => document.getElementById(r.id)).find((r) => r && body.contains(r));
        const added = document.adoptNode(row);
        body.insertBefore(added, next || body.querySelector(":scope > tr.empty-row"));
        htmx.process(added);
        light(added);
      });
      const more = list.querySelector(".nested > p.more");
      const freshMore = fresh.querySelector(".nested > p.more");
      if (more && freshMore) more.replaceWith(freshMore);
      else if (more) more.remove();
      else if (freshMore) list.querySelector(".nested > table").after(freshMore);
    } catch {
      // The list stays as it is; "Show" or a reload brings the rows.
    }
  }

  // An undo that brought rows back under parents (app.js): the open lists get
  // them, and nothing else on the page is drawn again.
  document.addEventListener("reeltable:children-created", () => {
    for (const list of document.querySelectorAll(".table-region tr.child-row[data-child-of]")) refreshChildren(list);
  });

  // A row changed elsewhere: drawn again where it is (app.js keeps its <tr>, and
  // the cells someone is typing in or saving), and lit briefly. Not a row with a
  // conflict's choice open: the choice already shows the stored value, and either
  // answer to it draws the whole row again.
  function redraw(row) {
    if (!row || row.classList.contains("is-gone") || !row.dataset.rowUrl) return;
    if (row.querySelector(":scope > td.conflict")) return;
    htmx.ajax("GET", row.dataset.rowUrl, { source: row, target: row, swap: "outerHTML" }).then(() => {
      const shown = document.getElementById(row.id);
      if (shown) light(shown);
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
