// The cart's pickup screen. Reads the screen from /api/live (WebSocket; polls /api/screen while it is
// down), answers typed codes through /api/code and runs staff mode. No framework, no build step.
"use strict";

(() => {
  const CODE_LEN = 6;
  const TAIL_LEN = 4;
  const PIN_MAX = 8;
  const OPEN_RETURN_S = 30; // success screen while the door is still open
  const DONE_RETURN_S = 6; // success screen after the door closed
  const TROUBLE_RETURN_S = 15;
  const MESSAGE_S = 12;
  const NOTICE_S = 20;
  const IDLE_S = 45;
  const STAFF_IDLE_S = 120;
  const POLL_MS = 3000;
  const RECONNECT_MAX_MS = 10000;

  const $ = (id) => document.getElementById(id);
  let answers = 0;
  const shown = new Set(); // notices the success screen has shown: no need to repeat them
  const state = {
    view: null,
    offsetMs: 0, // cart clock − page clock
    socketUp: false,
    pollOk: false,
    mode: null, // null | "staff-pin" | "staff"
    screen: "loading",
    challenge: "code",
    code: "",
    tail: "",
    field: "code",
    pin: "",
    busy: false,
    message: null, // {text, until}
    pinMessage: null,
    success: null, // {number, message, noticeBefore, seen, phase, openedAt, closedAt, closedMessage}
    locked: null, // {until, message, version} from an answer, until a newer screen says otherwise
    trouble: null, // {kind, number, until} from an answer (board_down, jammed)
    notice: { key: undefined, since: 0 },
    staffToken: null,
    board: null,
    staffNote: null,
    flash: null, // {number, until}: the staff cell just opened
    boardFetchAt: 0,
    lastTouch: Date.now(),
  };

  // --- small helpers -------------------------------------------------------------------------------

  const text = (zh, en) => ({ zh, en });
  const same = (a, b) => Boolean(a && b && a.zh === b.zh && a.en === b.en);
  const cartNow = () => Date.now() + state.offsetMs; // ms
  const pad2 = (n) => String(n).padStart(2, "0");
  const hhmm = (epochS) => {
    const d = new Date(epochS * 1000);
    return `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  };
  const phone = () => (state.view ? state.view.support_phone : "");

  function setText(idZh, idEn, message) {
    setLine($(idZh), message ? message.zh : "");
    setLine($(idEn), message ? message.en : "");
  }

  // a phone number in a sentence never breaks across lines
  function setLine(el, content) {
    const number = phone();
    if (el.dataset.text === content && el.dataset.phone === number) return;
    el.dataset.text = content;
    el.dataset.phone = number;
    const parts = number ? content.split(number) : [content];
    el.replaceChildren(
      ...parts.flatMap((part, i) => (i === 0 ? [part] : [span("nowrap", number), part])),
    );
  }

  function touch() {
    state.lastTouch = Date.now();
  }

  // --- the screen from the cart ------------------------------------------------------------------

  function applyView(view) {
    state.view = view;
    state.offsetMs = view.now * 1000 - Date.now();
    state.challenge = view.challenge;
    const key = view.notice ? `${view.notice.zh}|${view.notice.en}` : null;
    if (state.notice.key === undefined) {
      state.notice = { key, since: 0 }; // a notice from before the page loaded is old news
    } else if (key !== state.notice.key) {
      state.notice = { key, since: Date.now() };
    }
    if (state.locked && view.version > state.locked.version && !view.locked_until) state.locked = null;
    followSuccess(view);
    if (state.mode === "staff" && Date.now() - state.boardFetchAt > 700) loadBoard();
    render();
  }

  function followSuccess(view) {
    const s = state.success;
    if (!s) return;
    const watch = view.compartments.find((c) => c.number === s.number && !c.staff);
    if (watch) {
      s.seen = true;
      s.phase = watch.phase;
      if (watch.phase === "jammed") {
        state.success = null;
        state.trouble = { kind: "jammed", number: s.number, until: Date.now() + TROUBLE_RETURN_S * 1000 };
      }
      return;
    }
    if (s.phase === "closed") return;
    const fresh = view.notice && !same(view.notice, s.message) && !same(view.notice, s.noticeBefore);
    if (s.seen || fresh) {
      s.phase = "closed";
      s.closedAt = Date.now();
      s.closedMessage = view.notice && !same(view.notice, s.message) ? view.notice : closedText(s.number);
    }
  }

  // --- texts the page composes (answers bring their own) -----------------------------------------

  const boardDownText = () =>
    text(
      `柜门控制暂时不可用，请稍后再试或致电 ${phone()}。`,
      `The lockers are not responding right now. Please try again shortly or call ${phone()}.`,
    );
  // the trouble screen: a short title and what to do; the help line is shown big beneath
  const troubleTexts = {
    board_down: () => ({
      title: text("柜门控制暂时不可用", "The lockers are not responding right now"),
      body: text("请稍后再试，或致电客服。", "Please try again in a moment, or call the help line."),
    }),
    starting: () => ({
      title: text("柜门控制正在启动", "The lockers are starting up"),
      body: text("请稍候片刻", "One moment, please"),
    }),
    jammed: (n) => ({
      title: text(`${n}号格口未能打开`, `Compartment ${n} did not open`),
      body: text(
        "已通知工作人员，您的取件码仍然有效。如需帮助请致电客服。",
        "Staff have been told and your code still works. For help, call the help line.",
      ),
    }),
  };
  const closedText = (n) => text(`${n}号格口已关闭，谢谢！`, `Compartment ${n} is closed — thank you!`);
  const lockedText = (until, reason) =>
    reason === "daily"
      ? text(
          `今日输错次数过多，本车暂停取件码输入。请通过小程序取件或致电 ${phone()}。`,
          `Too many wrong codes today: code entry on this cart is closed. Use the mini-program or call ${phone()}.`,
        )
      : text(`输错次数过多，请于 ${hhmm(until)} 后再试。`, `Too many wrong codes. Please try again after ${hhmm(until)}.`);
  const unreachableText = () =>
    text("暂时无法连接取件柜，请稍后再试。", "The screen cannot reach the lockers just now — please try again.");

  // --- which screen ----------------------------------------------------------------------------------

  function lockedUntil() {
    const now = cartNow() / 1000;
    const fromView = state.view && state.view.locked_until;
    const fromAnswer = state.locked && state.locked.until;
    const until = Math.max(fromView || 0, fromAnswer || 0);
    return until > now ? until : null;
  }

  function decide() {
    const view = state.view;
    if (state.mode) return state.mode;
    if (!view) return "loading";
    if (state.success) return "success";
    if (lockedUntil()) return "locked";
    if (state.trouble) return "trouble";
    if (view.board === "no_reply" || view.board === "link_down" || view.board === "starting") return "trouble";
    if (!view.stop) return "away";
    return "entry";
  }

  function expire() {
    const now = Date.now();
    const s = state.success;
    if (s && now > (s.phase === "closed" ? s.closedAt + DONE_RETURN_S * 1000 : s.openedAt + OPEN_RETURN_S * 1000)) {
      state.success = null;
    }
    if (state.trouble && now > state.trouble.until) state.trouble = null;
    if (state.message && now > state.message.until) state.message = null;
    if (state.locked && !lockedUntil()) {
      state.locked = null;
      refresh();
    }
    if (state.mode === null && (state.code || state.tail) && now - state.lastTouch > IDLE_S * 1000) clearEntry();
    if (state.mode && now - state.lastTouch > STAFF_IDLE_S * 1000) exitStaff();
  }

  // --- rendering -------------------------------------------------------------------------------------

  function render() {
    const screen = decide();
    state.screen = screen;
    document.body.dataset.screen = screen;
    for (const el of document.querySelectorAll("[data-show]")) {
      el.hidden = !el.dataset.show.split(" ").includes(screen);
    }
    renderHeader();
    renderBanner(screen);
    if (screen === "entry") renderEntry();
    if (screen === "staff-pin") renderPin();
    if (screen === "entry" || screen === "staff-pin") renderKeypad(screen);
    if (screen === "success") renderSuccess();
    if (screen === "locked") renderLocked();
    if (screen === "trouble") renderTrouble();
    if (screen === "staff") renderStaff();
  }

  function renderHeader() {
    const view = state.view;
    const label = view && view.stop_label;
    if (label) {
      setText("stop-zh", "stop-en", label);
    } else if (view && view.stop) {
      setText("stop-zh", "stop-en", text("停靠点", view.stop));
    } else {
      setText("stop-zh", "stop-en", text("取件柜", "Parcel lockers"));
    }
    const end = view && view.stop ? view.window_end : null;
    $("window").hidden = !end;
    if (end) setText("window-zh", "window-en", text(`本时段 ${hhmm(end)} 结束`, `Window ends ${hhmm(end)}`));
    $("clock").textContent = view ? hhmm(cartNow() / 1000) : "--:--";
    renderLink();
    const support = $("support");
    const p = phone();
    if (support.dataset.phone !== p) {
      support.dataset.phone = p;
      support.replaceChildren();
      if (p) {
        support.append(span("zh", `需要帮助？请致电 ${p}`), span("sep", "·"), span("en", `Need help? Call ${p}`));
      }
    }
  }

  function renderLink() {
    const link = $("link");
    const view = state.view;
    let kind = "connecting";
    let label = text("正在连接", "Connecting");
    if (view && (state.socketUp || state.pollOk)) {
      kind = view.online ? "online" : "offline";
      label = view.online ? text("在线", "Online") : text("离线模式 · 可正常取件", "Offline — pickup still works");
    }
    link.dataset.state = kind;
    setText("link-zh", "link-en", label);
    // how the page hears from the cart: "socket" (live), "polling" (the socket is down), "down"
    document.body.dataset.live = state.socketUp ? "socket" : state.pollOk ? "polling" : "down";
  }

  function renderBanner(screen) {
    const view = state.view;
    let message = null;
    let kind = "info";
    if (view && screen !== "staff" && screen !== "staff-pin") {
      const door = view.alarms.find((a) => a.for_student);
      const notice = state.notice;
      const fresh = notice.since && Date.now() - notice.since < NOTICE_S * 1000 && !shown.has(notice.key);
      if (door) {
        message = door.message;
        kind = "alarm";
      } else if (screen === "entry" && view.notice && fresh) {
        message = view.notice;
      }
    }
    const banner = $("banner");
    banner.hidden = !message;
    banner.dataset.kind = kind;
    document.body.dataset.banner = message ? "1" : "0";
    if (message) setText("banner-zh", "banner-en", message);
  }

  function fillBoxes(container, count, value, active) {
    if (container.children.length !== count) {
      container.replaceChildren(...Array.from({ length: count }, () => span("box", "")));
    }
    Array.from(container.children).forEach((box, i) => {
      box.textContent = value[i] || "";
      box.classList.toggle("next", active && i === Math.min(value.length, count - 1) && value.length < count);
    });
  }

  function needTail() {
    return state.challenge === "code+phone_tail";
  }

  function renderEntry() {
    const tail = needTail();
    if (!tail && state.field === "tail") state.field = "code";
    $("tail-field").hidden = !tail;
    $("code-note").hidden = tail;
    $("steps").hidden = tail;
    $("code-field").dataset.active = state.field === "code" ? "1" : "0";
    $("tail-field").dataset.active = state.field === "tail" ? "1" : "0";
    fillBoxes($("code-boxes"), CODE_LEN, state.code, state.field === "code");
    fillBoxes($("tail-boxes"), TAIL_LEN, state.tail, state.field === "tail");
    const message = state.busy ? text("正在开柜…", "Opening…") : state.message && state.message.text;
    $("entry-message").hidden = !message;
    if (message) setText("entry-message-zh", "entry-message-en", message);
  }

  function renderPin() {
    const dots = $("pin-dots");
    const count = Math.max(4, state.pin.length);
    dots.replaceChildren(
      ...Array.from({ length: count }, (_, i) => span(i < state.pin.length ? "pin-dot filled" : "pin-dot", "")),
    );
    $("pin-message").hidden = !state.pinMessage;
    if (state.pinMessage) setText("pin-message-zh", "pin-message-en", state.pinMessage);
  }

  function renderKeypad(screen) {
    const ready =
      screen === "entry"
        ? state.code.length === CODE_LEN && (!needTail() || state.tail.length === TAIL_LEN)
        : state.pin.length >= 4;
    $("submit").disabled = state.busy || !ready;
    $("keypad").classList.toggle("busy", state.busy);
    const label = screen === "entry" ? text("开柜取件", "Open my compartment") : text("登录", "Sign in");
    setText("submit-zh", "submit-en", label);
  }

  function renderSuccess() {
    const s = state.success;
    const section = $("success");
    section.dataset.phase = s.phase === "closed" ? "closed" : "open";
    $("success-number").textContent = String(s.number);
    const message = s.phase === "closed" ? s.closedMessage : s.message;
    setText("success-zh", "success-en", message);
    shown.add(`${message.zh}|${message.en}`);
    const left =
      s.phase === "closed"
        ? Math.ceil((s.closedAt + DONE_RETURN_S * 1000 - Date.now()) / 1000)
        : Math.ceil((s.openedAt + OPEN_RETURN_S * 1000 - Date.now()) / 1000);
    $("success-return").textContent = `${Math.max(0, left)} 秒后返回 · Back in ${Math.max(0, left)} s`;
  }

  function renderLocked() {
    const until = lockedUntil();
    const reason = state.view && state.view.locked_until ? state.view.lock_reason : null;
    const message = state.locked && state.locked.message ? state.locked.message : lockedText(until, reason);
    setText("locked-zh", "locked-en", message);
    const left = Math.max(0, Math.ceil(until - cartNow() / 1000));
    $("locked-timer").hidden = reason === "daily" || left > 3600;
    $("locked-left").dataset.seconds = String(left);
    const minutes = Math.floor(left / 60);
    const seconds = minutes ? pad2(left % 60) : String(left);
    const zh = minutes ? [String(minutes), " 分 ", seconds, " 秒"] : [seconds, " 秒"];
    const zhBox = $("locked-left-zh");
    if (zhBox.dataset.left !== String(left)) {
      zhBox.dataset.left = String(left);
      zhBox.replaceChildren(...zh.map((part, i) => (i % 2 ? span("unit", part) : part)));
    }
    $("locked-left-en").textContent = minutes ? `${minutes} min ${seconds} s` : `${seconds} s`;
    const help = $("locked-help");
    help.replaceChildren(span("zh", `如需帮助，请致电 ${phone()}`), span("en", `Need help? Call ${phone()}`));
  }

  function renderTrouble() {
    const view = state.view;
    let kind = "board_down";
    if (state.trouble) kind = state.trouble.kind;
    else if (view.board === "starting") kind = "starting";
    const texts = troubleTexts[kind](state.trouble && state.trouble.number);
    const section = $("trouble");
    section.dataset.kind = kind;
    section.dataset.source = state.trouble ? "answer" : "board";
    setText("trouble-zh", "trouble-en", texts.title);
    setText("trouble-sub-zh", "trouble-sub-en", texts.body);
    $("trouble-phone-box").hidden = kind === "starting";
    $("trouble-phone").textContent = phone();
    $("trouble-back").hidden = !state.trouble;
  }

  function renderStaff() {
    const grid = $("staff-grid");
    const board = state.board;
    const cells = board ? board.compartments : [];
    const flash = state.flash && Date.now() < state.flash.until ? state.flash.number : null;
    // rebuild only on a change: a cell replaced under a finger would swallow the tap
    const signature = JSON.stringify([cells, flash]);
    if (grid.dataset.signature !== signature) {
      grid.dataset.signature = signature;
      grid.replaceChildren(...cells.map((c) => staffCell(c, flash === c.number)));
    }
    let note = state.staffNote;
    if (!note && board && board.board !== "ok") note = { message: boardDownText(), kind: "warn" };
    if (!note) note = { message: text("点击格口即可打开", "Tap a compartment to open it"), kind: "hint" };
    const box = $("staff-note");
    box.dataset.kind = note.kind;
    box.replaceChildren(span("zh", note.message.zh), span("en", note.message.en));
    const parcels = cells.filter((c) => c.occupied).length;
    const open = cells.filter((c) => c.door === "open").length;
    $("staff-summary").replaceChildren(
      span("zh", `共 ${cells.length} 格 · 有包裹 ${parcels} · 门开 ${open}`),
      span("en", `${cells.length} compartments · ${parcels} with parcels · ${open} open`),
    );
  }

  function staffCell(c, flash) {
    const cell = document.createElement("button");
    cell.type = "button";
    cell.className = flash ? "cell flash" : "cell";
    cell.dataset.number = String(c.number);
    cell.dataset.door = c.door;
    cell.dataset.occupied = c.occupied ? "1" : "0";
    const content = document.createElement("span");
    content.className = "state";
    content.append(
      ...(c.occupied ? [span("zh", "有包裹"), span("en", "Parcel inside")] : [span("zh", "空"), span("en", "Empty")]),
    );
    const door = document.createElement("span");
    door.className = "door";
    door.append(
      ...(c.door === "open"
        ? [span("zh", "门已开"), span("en", "Door open")]
        : [span("zh", "门已关"), span("en", "Door closed")]),
    );
    cell.append(span("num", String(c.number)), content, door);
    return cell;
  }

  function span(className, content) {
    const el = document.createElement("span");
    el.className = className;
    el.textContent = content;
    return el;
  }

  // --- typing ----------------------------------------------------------------------------------------

  function press(key) {
    touch();
    if (state.busy) return;
    if (state.screen === "staff-pin") pressPin(key);
    else if (state.screen === "entry") pressCode(key);
    render();
  }

  function pressCode(key) {
    if (/^\d$/.test(key)) {
      if (state.field === "code" && state.code.length < CODE_LEN) {
        state.code += key;
        if (state.code.length === CODE_LEN && needTail() && state.tail.length < TAIL_LEN) state.field = "tail";
      } else if (state.field === "tail" && state.tail.length < TAIL_LEN) {
        state.tail += key;
      }
    } else if (key === "back") {
      if (state.field === "tail" && state.tail) state.tail = state.tail.slice(0, -1);
      else {
        state.field = "code";
        state.code = state.code.slice(0, -1);
      }
    } else if (key === "clear") {
      clearEntry();
      state.message = null;
    } else if (key === "enter" && !$("submit").disabled) {
      submitCode();
    }
  }

  function pressPin(key) {
    if (/^\d$/.test(key) && state.pin.length < PIN_MAX) {
      if (!state.pin) state.pinMessage = null; // a new try: the last answer no longer applies
      state.pin += key;
    }
    else if (key === "back") state.pin = state.pin.slice(0, -1);
    else if (key === "clear") state.pin = "";
    else if (key === "enter" && state.pin.length >= 4) login();
  }

  function clearEntry() {
    state.code = "";
    state.tail = "";
    state.field = "code";
  }

  function say(message) {
    state.message = { text: message, until: Date.now() + MESSAGE_S * 1000 };
  }

  async function submitCode() {
    const body = { code: state.code };
    if (needTail()) body.tail = state.tail;
    const noticeBefore = state.view && state.view.notice;
    state.busy = true;
    render();
    try {
      const response = await fetch("/api/code", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      if (response.ok) answered(await response.json(), noticeBefore);
      else say(unreachableText());
    } catch (error) {
      say(unreachableText());
    } finally {
      state.busy = false;
      render();
    }
  }

  function answered(answer, noticeBefore) {
    const result = answer.result;
    answers += 1;
    document.body.dataset.answers = String(answers); // how many answers this page got (for tests)
    document.body.dataset.answer = result;
    if (result === "wrong" || result === "need_tail" || result === "invalid") state.challenge = answer.challenge;
    switch (result) {
      case "open":
        clearEntry();
        state.message = null;
        state.success = {
          number: answer.compartment,
          message: answer.message,
          noticeBefore,
          seen: false,
          phase: "opening",
          openedAt: Date.now(),
          closedAt: 0,
          closedMessage: null,
        };
        if (state.view) followSuccess(state.view);
        break;
      case "wrong":
        clearEntry();
        say(answer.message);
        break;
      case "need_tail":
        state.field = "tail"; // the phone-tail card says why it is asked for
        state.message = null;
        break;
      case "invalid":
        say(answer.message);
        break;
      case "locked":
        clearEntry();
        state.message = null;
        state.locked = {
          until: answer.locked_until,
          message: answer.message,
          version: state.view ? state.view.version : -1,
        };
        break;
      default: // board_down, jammed
        if (result === "jammed") clearEntry();
        state.trouble = { kind: result, number: answer.compartment, until: Date.now() + TROUBLE_RETURN_S * 1000 };
    }
  }

  // --- staff mode ------------------------------------------------------------------------------------

  function enterStaff() {
    touch();
    state.mode = "staff-pin";
    state.pin = "";
    state.pinMessage = null;
    render();
  }

  async function login() {
    state.busy = true;
    render();
    try {
      const response = await fetch("/api/staff/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ pin: state.pin }),
      });
      state.pin = "";
      if (response.ok) {
        state.staffToken = (await response.json()).token;
        state.mode = "staff";
        state.staffNote = null;
        await loadBoard();
      } else if (response.status === 423) {
        state.pinMessage = text("密码错误次数过多，请稍后再试。", "Too many wrong PINs — staff mode is locked for a while.");
      } else if (response.status === 403) {
        state.pinMessage = text("本车未设置工作人员密码。", "No staff PIN is set on this cart.");
      } else {
        state.pinMessage = text("密码不正确，请重试。", "That PIN is not right — please try again.");
      }
    } catch (error) {
      state.pinMessage = unreachableText();
    } finally {
      state.busy = false;
      render();
    }
  }

  async function staffFetch(path, init) {
    const response = await fetch(path, {
      ...init,
      headers: { ...(init && init.headers), Authorization: `Bearer ${state.staffToken}` },
    });
    if (response.status === 401) {
      state.mode = "staff-pin";
      state.staffToken = null;
      state.pinMessage = text("登录已过期，请重新输入密码。", "The staff session has ended — enter the PIN again.");
      render();
      return null;
    }
    return response;
  }

  async function loadBoard() {
    if (!state.staffToken) return;
    state.boardFetchAt = Date.now();
    try {
      const response = await staffFetch("/api/staff/board");
      if (response && response.ok) state.board = await response.json();
    } catch (error) {
      state.staffNote = { message: unreachableText(), kind: "warn" };
    }
    render();
  }

  async function staffOpen(numbers) {
    touch();
    try {
      const response = await staffFetch("/api/staff/open", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ compartments: numbers }),
      });
      if (!response) return;
      const body = await response.json();
      state.staffNote = openedNote(body.results, numbers === null);
      if (numbers && numbers.length === 1) state.flash = { number: numbers[0], until: Date.now() + 1500 };
    } catch (error) {
      state.staffNote = { message: unreachableText(), kind: "warn" };
    }
    await loadBoard();
  }

  function openedNote(results, all) {
    const failed = results.filter((r) => r.result !== "sent").map((r) => r.compartment);
    const opened = results.length - failed.length;
    if (results.length === 0) return { message: boardDownText(), kind: "warn" };
    if (failed.length) {
      return {
        message: text(
          `${failed.join("、")}号格口未能打开，请检查柜门控制。`,
          `Compartment ${failed.join(", ")} did not open — check the lockers.`,
        ),
        kind: "warn",
      };
    }
    if (all) return { message: text(`已打开全部 ${opened} 个格口`, `All ${opened} compartments opened`), kind: "ok" };
    const n = results[0].compartment;
    return { message: text(`${n}号格口已打开`, `Compartment ${n} opened`), kind: "ok" };
  }

  async function exitStaff() {
    const token = state.staffToken;
    state.mode = null;
    state.staffToken = null;
    state.board = null;
    state.staffNote = null;
    state.flash = null;
    state.pin = "";
    $("confirm").hidden = true;
    render();
    if (token) {
      try {
        await fetch("/api/staff/logout", { method: "POST", headers: { Authorization: `Bearer ${token}` } });
      } catch (error) {
        // the session expires on its own
      }
    }
  }

  function confirmOpenAll() {
    touch();
    const count = state.board ? state.board.compartments.length : 0;
    setText("confirm-zh", "confirm-en", text(`确定打开全部 ${count} 个格口？`, `Open all ${count} compartments?`));
    $("confirm").hidden = false;
  }

  // --- the link to the cart --------------------------------------------------------------------------

  let backoffMs = 1000;
  let pollTimer = null;

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    let socket;
    try {
      socket = new WebSocket(`${scheme}://${location.host}/api/live`);
    } catch (error) {
      reconnectLater();
      return;
    }
    socket.onopen = () => {
      state.socketUp = true;
      backoffMs = 1000;
      stopPolling();
      renderLink();
    };
    socket.onmessage = (event) => applyView(JSON.parse(event.data));
    socket.onclose = () => {
      state.socketUp = false;
      startPolling();
      reconnectLater();
      renderLink();
    };
  }

  function reconnectLater() {
    setTimeout(connect, backoffMs);
    backoffMs = Math.min(backoffMs * 2, RECONNECT_MAX_MS);
  }

  function startPolling() {
    if (pollTimer === null) pollTimer = setInterval(refresh, POLL_MS);
    refresh();
  }

  function stopPolling() {
    if (pollTimer !== null) clearInterval(pollTimer);
    pollTimer = null;
  }

  async function refresh() {
    try {
      const response = await fetch("/api/screen", { cache: "no-store" });
      state.pollOk = response.ok;
      if (response.ok) applyView(await response.json());
    } catch (error) {
      state.pollOk = false;
      renderLink();
    }
  }

  // --- wiring ------------------------------------------------------------------------------------------

  function wire() {
    $("keypad").addEventListener("click", (event) => {
      const button = event.target.closest("[data-key]");
      if (button && !button.disabled) press(button.dataset.key);
    });
    document.addEventListener("keydown", (event) => {
      if (/^\d$/.test(event.key)) press(event.key);
      else if (event.key === "Backspace") press("back");
      else if (event.key === "Enter") press("enter");
      else if (event.key === "Escape") press("clear");
    });
    $("code-boxes").addEventListener("click", () => {
      touch();
      state.field = "code";
      render();
    });
    $("tail-boxes").addEventListener("click", () => {
      touch();
      if (state.code.length === CODE_LEN) state.field = "tail";
      render();
    });
    $("success-done").addEventListener("click", () => {
      state.success = null;
      render();
    });
    $("trouble-back").addEventListener("click", () => {
      state.trouble = null;
      render();
    });
    $("staff-button").addEventListener("click", enterStaff);
    $("pin-back").addEventListener("click", () => {
      state.mode = null;
      state.pin = "";
      render();
    });
    $("staff-exit").addEventListener("click", exitStaff);
    $("staff-open-all").addEventListener("click", confirmOpenAll);
    $("confirm-no").addEventListener("click", () => {
      $("confirm").hidden = true;
    });
    $("confirm-yes").addEventListener("click", () => {
      $("confirm").hidden = true;
      staffOpen(null);
    });
    $("staff-grid").addEventListener("click", (event) => {
      const cell = event.target.closest(".cell");
      if (cell) staffOpen([Number(cell.dataset.number)]);
    });
    document.addEventListener("pointerdown", touch);
    document.addEventListener("contextmenu", (event) => event.preventDefault());
  }

  function tick() {
    expire();
    render();
  }

  wire();
  render();
  connect();
  refresh();
  setInterval(tick, 250);
})();
