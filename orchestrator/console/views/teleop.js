// robopost console: the remote-driving panel (WS /v1/console/robots/{serial}/teleop).
//
// Space is the dead-man key: only while it is held do W/A/S/D or the arrow keys move the robot, and
// releasing it sends zero at once. While Space is held a command {vx, omega, seq} goes out every
// 100 ms (10 Hz) — the robot's dead man stops it if they stop coming; a zero is also sent when the
// keys go, the window loses focus or the panel closes. The round trip is measured from each frame's
// send time to its ack. mount(root, ctx) with ctx.robot = the robot's view; ctx.onClose() when closed.

const PERIOD_MS = 100;
const TURN_RATE = 0.8; // rad/s at full key
const DEFAULT_MAX = 1.2; // m/s: the robots' remote_max_speed unless the factsheet says less
const KEYS = {
  KeyW: "up", ArrowUp: "up", KeyS: "down", ArrowDown: "down", KeyA: "left", ArrowLeft: "left", KeyD: "right", ArrowRight: "right",
};

let P = null;

function maxSpeed(robot) {
  const fs = robot && robot.factsheet;
  const phys = fs && (fs.physicalParameters || fs.physical_parameters);
  const top = phys && (phys.speedMax || phys.speed_max);
  return typeof top === "number" && top > 0 ? Math.min(top, DEFAULT_MAX) : DEFAULT_MAX;
}

function command() {
  if (!P.deadman) return [0, 0];
  const k = P.keys;
  const fwd = (k.has("up") ? 1 : 0) - (k.has("down") ? 1 : 0);
  const turn = (k.has("left") ? 1 : 0) - (k.has("right") ? 1 : 0);
  return [fwd * P.speed, turn * TURN_RATE];
}

function send(vx, omega) {
  if (!P.ws || P.ws.readyState !== WebSocket.OPEN) return;
  const seq = P.seq++;
  P.pending.set(seq, performance.now());
  if (P.pending.size > 50) P.pending.delete(P.pending.keys().next().value);
  P.ws.send(JSON.stringify({ vx, omega, seq }));
  P.last = [vx, omega];
  render();
}

function tick() {
  const [vx, omega] = command();
  const moving = vx !== 0 || omega !== 0;
  const wasMoving = P.last[0] !== 0 || P.last[1] !== 0;
  if (P.deadman || moving || wasMoving) send(vx, omega);
}

function stopNow() {
  P.keys.clear();
  P.deadman = false;
  send(0, 0);
}

function onKey(ev, down) {
  if (!P) return;
  const tag = ev.target && ev.target.tagName;
  if ((tag === "INPUT" && ev.target.type !== "range") || tag === "TEXTAREA" || tag === "SELECT") return;
  if (ev.code === "Space") {
    ev.preventDefault();
    if (ev.repeat) return;
    P.deadman = down;
    if (!down) {
      P.keys.clear();
      send(0, 0);
    } else tick();
    render();
    return;
  }
  const key = KEYS[ev.code];
  if (!key) return;
  ev.preventDefault();
  if (down) P.keys.add(key);
  else P.keys.delete(key);
  render();
}

function onMessage(ev) {
  let msg;
  try {
    msg = JSON.parse(ev.data);
  } catch {
    return;
  }
  const sent = P.pending.get(msg.seq);
  P.pending.delete(msg.seq);
  if (msg.type === "ack") {
    P.acks += 1;
    if (sent !== undefined) {
      P.rtt = performance.now() - sent;
      P.rtts.push(P.rtt);
      if (P.rtts.length > 20) P.rtts.shift();
    }
  } else if (msg.type === "dropped") P.dropped += 1;
  else if (msg.type === "error") P.error = msg.detail;
  render();
}

function render() {
  if (!P) return;
  const { t } = P.ctx;
  const q = (s) => P.root.querySelector(s);
  q(".status").textContent = P.error || t(`teleop.${P.status}`);
  q(".status").dataset.state = P.status;
  for (const k of ["up", "down", "left", "right"]) q(`.key[data-k="${k}"]`).classList.toggle("on", P.keys.has(k) && P.deadman);
  const space = q(".key.space");
  space.classList.toggle("on", P.deadman);
  space.textContent = `Space · ${t("teleop.deadman")} ${P.deadman ? t("teleop.deadman_on") : t("teleop.deadman_off")}`;
  q('[data-stat="vx"]').textContent = `${P.last[0].toFixed(2)} m/s`;
  q('[data-stat="omega"]').textContent = `${P.last[1].toFixed(2)} rad/s`;
  q('[data-stat="acks"]').textContent = `${P.acks} / ${P.dropped}`;
  const avg = P.rtts.length ? P.rtts.reduce((a, b) => a + b, 0) / P.rtts.length : null;
  q('[data-stat="rtt"]').textContent = avg === null ? "—" : `${Math.round(avg)} ms`;
  q(".speed-row b").textContent = `${P.speed.toFixed(2)} m/s`;
  P.root.dataset.acks = String(P.acks);
  P.root.dataset.deadman = String(P.deadman);
}

