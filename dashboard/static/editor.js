// Stage editor: live preview (debounced POST of the draft), drag-and-drop and button
// reordering without a reload. Without JavaScript the same buttons work through the server.
"use strict";
(function () {
  const form = document.getElementById("editor");
  if (!form) return;
  const stagesBox = document.getElementById("stages");
  const status = document.getElementById("preview-status");
  const el = window.dashboard.el;
  let timer = null;
  let inflight = 0;

  const stages = () => Array.from(stagesBox.querySelectorAll("fieldset[data-stage]"));

  // After a move, rename every stage-indexed attribute so the form reads as if the server had
  // rendered the new order; the server then needs no knowledge of the move.
  function renumber() {
    stages().forEach((stage, n) => {
      const fix = (value) => value.replace(/stages-\d+(?=-|$)/g, "stages-" + n);
      for (const node of [stage, ...stage.querySelectorAll("*")]) {
        for (const attr of ["id", "name", "for", "aria-describedby"]) {
          if (node.hasAttribute(attr)) node.setAttribute(attr, fix(node.getAttribute(attr)));
        }
        if (node.tagName === "BUTTON" && node.name === "action") {
          node.value = node.value.replace(/^([a-z_]+):\d+/, "$1:" + n);
        }
      }
      stage.querySelector("[data-order]").value = String(n);
      stage.querySelector("[data-stage-number]").textContent = String(n + 1);
      const up = stage.querySelector('[data-move="up"]');
      const down = stage.querySelector('[data-move="down"]');
      if (up) up.disabled = n === 0;
      if (down) down.disabled = n === stages().length - 1;
    });
    dirty = true;
    schedulePreview();
  }

  // Move up / down without a round trip.
  form.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-move]");
    if (!button) return;
    event.preventDefault();
    const stage = button.closest("fieldset[data-stage]");
    if (button.dataset.move === "up" && stage.previousElementSibling) {
      stagesBox.insertBefore(stage, stage.previousElementSibling);
    } else if (button.dataset.move === "down" && stage.nextElementSibling) {
      stagesBox.insertBefore(stage.nextElementSibling, stage);
    }
    renumber();
    button.focus();
  });

  // Drag by the handle with pointer events (mouse, pen and touch alike; HTML5 drag and drop
  // does not work on touch screens).
  let dragged = null;
  const stageAt = (x, y) => {
    const node = document.elementFromPoint(x, y);
    return node ? node.closest("#stages fieldset[data-stage]") : null;
  };
  stagesBox.addEventListener("pointerdown", (event) => {
    const handle = event.target.closest(".drag-handle");
    if (!handle) return;
    event.preventDefault();
    dragged = handle.closest("fieldset[data-stage]");
    dragged.classList.add("dragging");
    handle.setPointerCapture(event.pointerId);
  });
  stagesBox.addEventListener("pointermove", (event) => {
    if (!dragged) return;
    const target = stageAt(event.clientX, event.clientY);
    stages().forEach((s) => s.classList.toggle("drop-target", s === target && s !== dragged));
  });
  const endDrag = (event) => {
    if (!dragged) return;
    const target = event.type === "pointerup" ? stageAt(event.clientX, event.clientY) : null;
    if (target && target !== dragged) {
      const all = stages();
      const before = all.indexOf(dragged) > all.indexOf(target) ? target : target.nextElementSibling;
      stagesBox.insertBefore(dragged, before);
      renumber();
    }
    dragged.classList.remove("dragging");
    stages().forEach((s) => s.classList.remove("drop-target"));
    dragged = null;
  };
  stagesBox.addEventListener("pointerup", endDrag);
  stagesBox.addEventListener("pointercancel", endDrag);

  // Keep the legend, swatch and engagement picker in step with typing.
  form.addEventListener("input", (event) => {
    // Once a flagged field is edited, its old message no longer applies.
    if (event.target.getAttribute("aria-invalid") === "true") {
      event.target.removeAttribute("aria-invalid");
      const message = document.getElementById("err-" + event.target.name);
      if (message) message.remove();
    }
    const stage = event.target.closest("fieldset[data-stage]");
    if (stage && /-name$/.test(event.target.name) && /^stages-\d+-name$/.test(event.target.name)) {
      stage.querySelector("[data-stage-title]").textContent = event.target.value;
      const key = stage.querySelector('input[name$="-key"]').value;
      const option = form.querySelector('#engagement_stage option[value="' + CSS.escape(key) + '"]');
      if (option) option.textContent = event.target.value || key;
    }
    if (stage && event.target.type === "color") {
      stage.querySelector("[data-swatch]").setAttribute("fill", event.target.value);
      stage.style.borderLeftColor = event.target.value;
    }
    schedulePreview();
  });
  form.addEventListener("change", schedulePreview);

  // Leaving with unsaved edits (the report link, a closed tab) asks first. A page the server
  // re-rendered with a draft (an added rule, errors to fix) is unsaved from the start.
  let dirty = document.getElementById("unsaved-note") !== null;
  form.addEventListener("input", () => { dirty = true; });
  form.addEventListener("change", () => { dirty = true; });
  form.addEventListener("submit", () => { dirty = false; });
  window.addEventListener("beforeunload", (event) => {
    if (!dirty) return;
    event.preventDefault();
    event.returnValue = ""; // older browsers show their prompt only when this is set
  });

  function schedulePreview() {
    clearTimeout(timer);
    timer = setTimeout(runPreview, 400);
  }

  function runPreview() {
    const ticket = ++inflight;
    form.setAttribute("aria-busy", "true");
    window.dashboard.postForm(form.dataset.previewUrl, new FormData(form)).then(({ ok, body }) => {
      if (ticket !== inflight) return; // a newer draft is on its way
      form.removeAttribute("aria-busy");
      applyDescriptions(body.descriptions || []);
      if (!ok || body.valid === false) {
        const first = (body.detail && body.detail[0]) || {};
        const where = first.where || first.path;
        status.textContent = "Preview paused: " + (where ? where + ": " : "") +
          (first.message || body.detail || body.error);
        status.dataset.state = "invalid";
        // Stages valid on their own keep their figures; the others wait for their fix.
        const partial = Array.isArray(body.stages) ? body.stages : [];
        stages().forEach((s, n) => {
          if (partial[n]) { renderStage(s, partial[n]); return; }
          const counts = s.querySelector("[data-preview-counts]");
          counts.textContent = "Preview unavailable until this stage's rules are valid.";
          delete counts.dataset.persons;
          delete counts.dataset.events;
          s.querySelector("[data-preview-samples]").replaceChildren();
        });
        return;
      }
      status.textContent = "Live preview of the last " + body.days + " days: each stage's rules " +
        "counted on their own, in any order. The report follows persons through the stages in " +
        "order, so its later stages can be lower.";
      status.dataset.state = "ok";
      stages().forEach((s, n) => renderStage(s, body.stages[n]));
      form.dataset.previewVersion = String(ticket);
    }).catch(() => {
      form.removeAttribute("aria-busy");
      status.textContent = "Preview unavailable (connection problem); your edits are not affected.";
    });
  }

  function renderStage(stage, data) {
    const counts = stage.querySelector("[data-preview-counts]");
    const samples = stage.querySelector("[data-preview-samples]");
    if (!data) { counts.textContent = ""; samples.replaceChildren(); return; }
    counts.textContent = fmt(data.persons) + " person" + (data.persons === 1 ? "" : "s") +
      " · " + fmt(data.events) + " event" + (data.events === 1 ? "" : "s");
    counts.dataset.persons = String(data.persons);
    counts.dataset.events = String(data.events);
    const parts = [];
    if (data.sample_urls.length) {
      parts.push(el("div", { text: "Sample pages:" }),
        el("ul", {}, data.sample_urls.map((u) => el("li", { text: sampleText(u) }))));
    }
    if (data.sample_elements.length) {
      parts.push(el("div", { text: "Sample elements:" }),
        el("ul", {}, data.sample_elements.map((u) => el("li", { text: sampleText(u) }))));
    }
    if (!data.persons) parts.push(el("div", { text: "Nothing matched in this period: check the rules, or wait for traffic." }));
    samples.replaceChildren(...parts);
  }

  function sampleText(item) {
    if (item === null || item === undefined) return "";
    if (typeof item !== "object") return String(item);
    const main = item.text || item.url || item.selector || item.href || item.value || "";
    const extra = [item.tag, item.selector, item.href].filter((v) => v && v !== main);
    const count = item.count !== undefined ? " (" + fmt(item.count) + ")" : "";
    return String(main) + (extra.length ? " — " + extra.join(" ") : "") + count;
  }

  function applyDescriptions(descriptions) {
    stages().forEach((stage, i) => {
      stage.querySelectorAll("[data-describe]").forEach((p, j) => {
        const text = descriptions[i] && descriptions[i][j];
        if (text !== undefined) p.textContent = text;
      });
    });
  }

  const fmt = (n) => Number(n || 0).toLocaleString("en-US");

  // Each stage card wears its colour (set from script: the CSP forbids inline styles).
  stages().forEach((s) => { s.style.borderLeftColor = s.dataset.color; });
  runPreview();
})();
