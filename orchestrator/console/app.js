// robopost console: the shell. Login screen, top bar (view tabs, alarm badge, connection indicator,
// stop all, language, user, logout), a registry of views loaded on demand from views/<name>.js
// (each exports mount(root, ctx) and optionally unmount()), dialogs and toasts for the views.
//
// ctx given to every view: {api, stream, t, user, lang, ui: {confirm, toast}, fleet: Map serial → robot
// view (kept current from the stream), mayAct: bool, shell: {setBadge(name, n), refreshSafety()}}.

import { api, mayAct } from "./api.js";
import { createStream } from "./stream.js";
import * as i18n from "./i18n.js";

const { t } = i18n;
const VIEWS = ["map", "windows", "parcels", "alarms"];
const SAFETY_POLL_MS = 10000;
const ALARM_POLL_MS = 20000;

const $ = (sel) => document.querySelector(sel);
const stream = createStream(() => api.token());
const fleet = new Map();
const state = { view: null, module: null, root: null, timers: [], alarms: new Map(), stopAll: false, stopBy: null };

// ---- i18n of static markup ---------------------------------------------------------------------

function translateStatic() {
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  document.title = `robopost · ${t("app.name")}`;
  renderTabs();
  renderConn(stream.status);
  renderSafety();
  renderWho();
}

// ---- dialogs and toasts ------------------------------------------------------------------------

function toast(message, kind = "info") {
  const el = document.createElement("div");
  el.className = `toast toast-${kind}`;
  el.textContent = message;
  $("#toasts").appendChild(el);
  setTimeout(() => el.classList.add("out"), 4200);
  setTimeout(() => el.remove(), 4700);
}

/** A modal dialog: resolves {ok, reason}. `reason` asks for an optional text. */
function confirmDialog({ title, body, confirm = t("dialog.confirm"), danger = false, reason = false, id = "" }) {
  return new Promise((resolve) => {
    const back = document.createElement("div");
    back.className = "modal-back";
    back.innerHTML = `<div class="modal" role="dialog" aria-modal="true">
      <h2></h2><p class="modal-body"></p>
      ${reason ? `<label class="modal-reason"><span></span><input maxlength="200"></label>` : ""}
      <div class="modal-actions"><button class="btn btn-ghost-dark" data-act="cancel"></button>
      <button class="btn ${danger ? "btn-danger" : "btn-primary"}" data-act="ok"></button></div></div>`;
    if (id) back.querySelector(".modal").id = id;
    back.querySelector("h2").textContent = title;
    back.querySelector(".modal-body").textContent = body || "";
    if (reason) back.querySelector(".modal-reason span").textContent = t("stop.reason");
    back.querySelector('[data-act="cancel"]').textContent = t("dialog.cancel");
    back.querySelector('[data-act="ok"]').textContent = confirm;
    const done = (ok) => {
      const text = reason ? back.querySelector(".modal-reason input").value.trim() : "";
      back.remove();
      document.removeEventListener("keydown", onKey, true);
      resolve({ ok, reason: text });
    };
    const onKey = (ev) => {
      if (ev.key === "Escape") done(false);
    };
    back.addEventListener("click", (ev) => {
      if (ev.target === back) done(false);
      const act = ev.target.closest("[data-act]");
      if (act) done(act.dataset.act === "ok");
    });
    document.addEventListener("keydown", onKey, true);
    document.body.appendChild(back);
    back.querySelector('[data-act="ok"]').focus();
  });
}

// ---- top bar -----------------------------------------------------------------------------------

function renderTabs() {
  const nav = $("#tabs");
  nav.replaceChildren();
  for (const name of VIEWS) {
    const a = document.createElement("a");
    a.href = `#/${name}`;
    a.className = "tab";
    a.dataset.view = name;
    a.setAttribute("role", "tab");
    a.setAttribute("aria-selected", String(state.view === name));
    a.textContent = t(`tab.${name}`);
    if (name === "alarms") {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.id = "alarm-badge";
      const n = unackedAlarms();
      badge.textContent = String(n);
      badge.hidden = n === 0;
      a.appendChild(badge);
    }
    nav.appendChild(a);
  }
}

