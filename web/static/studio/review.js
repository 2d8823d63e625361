// A conversation page keeps itself current while its call or chat goes on: it asks a small
// JSON endpoint whether anything changed, and when it did, swaps in the fresh transcript,
// handoff panel and annotations. It stops while the tab is hidden and once nothing more
// can change. Without this script the page is complete; a reload shows what is new.
"use strict";

const POLL_MS = 3000;

function followConversation(root) {
  const versionUrl = root.dataset.live;
  let version = null;
  let timer = null;
  let busy = false;
  let finished = false;

  async function refresh() {
    const page = await fetch(window.location.pathname, { credentials: "same-origin" });
    if (!page.ok) return;
    const fresh = new DOMParser().parseFromString(await page.text(), "text/html");
    document.querySelectorAll("[data-live-region]").forEach((region) => {
      const replacement = fresh.getElementById(region.id);
      if (replacement) region.replaceWith(document.importNode(replacement, true));
    });
  }

  async function poll() {
    timer = null;
    busy = true;
    try {
      const answer = await fetch(versionUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!answer.ok) return;
      const body = await answer.json();
      if (version !== null && body.version !== version) await refresh();
      version = body.version;
      if (!body.live) {
        document.querySelectorAll("[data-live-badge]").forEach((badge) => badge.remove());
        finished = true; // nothing more will change
      }
    } catch (error) {
      // A network blip: try again at the next tick.
    } finally {
      busy = false;
    }
    schedule();
  }

  function schedule() {
    if (timer === null && !busy && !finished && !document.hidden) timer = window.setTimeout(poll, POLL_MS);
  }

  document.addEventListener("visibilitychange", () => {
    if (document.hidden && timer !== null) {
      window.clearTimeout(timer);
      timer = null;
    } else if (!document.hidden) {
      schedule();
    }
  });
  poll();
}

document.addEventListener("DOMContentLoaded", () => {
  const root = document.querySelector("[data-live]");
  if (root) followConversation(root);
});