function connect() {
  const token = P.ctx.api.token();
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const url = `${proto}://${location.host}/v1/console/robots/${encodeURIComponent(P.robot.serial)}/teleop?token=${encodeURIComponent(token)}`;
  P.status = "connecting";
  P.ws = new WebSocket(url);
  P.ws.onopen = () => {
    P.status = "ready";
    P.root.dataset.ready = "1";
    render();
  };
  P.ws.onmessage = onMessage;
  P.ws.onclose = (ev) => {
    if (!P) return;
    P.status = "closed";
    if (ev.reason) P.error = `${P.ctx.t("teleop.closed")}: ${ev.reason}`;
    P.root.dataset.ready = "0";
    render();
  };
}

export function mount(root, ctx) {
  const { t } = ctx;
  const robot = ctx.robot;
  const top = maxSpeed(robot);
  root.className = "teleop";
  root.id = "teleop";
  root.tabIndex = 0;
  root.innerHTML = `
    <div class="teleop-head"><h3></h3><span class="status"></span><button class="btn" type="button"></button></div>
    <p class="teleop-hint"></p>
    <div class="teleop-grid">
      <div class="keys">
        <span></span><span class="key" data-k="up">W</span><span></span>
        <span class="key" data-k="left">A</span><span class="key" data-k="down">S</span><span class="key" data-k="right">D</span>
        <span class="key space"></span>
      </div>
      <div class="teleop-stats">
        <div class="stat"><small></small><b data-stat="vx"></b></div>
        <div class="stat"><small></small><b data-stat="omega"></b></div>
        <div class="stat"><small></small><b data-stat="rtt"></b></div>
        <div class="stat"><small></small><b data-stat="acks"></b></div>
      </div>
      <label class="speed-row"><span></span><input type="range" min="0.1" step="0.05"><b></b></label>
    </div>`;
  root.querySelector("h3").textContent = t("teleop.title", { robot: robot.name || robot.serial });
  root.querySelector(".teleop-hint").textContent = t("teleop.hint");
  const labels = root.querySelectorAll(".stat small");
  labels[0].textContent = t("teleop.commanded");
  labels[1].textContent = t("teleop.turn");
  labels[2].textContent = t("teleop.latency");
  labels[3].textContent = `${t("teleop.acks")} / ${t("teleop.dropped")}`;
  root.querySelector(".speed-row span").textContent = t("teleop.speed");
  const slider = root.querySelector(".speed-row input");
  slider.max = String(top);
  slider.value = String(Math.min(0.8, top));
  const close = root.querySelector(".teleop-head .btn");
  close.textContent = t("teleop.close");
  close.addEventListener("click", () => unmount());
  P = {
    ctx, robot, root, ws: null, seq: 0, keys: new Set(), deadman: false, speed: Number(slider.value), last: [0, 0],
    pending: new Map(), acks: 0, dropped: 0, rtt: null, rtts: [], status: "connecting", error: "",
  };
  slider.addEventListener("input", () => {
    P.speed = Math.min(top, Math.max(0.1, Number(slider.value)));
    render();
  });
  P.down = (ev) => onKey(ev, true);
  P.up = (ev) => onKey(ev, false);
  P.blur = () => P && stopNow();
  P.hidden = () => document.hidden && P && stopNow();
  window.addEventListener("keydown", P.down, true);
  window.addEventListener("keyup", P.up, true);
  window.addEventListener("blur", P.blur);
  document.addEventListener("visibilitychange", P.hidden);
  P.timer = setInterval(tick, PERIOD_MS);
  connect();
  render();
  root.focus();
}

export function unmount() {
  if (!P) return;
  const p = P;
  clearInterval(p.timer);
  try {
    if (p.ws && p.ws.readyState === WebSocket.OPEN) p.ws.send(JSON.stringify({ vx: 0, omega: 0, seq: p.seq++ }));
  } catch {
    // the socket is going anyway; the server sends zero when it closes
  }
  if (p.ws) p.ws.close(1000);
  window.removeEventListener("keydown", p.down, true);
  window.removeEventListener("keyup", p.up, true);
  window.removeEventListener("blur", p.blur);
  document.removeEventListener("visibilitychange", p.hidden);
  P = null;
  if (p.ctx.onClose) p.ctx.onClose();
}
