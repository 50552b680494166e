// robopost console: the live stream (WS /v1/console/stream). The server sends a snapshot first, then
// changes; on a drop we reconnect with exponential backoff (0.5 s … 15 s) and get a fresh snapshot.
// Listeners: on(type, fn) for an event type ("snapshot", "fleet.robot", "parcel", "lift", ...),
// "*" for every event, "status" for the connection state ("connecting" | "open" | "closed").

const CLOSE_UNAUTHORIZED = 4401;
const CLOSE_SESSION_ENDED = 4403;

export function createStream(tokenOf) {
  const listeners = new Map();
  let ws = null;
  let delay = 500;
  let timer = null;
  let stopped = true;
  let status = "closed";

  function emit(type, payload) {
    for (const fn of listeners.get(type) || []) {
      try {
        fn(payload);
      } catch (err) {
        console.error(`stream listener of ${type} failed`, err);
      }
    }
  }

  function setStatus(next) {
    status = next;
    emit("status", next);
  }

  function connect() {
    stopped = false;
    clearTimeout(timer);
    const token = tokenOf();
    if (!token) return;
    const proto = location.protocol === "https:" ? "wss" : "ws";
    setStatus("connecting");
    ws = new WebSocket(`${proto}://${location.host}/v1/console/stream?token=${encodeURIComponent(token)}`);
    ws.onopen = () => {
      delay = 500;
      setStatus("open");
    };
    ws.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      emit(msg.type, msg);
      emit("*", msg);
    };
    ws.onclose = (ev) => {
      ws = null;
      setStatus("closed");
      if (ev.code === CLOSE_UNAUTHORIZED || ev.code === CLOSE_SESSION_ENDED) {
        window.dispatchEvent(new CustomEvent("robopost:unauthorized"));
        return;
      }
      if (!stopped) {
        timer = setTimeout(connect, delay);
        delay = Math.min(delay * 2, 15000);
      }
    };
  }

  return {
    connect,
    close() {
      stopped = true;
      clearTimeout(timer);
      if (ws) ws.close(1000);
    },
    on(type, fn) {
      if (!listeners.has(type)) listeners.set(type, new Set());
      listeners.get(type).add(fn);
      return () => listeners.get(type).delete(fn);
    },
    get status() {
      return status;
    },
  };
}
