// reeltable's small behaviours that htmx cannot express on its own.
"use strict";

// Send the CSRF token (from the meta tag) with every htmx request.
document.addEventListener("htmx:configRequest", (event) => {
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) event.detail.headers["X-CSRFToken"] = meta.content;
});