function unackedAlarms() {
  let n = 0;
  for (const a of state.alarms.values()) if (!a.acked) n += 1;
  return n;
}

function setBadge(name, n) {
  if (name !== "alarms") return;
  const badge = $("#alarm-badge");
  if (!badge) return;
  badge.textContent = String(n);
  badge.hidden = n === 0;
}

function setAlarms(list) {
  state.alarms = new Map((list || []).map((a) => [a.id, a]));
  setBadge("alarms", unackedAlarms());
}

async function refreshAlarms() {
  try {
    const answer = await api.get("/v1/console/alarms");
    setAlarms(Array.isArray(answer) ? answer : answer.alarms);
  } catch {
    // the badge keeps its last count; the alarms view shows the error
  }
}

function renderConn(status) {
  const el = $("#conn");
  el.dataset.state = status;
  el.querySelector("span").textContent = t(`conn.${status}`);
}

function renderWho() {
  const user = api.user();
  $("#who").textContent = user ? `${user.username} · ${t(`role.${user.role}`)}` : "";
}

function renderSafety() {
  const button = $("#stop-all");
  const user = api.user();
  button.hidden = !mayAct(user);
  button.textContent = state.stopAll ? t("stop.release") : t("stop.all");
  button.classList.toggle("btn-release", state.stopAll);
  button.dataset.active = String(state.stopAll);
  document.body.dataset.stopAll = String(state.stopAll);
  const banner = $("#stop-banner");
  banner.hidden = !state.stopAll;
  banner.textContent = state.stopBy ? t("stop.active_by", { who: state.stopBy }) : t("stop.active");
}

async function refreshSafety() {
  try {
    const s = await api.get("/v1/console/safety");
    state.stopAll = !!s.stop_all;
    state.stopBy = s.stop_all_by;
  } catch {
    return;
  }
  renderSafety();
}

async function onStopAll() {
  const releasing = state.stopAll;
  const answer = await confirmDialog({
    title: releasing ? t("stop.release_title") : t("stop.confirm_title"),
    body: releasing ? t("stop.release_body") : t("stop.confirm_body"),
    confirm: releasing ? t("stop.release") : t("stop.all"),
    danger: !releasing,
    reason: true,
    id: "stop-dialog",
  });
  if (!answer.ok) return;
  try {
    const path = releasing ? "/v1/console/fleet:release-all" : "/v1/console/fleet:stop-all";
    const out = await api.post(path, { reason: answer.reason });
    state.stopAll = !!out.stop_all;
    renderSafety();
    toast(t(releasing ? "stop.released" : "stop.done", { n: out.robots.length }), releasing ? "ok" : "warn");
  } catch (err) {
    toast(t("error.generic", { message: err.message }), "error");
  }
  refreshSafety();
}

// ---- views -------------------------------------------------------------------------------------

function viewFromHash() {
  const m = /^#\/(\w+)/.exec(location.hash);
  return m && VIEWS.includes(m[1]) ? m[1] : "map";
}

function context() {
  const user = api.user();
  return {
    api, stream, t, user, fleet, lang: i18n.lang(), mayAct: mayAct(user),
    ui: { confirm: confirmDialog, toast },
    shell: { setBadge, refreshSafety, get stopAll() { return state.stopAll; } },
  };
}

function unmountView() {
  if (state.module && typeof state.module.unmount === "function") {
    try {
      state.module.unmount();
    } catch (err) {
      console.error("unmount failed", err);
    }
  }
  state.module = null;
}

