// The "Import CSV" page: upload progress, a size check before sending, and showing
// the 413, 503 and 507 messages that htmx would otherwise drop as errors. (The
// progress of the check and of the import is the server's fragment, polling.)
"use strict";

(() => {
  const form = document.getElementById("import-form");
  if (!form) return;
  const progress = document.getElementById("import-progress");
  const result = document.getElementById("import-result");

  // The server's "cannot be imported" message (#import-message), with our reason.
  const say = (text) => {
    const blank = document.getElementById("import-message").content.firstElementChild;
    const box = blank.cloneNode(true);
    box.querySelector(".error-detail").textContent = text;
    result.replaceChildren(box);
  };

  // Refuse a file over the limit before uploading it (the server would too).
  form.addEventListener("htmx:confirm", (event) => {
    const file = form.querySelector('input[type="file"]').files[0];
    const limit = Number(form.dataset.maxBytes);
    if (file && limit && file.size > limit) {
      event.preventDefault();
      say(`This file is ${(file.size / 1048576).toFixed(1)} MB; the import limit is ` +
        `${Math.round(limit / 1048576)} MB.`);
    }
  });

  form.addEventListener("htmx:beforeRequest", () => {
    progress.value = 0;
    progress.hidden = false;
  });
  form.addEventListener("htmx:xhr:progress", (event) => {
    if (event.detail.lengthComputable) {
      progress.max = event.detail.total;
      progress.value = event.detail.loaded;
    }
  });
  form.addEventListener("htmx:afterRequest", () => {
    progress.hidden = true;
  });

  // htmx swaps 2xx, 409 and 422 by configuration; the import's 413 (too large),
  // 507 (no room to store it) and 503 (another import is writing: the preview with
  // that note) carry a message too, so show it in place. Listened for on the page:
  // the Import button's form comes and goes with each preview.
  document.addEventListener("htmx:beforeSwap", (event) => {
    if (event.detail.target !== result) return;
    if ([413, 503, 507].includes(event.detail.xhr.status)) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
