// "Verify installation": polls the site's newest events and shows them as they arrive.
"use strict";
(function () {
  const section = document.getElementById("verify");
  if (!section) return;
  const button = document.getElementById("verify-button");
  const status = document.getElementById("verify-status");
  const tbody = document.querySelector("#recent-events tbody");
  const el = window.dashboard.el;
  let timer = null;
  let polls = 0;

  function render(events) {
    if (!events.length) return; // keep the "nothing received yet" row
    tbody.replaceChildren(
      ...events.map((e) =>
        el("tr", {}, [
          el("td", { text: e.time }),
          el("td", { text: e.type + (e.name ? " · " + e.name : "") }),
          el("td", { class: "wrap" }, [
            document.createTextNode(e.element_text || e.title || e.url),
            el("br"),
            el("small", { text: e.url }),
          ]),
          el("td", { text: e.source }),
          el("td", { text: e.campaign }),
          el("td", { text: e.keyword }),
          el("td", { text: e.device }),
        ])
      )
    );
  }

  function poll() {
    polls += 1;
    window.dashboard.getJSON(section.dataset.recentUrl).then(({ ok, body }) => {
      if (!ok) { status.textContent = "Could not check: " + (body.detail || body.error); return; }
      render(body.events);
      status.textContent = body.status + " Still listening…";
      status.dataset.events = String(body.events.length);
    });
    // Stop after ten minutes so a forgotten tab does not poll forever.
    if (polls > 200) { clearInterval(timer); timer = null; button.textContent = "Verify installation"; }
  }

  button.addEventListener("click", () => {
    if (timer) { clearInterval(timer); timer = null; button.textContent = "Verify installation"; return; }
    polls = 0;
    poll();
    timer = setInterval(poll, 3000);
    button.textContent = "Stop listening";
  });
})();