async function showView(name) {
  unmountView();
  state.view = name;
  document.body.dataset.view = name;
  renderTabs();
  const main = $("#view");
  const root = document.createElement("div");
  root.className = `view view-${name}`;
  root.innerHTML = `<p class="view-loading">${t("view.loading")}</p>`;
  main.replaceChildren(root);
  state.root = root;
  try {
    const module = await import(`./views/${name}.js`);
    if (state.root !== root) return; // another view was chosen meanwhile
    root.replaceChildren();
    state.module = module;
    await module.mount(root, context());
  } catch (err) {
    console.error(err);
    root.innerHTML = "";
    const p = document.createElement("p");
    p.className = "view-error";
    p.textContent = t("view.failed", { message: err.message });
    root.appendChild(p);
  }
}

// ---- fleet store ------------------------------------------------------------------------------

function trackFleet() {
  stream.on("snapshot", (msg) => {
    fleet.clear();
    for (const r of (msg.fleet && msg.fleet.robots) || []) fleet.set(r.serial, r);
    setAlarms(msg.alarms);
  });
  stream.on("*", (msg) => {
    if (msg.view && typeof msg.type === "string" && msg.type.startsWith("fleet.")) fleet.set(msg.view.serial, msg.view);
    if (msg.type === "fleet.link_changed") refreshAlarms();
  });
  stream.on("alarm.acked", (msg) => {
    if (msg.alarm) state.alarms.set(msg.alarm.id, msg.alarm);
    setBadge("alarms", unackedAlarms());
  });
  stream.on("status", renderConn);
}

// ---- screens -----------------------------------------------------------------------------------

function showLogin(message = "") {
  stream.close();
  unmountView();
  for (const id of state.timers) clearInterval(id);
  state.timers = [];
  $("#shell").hidden = true;
  $("#login").hidden = false;
  document.body.dataset.screen = "login";
  $("#login-error").textContent = message;
  $("#login-submit").disabled = false;
  $("#login-submit").textContent = t("login.submit");
  $("#login-username").focus();
}

function showShell() {
  $("#login").hidden = true;
  $("#shell").hidden = false;
  renderWho();
  renderSafety();
  stream.connect();
  refreshSafety();
  state.timers.push(setInterval(refreshSafety, SAFETY_POLL_MS), setInterval(refreshAlarms, ALARM_POLL_MS));
  document.body.dataset.screen = "shell";
  showView(viewFromHash());
}

async function onLogin(ev) {
  ev.preventDefault();
  const button = $("#login-submit");
  button.disabled = true;
  button.textContent = t("login.busy");
  try {
    await api.login($("#login-username").value.trim(), $("#login-password").value);
    $("#login-password").value = "";
    showShell();
  } catch (err) {
    showLogin(err.status === 401 ? t("login.failed") : t("error.generic", { message: err.message }));
  }
}

function toggleLang() {
  i18n.setLang(i18n.lang() === "zh" ? "en" : "zh");
}

async function main() {
  document.documentElement.lang = i18n.lang() === "en" ? "en" : "zh-CN";
  try {
    i18n.add(await import("./views/strings_views.js"));
  } catch {
    // the views' strings are optional: each view falls back to its own table
  }
  trackFleet();
  translateStatic();
  i18n.onLangChange(() => {
    translateStatic();
    if (document.body.dataset.screen === "shell") showView(state.view || "map");
  });
  $("#login-form").addEventListener("submit", onLogin);
  $("#login-lang").addEventListener("click", toggleLang);
  $("#lang").addEventListener("click", toggleLang);
  $("#logout").addEventListener("click", async () => {
    await api.logout();
    showLogin();
  });
  $("#stop-all").addEventListener("click", onStopAll);
  window.addEventListener("hashchange", () => {
    if (document.body.dataset.screen === "shell" && viewFromHash() !== state.view) showView(viewFromHash());
  });
  window.addEventListener("robopost:unauthorized", () => {
    api.forget();
    showLogin(t("login.expired"));
  });
  if (api.token()) {
    try {
      const me = await api.get("/v1/console/me");
      if (me && me.user) showShell();
      return;
    } catch {
      api.forget();
    }
  }
  showLogin();
}

main();
