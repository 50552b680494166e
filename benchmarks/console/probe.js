// Console benchmark probe, injected before any script of the page (Playwright add_init_script).
// - counts the WebSocket messages the page receives, and those that are `fleet.robot` events;
// - window.__bench.record(ms) measures, for ms milliseconds, the time between consecutive
//   requestAnimationFrame callbacks (performance.now()), long tasks (PerformanceObserver, where the
//   browser has it) and the fleet.robot messages received; it resolves with the raw figures.
"use strict";

(() => {
  const counts = { messages: 0, robot: 0 };
  const Native = window.WebSocket;

  class CountingWebSocket extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (event) => {
        counts.messages += 1;
        // a substring test, not JSON.parse: the probe must not add the page's parsing work again
        if (typeof event.data === "string" && event.data.includes('"fleet.robot"')) counts.robot += 1;
      });
    }
  }
  window.WebSocket = CountingWebSocket;

  function record(ms) {
    return new Promise((resolve) => {
      const deltas = [];
      const longTasks = [];
      let observer = null;
      if (typeof PerformanceObserver === "function"
          && (PerformanceObserver.supportedEntryTypes || []).includes("longtask")) {
        observer = new PerformanceObserver((list) => {
          for (const entry of list.getEntries()) longTasks.push(entry.duration);
        });
        observer.observe({ type: "longtask" });
      }
      const robot0 = counts.robot;
      const messages0 = counts.messages;
      let start = null;
      let last = null;
      const step = () => {
        const now = performance.now();
        if (start === null) {
          start = now;
        } else {
          deltas.push(now - last);
        }
        last = now;
        if (now - start >= ms) {
          if (observer) observer.disconnect();
          resolve({
            deltas,
            longTasks,
            elapsedMs: now - start,
            robotEvents: counts.robot - robot0,
            messages: counts.messages - messages0,
            longTaskSupported: observer !== null,
          });
          return;
        }
        requestAnimationFrame(step);
      };
      requestAnimationFrame(step);
    });
  }

  window.__bench = { counts, record };
})();
