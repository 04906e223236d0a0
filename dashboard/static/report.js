// Report filters: value pickers filled from the field's actual top values, tidy URLs
// (empty filters and preset-overridden dates are not submitted), custom ranges.
"use strict";
(function () {
  const form = document.getElementById("filters");
  if (!form) return;
  const range = form.querySelector("#range");
  const from = form.querySelector("#from");
  const to = form.querySelector("#to");
  const loaded = new Set();

  for (const input of [from, to]) {
    input.addEventListener("change", () => { range.value = "custom"; });
  }

  form.addEventListener("submit", () => {
    for (const node of form.querySelectorAll("input, select")) {
      const presetDate = (node === from || node === to) && range.value !== "custom";
      if (presetDate || (node.name && node.value === "" && node.type !== "hidden")) {
        node.disabled = true;
      }
    }
  });

  function currentArgs(except) {
    const params = new URLSearchParams(window.location.search);
    params.delete(except);
    return params.toString();
  }

  function load(input) {
    const field = input.dataset.valuesField;
    if (loaded.has(field)) return;
    loaded.add(field);
    const url = form.dataset.valuesUrl.replace("FIELD", encodeURIComponent(field)) + "?" + currentArgs(field);
    window.dashboard.getJSON(url).then(({ ok, body }) => {
      if (!ok) { loaded.delete(field); return; }
      const list = document.getElementById(input.getAttribute("list"));
      list.replaceChildren(...body.values.filter((v) => v.value !== "").map((v) => {
        const option = document.createElement("option");
        option.value = v.value;
        option.label = v.value + " (" + Number(v.persons).toLocaleString("en-US") + ")";
        return option;
      }));
      input.dataset.valuesLoaded = String(body.values.length);
    }).catch(() => loaded.delete(field));
  }

  for (const input of form.querySelectorAll("input[data-values-field]")) {
    input.addEventListener("focus", () => load(input));
    input.addEventListener("mouseenter", () => load(input), { once: true });
  }
})();
