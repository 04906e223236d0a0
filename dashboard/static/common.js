// Shared helpers for dashboard pages: panels loaded after the page, CSRF-aware fetch,
// copy-to-clipboard buttons and confirmation before destructive form posts.
"use strict";
(function () {
  // Slow panels (the report's trends and pipeline, each funnel's figures on the funnels
  // page) arrive after the page, which waits for none of them.
  for (const slot of document.querySelectorAll(".panel-slot[data-panel-url]")) {
    const failed = () => {
      const note = document.createElement("p");
      note.className = "error";
      note.textContent = slot.dataset.errorText || "This panel could not be loaded.";
      slot.replaceChildren(note);
      slot.dataset.loaded = "error";
    };
    fetch(slot.dataset.panelUrl, { credentials: "same-origin" })
      .then((r) => r.text().then((html) => ({ ok: r.ok, html })))
      .then(({ ok, html }) => {
        if (!ok) return failed();
        // Server-rendered and escaped like the page itself; it carries no script.
        slot.innerHTML = html;
        slot.dataset.loaded = "true";
      })
      .catch(failed);
  }
})();
(function () {
  const meta = document.querySelector('meta[name="csrf-token"]');
  window.dashboard = {
    csrfToken: meta ? meta.content : "",
    postForm(url, formData) {
      return fetch(url, {
        method: "POST",
        body: formData,
        headers: { "X-CSRFToken": this.csrfToken, Accept: "application/json" },
        credentials: "same-origin",
      }).then((r) => r.json().then((body) => ({ ok: r.ok, status: r.status, body })));
    },
    getJSON(url) {
      return fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then((r) => r.json().then((body) => ({ ok: r.ok, status: r.status, body })));
    },
    // Builds elements with textContent only: event data never becomes markup.
    el(tag, attrs, children) {
      const node = document.createElement(tag);
      for (const [k, v] of Object.entries(attrs || {})) {
        if (k === "text") node.textContent = v;
        else node.setAttribute(k, v);
      }
      for (const child of children || []) node.append(child);
      return node;
    },
  };

  // Forms that destroy something ask first: <form data-confirm="Delete …?">.
  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-copy-target]");
    if (!button) return;
    const source = document.getElementById(button.dataset.copyTarget);
    if (!source) return;
    const text = source.textContent;
    const done = () => {
      const label = button.textContent;
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, () => selectText(source));
    } else {
      selectText(source);
      done();
    }
  });

  function selectText(node) {
    const range = document.createRange();
    range.selectNodeContents(node);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    try { document.execCommand("copy"); } catch (e) { /* selection stays for manual copy */ }
  }
})();
