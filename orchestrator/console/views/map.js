// robopost console: the map view. Leaflet in CRS.Simple on the site's local metres (GET /v1/map, ENU),
// one floor (or the outdoor network) at a time; lifts, doors and gates with their live state
// (GET /v1/console/facilities + "lift"/"door"/"gate" stream events); robots on ONE canvas over the
// map, redrawn every animation frame with positions interpolated between updates; a robot's details
// drawer with its leg, route, compartments and the control buttons; the remote-driving panel.
//
// Decisions: robots are not Leaflet markers (hundreds of DOM nodes moving 60 times a second would be
// slow); one canvas in container pixels is cleared and drawn per frame, and clicks are hit-tested
// against the positions drawn last. Indoor robots report floor-frame coordinates: if the site's floor
// carries a `frame` {x, y, yaw} they are turned into site metres, else taken as site metres.
// Performance hook: window.__robopostMap = {robots: drawn last frame, frames: ms per frame (last 600)}.

const OUTDOOR = "outdoor";
const FRAME_HISTORY = 600;
const HIT_PX = 16;
const PLACE_STYLE = {
  station: { r: 8, color: "#dc2626", prio: 0 },
  handoff: { r: 7, color: "#16a34a", prio: 1 },
  stop: { r: 6, color: "#f59e0b", prio: 2 },
  charger: { r: 6, color: "#eab308", prio: 3 },
  parking: { r: 5, color: "#475569", prio: 5 },
  office: { r: 5, color: "#2563eb", prio: 4 },
  room: { r: 4, color: "#60a5fa", prio: 4 },
};
const STATE_COLOR = {
  driving: "#2563eb", idle: "#64748b", paused: "#d97706", estop: "#dc2626", offline: "#9ca3af",
  teleop: "#7c3aed", charging: "#16a34a",
};
const EDGE_STYLE = {
  road: { color: "#ffffff", casing: "#c3cad4" },
  narrow: { color: "#f59e0b", dash: "6 4" },
  step: { color: "#ef4444", dash: "2 4" },
  barrier: { color: "#a855f7", dash: "8 4" },
  entrance: { color: "#22c55e" },
  indoor: { color: "#bfdbfe", casing: "#93c5fd" },
};

let S = null; // the mounted view's state

// ---- helpers -------------------------------------------------------------------------------------

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

const ll = (x, y) => [y, x]; // CRS.Simple: lat = y (north), lng = x (east)

function robotState(r) {
  if (!r.online) return "offline";
  if (r.e_stop) return "estop";
  if (r.operating_mode === "SEMIAUTOMATIC" || r.operating_mode === "MANUAL") return "teleop";
  if (r.paused) return "paused";
  if (r.driving) return "driving";
  if (r.charging) return "charging";
  return "idle";
}

function angleLerp(a, b, k) {
  let d = b - a;
  while (d > Math.PI) d -= 2 * Math.PI;
  while (d < -Math.PI) d += 2 * Math.PI;
  return a + d * k;
}

function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

// ---- the map data --------------------------------------------------------------------------------

function byFeature(kind) {
  return S.geo.features.filter((f) => f.properties.feature === kind);
}

function floorInfo(id) {
  return S.geo.site.floors.find((f) => f.id === id) || null;
}

function toSite(mapId, x, y) {
  const floor = mapId === OUTDOOR ? null : floorInfo(mapId);
  const fr = floor && floor.frame;
  if (!fr) return [x, y];
  const c = Math.cos(fr.yaw || 0);
  const s = Math.sin(fr.yaw || 0);
  return [(fr.x || 0) + c * x - s * y, (fr.y || 0) + s * x + c * y];
}

function headingToSite(mapId, theta) {
  const floor = mapId === OUTDOOR ? null : floorInfo(mapId);
  return theta + ((floor && floor.frame && floor.frame.yaw) || 0);
}

function edgeClass(p) {
  if (p.entrance) return "entrance";
  if (p.floor !== null && p.floor !== undefined) return "indoor";
  if (p.cart === false) return p.barrier ? "barrier" : p.step || p.kerb ? "step" : "narrow";
  return "road";
}

function midpoint(coords) {
  const lens = coords.slice(1).map((p, i) => Math.hypot(p[0] - coords[i][0], p[1] - coords[i][1]));
  let half = lens.reduce((a, b) => a + b, 0) / 2;
  for (let i = 0; i < lens.length; i += 1) {
    if (half <= lens[i] || i === lens.length - 1) {
      const k = lens[i] > 0 ? half / lens[i] : 0;
      return [coords[i][0] + k * (coords[i + 1][0] - coords[i][0]), coords[i][1] + k * (coords[i + 1][1] - coords[i][1])];
    }
    half -= lens[i];
  }
  return coords[0];
}

// ---- drawing one floor ---------------------------------------------------------------------------

function facIcon(kind, id, text, size) {
  const safeId = String(id).replace(/[^\w.:-]/g, "_");
  return window.L.divIcon({ className: "", html: `<div class="fac-icon fac-${kind}" data-id="${safeId}" style="width:${size}px;height:${size}px">${text}</div>`, iconSize: [size, size], iconAnchor: [size / 2, size / 2] });
}

function drawFloor() {
  const L = window.L;
  const { t } = S.ctx;
  if (S.base) S.base.remove();
  S.base = L.layerGroup().addTo(S.map);
  S.labels = [];
  S.facMarkers = { lift: new Map(), door: new Map(), gate: new Map() };
  const floor = S.floor;
  const outdoor = floor === OUTDOOR;
  const building = outdoor ? null : (floorInfo(floor) || {}).building;
  const pts = [];
  const add = (c) => pts.push(ll(c[0], c[1]));

  for (const f of byFeature("building")) {
    if (!outdoor && f.properties.id !== building) continue;
    const ring = f.geometry.coordinates[0];
    ring.forEach((c) => !outdoor && add(c));
    const poly = L.polygon(ring.map((c) => ll(c[0], c[1])), {
      color: outdoor ? "#cfc4a8" : "#94a3b8", weight: outdoor ? 1 : 2, fillColor: outdoor ? "#ece4d2" : "#f8fafc", fillOpacity: 1,
      interactive: false,
    }).addTo(S.base);
    if (outdoor && (f.properties.label || f.properties.name)) {
      const text = S.ctx.lang === "en" ? f.properties.name || f.properties.label : f.properties.label || f.properties.name;
      poly.bindTooltip(text, { permanent: true, direction: "center", className: "building-label" });
      S.labels.push({ layer: poly, prio: 9, text });
    }
  }

  const edges = byFeature("edge").filter((f) => {
    const p = f.properties;
    return outdoor ? p.floor === null || p.entrance : p.floor === floor;
  });
  for (const cls of ["road", "indoor", "entrance", "narrow", "step", "barrier"]) {
    const style = EDGE_STYLE[cls];
    const mine = edges.filter((f) => edgeClass(f.properties) === cls);
    if (mine.length === 0) continue;
    const lines = mine.map((f) => f.geometry.coordinates.map((c) => ll(c[0], c[1])));
    if (style.casing) L.polyline(lines, { color: style.casing, weight: 7, interactive: false, lineCap: "round", lineJoin: "round" }).addTo(S.base);
    L.polyline(lines, { color: style.color, weight: style.casing ? 4.5 : 3, dashArray: style.dash, interactive: false, lineCap: "round" }).addTo(S.base);
    if (outdoor || cls === "indoor") mine.forEach((f) => f.geometry.coordinates.forEach(add));
  }
  for (const f of edges) {
    const p = f.properties;
    if (!p.door && !p.gate) continue;
    const m = midpoint(f.geometry.coordinates);
    const kind = p.gate ? "gate" : "door";
    const id = p.gate || p.door;
    if (S.facMarkers[kind].has(id)) continue;
    const marker = L.marker(ll(m[0], m[1]), { icon: facIcon(kind, id, "", kind === "gate" ? 11 : 12), keyboard: false })
      .bindTooltip(`${t(`fac.${kind}`)} ${id}`, { direction: "top" }).addTo(S.base);
    S.facMarkers[kind].set(id, marker);
  }

  if (!outdoor) {
    for (const f of byFeature("lift")) {
      if (!(f.properties.floors || []).includes(floor)) continue;
      const c = f.geometry.coordinates;
      const marker = L.marker(ll(c[0], c[1]), { icon: facIcon("lift", f.properties.id, S.ctx.lang === "en" ? "L" : "梯", 20), keyboard: false })
        .bindTooltip(`${t("fac.lift")} ${f.properties.id}`, { direction: "top" }).addTo(S.base);
      S.facMarkers.lift.set(f.properties.id, marker);
      add(c);
    }
  }

  for (const f of byFeature("place")) {
    const p = f.properties;
    if (outdoor ? p.floor !== null : p.floor !== floor) continue;
    const style = PLACE_STYLE[p.kind] || { r: 4, color: "#94a3b8", prio: 6 };
    const c = f.geometry.coordinates;
    add(c);
    const marker = L.circleMarker(ll(c[0], c[1]), { radius: style.r, color: "#fff", weight: 1.5, fillColor: style.color, fillOpacity: 1 }).addTo(S.base);
    const text = S.ctx.lang === "en" ? p.name : p.label || p.name;
    marker.bindTooltip(text, { permanent: true, direction: "right", offset: [style.r + 2, 0], className: "place-label" });
    S.labels.push({ layer: marker, prio: style.prio, text });
  }
  S.routeLayer = L.layerGroup().addTo(S.base);
  S.bounds = pts.length ? L.latLngBounds(pts) : L.latLngBounds([[-50, -50], [50, 50]]);
  S.map.fitBounds(S.bounds, { padding: [30, 30] });
  applyFacilities();
  declutter();
  renderFloorButtons();
  renderFloorTitle();
  S.root.dataset.floor = floor;
  S.root.dataset.ready = "1";
}

/** Hide labels that would overlap a label of higher priority (Leaflet does no label placement). */
function declutter() {
  if (!S || !S.labels) return;
  const taken = [];
  for (const item of S.labels) {
    if (item.prio === 9) continue;
    const c = S.map.latLngToContainerPoint(item.layer.getLatLng());
    taken.push({ x0: c.x - 5, y0: c.y - 5, x1: c.x + 5, y1: c.y + 5 });
  }
  const sorted = [...S.labels].sort((a, b) => a.prio - b.prio);
  for (const item of sorted) {
    const tip = item.layer.getTooltip();
    const node = tip && tip.getElement();
    if (!node) continue;
    const pos = S.map.latLngToContainerPoint(item.layer.getLatLng ? item.layer.getLatLng() : item.layer.getCenter());
    const w = [...item.text].reduce((a, ch) => a + (ch.charCodeAt(0) > 0x2e80 ? 11.5 : 6.5), 0) + 6;
    const box = item.prio === 9 ? { x0: pos.x - w / 2, y0: pos.y - 8, x1: pos.x + w / 2, y1: pos.y + 8 } : { x0: pos.x + 9, y0: pos.y - 8, x1: pos.x + 12 + w, y1: pos.y + 8 };
    let hit = taken.some((b) => box.x0 < b.x1 && b.x0 < box.x1 && box.y0 < b.y1 && b.y0 < box.y1);
    if (item.prio === 9) {
      // a building's name only where it fits inside the building as drawn
      const b = item.layer.getBounds();
      const a = S.map.latLngToContainerPoint(b.getSouthWest());
      const c = S.map.latLngToContainerPoint(b.getNorthEast());
      hit = hit || Math.abs(c.x - a.x) * 1.5 < w || Math.abs(c.y - a.y) < 12;
    }
    node.style.visibility = hit ? "hidden" : "visible";
    if (!hit) taken.push(box);
  }
}

function renderFloorTitle() {
  const { t } = S.ctx;
  const title = S.root.querySelector(".map-floor-title");
  title.replaceChildren();
  if (S.floor === OUTDOOR) {
    title.append(t("map.outdoor"));
  } else {
    const f = floorInfo(S.floor);
    const b = byFeature("building").find((x) => x.properties.id === f.building);
    const bname = b ? (S.ctx.lang === "en" ? b.properties.name : b.properties.label || b.properties.name) : f.building;
    title.append(`${bname} · ${f.name}`);
  }
  const site = S.geo.site;
  title.append(el("small", "", S.ctx.lang === "en" ? site.name : site.label || site.name));
}

function renderFloorButtons() {
  const list = S.root.querySelector(".floor-list");
  list.replaceChildren();
  const { t } = S.ctx;
  const mk = (id, text, cls) => {
    const b = el("button", `floor-btn ${cls || ""}`, text);
    b.type = "button";
    b.dataset.floor = id;
    b.setAttribute("aria-pressed", String(id === S.floor));
    b.addEventListener("click", () => selectFloor(id));
    return b;
  };
  if (S.hasOutdoor) list.appendChild(mk(OUTDOOR, t("map.outdoor"), "outdoor"));
  const names = new Map(byFeature("building").map((f) => [f.properties.id, f.properties]));
  const groups = new Map();
  for (const f of S.geo.site.floors) {
    if (!groups.has(f.building)) groups.set(f.building, []);
    groups.get(f.building).push(f);
  }
  for (const [building, floors] of groups) {
    const g = el("div", "floor-group");
    const b = names.get(building);
    g.appendChild(el("b", "", b ? (S.ctx.lang === "en" ? b.name : b.label || b.name) : building));
    floors.forEach((f) => g.appendChild(mk(f.id, f.name)));
    list.appendChild(g);
  }
}

function selectFloor(id) {
  if (S.floor === id) return;
  S.floor = id;
  history.replaceState(null, "", `#/map?floor=${encodeURIComponent(id)}`);
  drawFloor();
  drawRoute();
}

// ---- facilities ----------------------------------------------------------------------------------

async function loadFacilities() {
  try {
    const fac = await S.ctx.api.get("/v1/console/facilities");
    for (const l of fac.lifts || []) S.facilities.lift.set(l.lift, l);
    for (const d of fac.doors || []) S.facilities.door.set(d.door, d);
    for (const g of fac.gates || []) S.facilities.gate.set(g.gate, g);
    applyFacilities();
  } catch {
    // 404/503: the facilities service is not there (yet); markers stay without state
  }
}

function applyFacilities() {
  if (!S.facMarkers) return;
  const { t } = S.ctx;
  for (const [id, marker] of S.facMarkers.lift) {
    const s = S.facilities.lift.get(id);
    const node = marker.getElement() && marker.getElement().firstElementChild;
    if (node) node.dataset.mode = s ? s.mode : "";
    const parts = [`${t("fac.lift")} ${id}`];
    if (s) {
      parts.push(t("fac.floor", { floor: s.floor ?? "—" }), t("fac.mode", { mode: s.mode ?? "—" }));
      if (s.session) parts.push(t("fac.session", { robot: s.session }));
    } else parts.push(t("fac.unknown"));
    marker.setTooltipContent(parts.join(" · "));
  }
  for (const kind of ["door", "gate"]) {
    for (const [id, marker] of S.facMarkers[kind]) {
      const s = S.facilities[kind].get(id);
      const node = marker.getElement() && marker.getElement().firstElementChild;
      if (node) node.dataset.state = s ? String(s.state || "").toLowerCase() : "";
      marker.setTooltipContent(`${t(`fac.${kind}`)} ${id} · ${s ? s.state : t("fac.unknown")}`);
    }
  }
}

// ---- robots: data, interpolation, canvas ---------------------------------------------------------

function updateRobot(view) {
  if (!view || !view.serial) return;
  const now = performance.now();
  let r = S.robots.get(view.serial);
  if (!r) {
    r = { view, shown: null, from: null, to: null, t0: now, dur: 1, last: now };
    S.robots.set(view.serial, r);
  }
  r.view = view;
  const p = view.position;
  if (p) {
    const [x, y] = toSite(p.map_id, p.x, p.y);
    const th = headingToSite(p.map_id, p.theta);
    const target = { x, y, th, map: p.map_id };
    const cur = r.shown && r.shown.map === p.map_id ? r.shown : null;
    r.from = cur ? { ...cur } : target;
    r.to = target;
    r.dur = Math.min(Math.max(now - r.last, 80), 1500);
    r.t0 = now;
    r.last = now;
    if (!cur) r.shown = { ...target };
  } else {
    r.to = null;
    r.shown = null;
  }
  S.listDirty = true;
  if (S.drawer && S.drawer.serial === view.serial) S.drawerDirty = true;
}

function resizeCanvas() {
  const c = S.canvas;
  const box = c.parentElement.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  c.width = Math.round(box.width * dpr);
  c.height = Math.round(box.height * dpr);
  c.style.width = `${box.width}px`;
  c.style.height = `${box.height}px`;
  S.dpr = dpr;
}

function drawRobot(g, r, pt, selected, labels) {
  const v = r.view;
  const state = robotState(v);
  const color = STATE_COLOR[state];
  const { x, y } = pt;
  const heading = -r.shown.th; // screen y grows downwards
  if (selected) {
    g.beginPath();
    g.arc(x, y, 20, 0, 2 * Math.PI);
    g.fillStyle = "rgba(37, 99, 235, 0.18)";
    g.fill();
  }
  // battery ring: grey track, coloured share
  const charge = typeof v.battery_charge === "number" ? Math.max(0, Math.min(100, v.battery_charge)) : null;
  g.lineWidth = 3;
  g.beginPath();
  g.arc(x, y, 13, 0, 2 * Math.PI);
  g.strokeStyle = "rgba(255,255,255,0.9)";
  g.stroke();
  if (charge !== null) {
    g.beginPath();
    g.arc(x, y, 13, -Math.PI / 2, -Math.PI / 2 + (2 * Math.PI * charge) / 100);
    g.strokeStyle = charge < 20 ? "#dc2626" : charge < 50 ? "#f59e0b" : "#22c55e";
    g.stroke();
  }
  // heading arrow
  g.save();
  g.translate(x, y);
  g.rotate(heading);
  g.beginPath();
  g.moveTo(19, 0);
  g.lineTo(10, -6);
  g.lineTo(10, 6);
  g.closePath();
  g.fillStyle = color;
  g.fill();
  g.restore();
  // body
  g.beginPath();
  g.arc(x, y, 9, 0, 2 * Math.PI);
  g.fillStyle = color;
  g.fill();
  g.lineWidth = 2;
  g.strokeStyle = "#fff";
  g.stroke();
  if (state === "estop") {
    g.fillStyle = "#fff";
    g.fillRect(x - 4.5, y - 1.5, 9, 3);
  } else if (state === "paused") {
    g.fillStyle = "#fff";
    g.fillRect(x - 3.5, y - 4, 2.5, 8);
    g.fillRect(x + 1, y - 4, 2.5, 8);
  }
  // label
  const label = v.name || v.serial;
  g.font = "600 11px system-ui, 'Noto Sans CJK SC', sans-serif";
  const w = g.measureText(label).width + 10;
  const lx = x - w / 2;
  const ly = y + 17;
  const box = { x0: lx, y0: ly, x1: lx + w, y1: ly + 16 };
  if (!selected && labels.some((b) => box.x0 < b.x1 && b.x0 < box.x1 && box.y0 < b.y1 && b.y0 < box.y1)) return;
  labels.push(box);
  g.fillStyle = "rgba(15, 23, 42, 0.82)";
  g.beginPath();
  g.roundRect(lx, ly, w, 16, 4);
  g.fill();
  g.fillStyle = "#fff";
  g.textAlign = "center";
  g.textBaseline = "middle";
  g.fillText(label, x, ly + 8.5);
}

function frame() {
  if (!S) return;
  S.raf = requestAnimationFrame(frame);
  const t0 = performance.now();
  if (S.listDirty && t0 - S.listAt > 400) renderRobotList();
  if (S.drawerDirty && t0 - S.drawerAt > 700) renderDrawer();
  const g = S.canvas.getContext("2d");
  g.setTransform(S.dpr, 0, 0, S.dpr, 0, 0);
  g.clearRect(0, 0, S.canvas.width, S.canvas.height);
  const drawn = [];
  const selected = S.drawer ? S.drawer.serial : null;
  let later = null;
  const labels = [];
  const order = [...S.robots.values()];
  for (const r of order) {
    if (!r.to) continue;
    const k = Math.min(1, (t0 - r.t0) / r.dur);
    r.shown = {
      x: r.from.x + (r.to.x - r.from.x) * k,
      y: r.from.y + (r.to.y - r.from.y) * k,
      th: angleLerp(r.from.th, r.to.th, k),
      map: r.to.map,
    };
    if (r.to.map !== S.floor) continue;
    const pt = S.map.latLngToContainerPoint(ll(r.shown.x, r.shown.y));
    if (r.view.serial === selected) {
      later = [r, pt];
      continue;
    }
    drawRobot(g, r, pt, false, labels);
    drawn.push({ serial: r.view.serial, x: pt.x, y: pt.y });
  }
  if (later) {
    drawRobot(g, later[0], later[1], true, labels);
    drawn.push({ serial: later[0].view.serial, x: later[1].x, y: later[1].y });
  }
  S.drawn = drawn;
  const hook = window.__robopostMap;
  hook.robots = drawn.length;
  hook.positions = Object.fromEntries(drawn.map((d) => [d.serial, [Math.round(d.x * 10) / 10, Math.round(d.y * 10) / 10]]));
  hook.frames.push(performance.now() - t0);
  if (hook.frames.length > FRAME_HISTORY) hook.frames.splice(0, hook.frames.length - FRAME_HISTORY);
}

function robotAt(point) {
  let best = null;
  let bestD = HIT_PX;
  for (const d of S.drawn || []) {
    const dist = Math.hypot(d.x - point.x, d.y - point.y);
    if (dist <= bestD) {
      best = d.serial;
      bestD = dist;
    }
  }
  return best;
}

// ---- the side panel ------------------------------------------------------------------------------

function renderRobotList() {
  S.listDirty = false;
  S.listAt = performance.now();
  const { t } = S.ctx;
  const list = S.root.querySelector(".robot-list");
  const robots = [...S.robots.values()].map((r) => r.view).sort((a, b) => (a.name || a.serial).localeCompare(b.name || b.serial));
  const online = robots.filter((r) => r.online).length;
  S.root.querySelector(".robots-count").textContent = t("map.robots_count", { online, total: robots.length });
  list.replaceChildren();
  if (robots.length === 0) list.appendChild(el("p", "note", t("map.no_robots")));
  for (const v of robots) {
    const row = el("div", "robot-row");
    row.dataset.serial = v.serial;
    row.setAttribute("aria-selected", String(S.drawer && S.drawer.serial === v.serial));
    const state = robotState(v);
    const dot = el("i", "dot");
    dot.style.background = STATE_COLOR[state];
    row.append(dot, el("span", "name", v.name || v.serial), el("span", "state", t(`state.${state}`)));
    const where = v.position ? (v.position.map_id === OUTDOOR ? t("map.outdoor") : v.position.map_id) : "—";
    const battery = typeof v.battery_charge === "number" ? `${Math.round(v.battery_charge)}%` : "—";
    row.appendChild(el("span", "meta", `${t(`robot.kind.${v.kind}`)} · ${where} · ${battery}`));
    row.addEventListener("click", () => focusRobot(v.serial));
    list.appendChild(row);
  }
}

function focusRobot(serial) {
  const r = S.robots.get(serial);
  if (r && r.to) {
    if (r.to.map !== S.floor && (r.to.map === OUTDOOR ? S.hasOutdoor : floorInfo(r.to.map))) selectFloor(r.to.map);
    const zoom = Math.max(S.map.getZoom(), 1);
    const target = S.map.project(ll(r.to.x, r.to.y), zoom).add([190, 0]); // centre it left of the drawer
    S.map.setView(S.map.unproject(target, zoom), zoom);
  }
  openDrawer(serial);
}

// ---- the details drawer --------------------------------------------------------------------------

async function openDrawer(serial) {
  S.drawer = { serial, details: null, unavailable: false, actionsKey: "" };
  S.drawerDirty = true;
  S.listDirty = true;
  renderDrawer();
  await loadDetails();
}

function closeDrawer() {
  S.drawer = null;
  const node = S.root.querySelector(".drawer");
  if (node) node.remove();
  S.root.querySelector(".map-wrap").classList.remove("has-drawer");
  if (S.routeLayer) S.routeLayer.clearLayers();
  S.listDirty = true;
}

async function loadDetails() {
  if (!S || !S.drawer) return;
  const serial = S.drawer.serial;
  try {
    const details = await S.ctx.api.get(`/v1/console/robots/${encodeURIComponent(serial)}`);
    if (!S || !S.drawer || S.drawer.serial !== serial) return;
    S.drawer.details = details;
    S.drawer.unavailable = false;
    if (details.robot) updateRobot(details.robot);
  } catch {
    if (!S || !S.drawer || S.drawer.serial !== serial) return;
    S.drawer.unavailable = true;
  }
  S.drawerDirty = true;
  renderDrawer();
  drawRoute();
}

function drawRoute() {
  if (!S.routeLayer) return;
  S.routeLayer.clearLayers();
  const d = S.drawer && S.drawer.details;
  const r = S.drawer && S.robots.get(S.drawer.serial);
  if (!d || !r || !r.to || !Array.isArray(d.route) || d.route.length < 2 || r.to.map !== S.floor) return;
  const pts = d.route.map(([x, y]) => {
    const [sx, sy] = toSite(r.to.map, x, y);
    return ll(sx, sy);
  });
  window.L.polyline(pts, { color: "#ffffff", weight: 8, opacity: 0.9, interactive: false }).addTo(S.routeLayer);
  window.L.polyline(pts, { color: "#2563eb", weight: 4, dashArray: "8 6", interactive: false }).addTo(S.routeLayer);
  const end = pts[pts.length - 1];
  window.L.circleMarker(end, { radius: 6, color: "#fff", weight: 2, fillColor: "#2563eb", fillOpacity: 1, interactive: false }).addTo(S.routeLayer);
}

function kv(dl, key, value) {
  dl.append(el("dt", "", key));
  const dd = el("dd");
  if (value instanceof Node) dd.appendChild(value);
  else dd.textContent = value === null || value === undefined || value === "" ? "—" : String(value);
  dl.appendChild(dd);
}

function batteryNode(charge) {
  const span = el("span", "battery");
  if (typeof charge !== "number") {
    span.textContent = "—";
    return span;
  }
  span.classList.add(charge < 20 ? "low" : charge < 50 ? "mid" : "ok");
  const bar = el("span", "bar");
  const fill = el("i");
  fill.style.width = `${Math.max(0, Math.min(100, charge))}%`;
  bar.appendChild(fill);
  span.append(bar, `${Math.round(charge)}%`);
  return span;
}

function legSection(leg, title) {
  const { t } = S.ctx;
  const sec = el("section", "leg");
  sec.appendChild(el("h4", "", title));
  if (!leg) {
    sec.appendChild(el("p", "note", t("robot.no_leg")));
    return sec;
  }
  const dl = el("dl", "kv");
  const kindText = t(`leg.kind.${leg.kind}`);
  kv(dl, t("leg.kind"), kindText.startsWith("leg.kind.") ? leg.kind : kindText);
  kv(dl, t("leg.place"), leg.label || leg.place);
  if (leg.window) kv(dl, t("robot.window", { window: "" }).trim(), leg.window);
  kv(dl, t("leg.time"), `${fmtTime(leg.start)} – ${fmtTime(leg.end)}`);
  sec.appendChild(dl);
  if (leg.parcels && leg.parcels.length) {
    const chips = el("div", "chips");
    chips.style.marginTop = "8px";
    leg.parcels.slice(0, 24).forEach((p) => chips.appendChild(el("span", "chip", p)));
    if (leg.parcels.length > 24) chips.appendChild(el("span", "chip", `+${leg.parcels.length - 24}`));
    sec.appendChild(chips);
  }
  return sec;
}

function renderDrawer() {
  if (!S || !S.drawer) return;
  S.drawerDirty = false;
  S.drawerAt = performance.now();
  const { t } = S.ctx;
  const serial = S.drawer.serial;
  const r = S.robots.get(serial);
  const v = (r && r.view) || (S.drawer.details && S.drawer.details.robot) || { serial };
  const d = S.drawer.details;
  let node = S.root.querySelector(".drawer");
  if (!node) {
    node = el("aside", "drawer");
    node.id = "robot-drawer";
    node.innerHTML = `<div class="drawer-head"><div><h2></h2><div class="sub"></div></div><button class="x" type="button">✕</button></div>
      <div class="drawer-body"><div class="drawer-main"></div><section class="drawer-actions"></section><div class="drawer-info"></div></div>`;
    node.querySelector(".x").title = t("robot.close");
    node.querySelector(".x").addEventListener("click", closeDrawer);
    S.root.querySelector(".map-wrap").appendChild(node);
    S.root.querySelector(".map-wrap").classList.add("has-drawer");
  }
  node.dataset.serial = serial;
  const state = robotState(v);
  node.dataset.state = state;
  node.querySelector("h2").textContent = v.name || serial;
  const sub = node.querySelector(".sub");
  sub.replaceChildren();
  const pill = el("span", "pill", t(`state.${state}`));
  pill.style.background = STATE_COLOR[state];
  pill.id = "robot-state";
  sub.append(pill, ` ${serial} · ${t(`robot.kind.${v.kind || "robot"}`)}`);

  const info = node.querySelector(".drawer-info");
  info.replaceChildren();
  const mainBox = node.querySelector(".drawer-main");
  mainBox.replaceChildren();
  const main = el("section");
  const dl = el("dl", "kv");
  kv(dl, t("robot.link"), v.link);
  kv(dl, t("robot.mode"), v.operating_mode ? t(`mode.${v.operating_mode}`) : (d && d.mode) || "—");
  kv(dl, t("robot.battery"), batteryNode(v.battery_charge));
  // the live view (stream) is newer than the details (polled): its safety fields win when known
  const safety = r ? { e_stop: v.e_stop, field_violation: v.field_violation } : (d && d.safety) || {};
  const safetyText = safety.e_stop ? `${t("state.estop")} (${safety.e_stop})` : safety.field_violation ? t("robot.field") : t("robot.safety_ok");
  kv(dl, t("robot.safety"), safetyText);
  const p = v.position;
  kv(dl, t("robot.position"), p ? `${p.map_id === OUTDOOR ? t("map.outdoor") : p.map_id} · ${p.x.toFixed(1)}, ${p.y.toFixed(1)} m` : "—");
  if (v.order_id) kv(dl, t("robot.order"), v.order_id);
  main.appendChild(dl);
  if (v.errors && v.errors.length) {
    const ul = el("ul", "error-list");
    v.errors.forEach((e) => ul.appendChild(el("li", "", `${e.type} (${e.level})${e.description ? `: ${e.description}` : ""}`)));
    main.appendChild(ul);
  }
  mainBox.appendChild(main);
  if (S.drawer.unavailable) {
    info.appendChild(el("p", "note", t("robot.details_unavailable")));
  } else if (d) {
    info.appendChild(legSection(d.leg, t("robot.leg")));
    if (d.next && d.next.length) {
      const sec = el("section");
      sec.appendChild(el("h4", "", t("robot.next")));
      const chips = el("div", "chips");
      d.next.forEach((leg) => {
        const k = t(`leg.kind.${leg.kind}`);
        chips.appendChild(el("span", "chip", `${fmtTime(leg.start)} ${k.startsWith("leg.kind.") ? leg.kind : k} · ${leg.label || leg.place}`));
      });
      sec.appendChild(chips);
      info.appendChild(sec);
    }
    if (d.compartments && d.compartments.length) {
      const sec = el("section");
      sec.appendChild(el("h4", "", t("robot.compartments")));
      const grid = el("div", "compartments");
      for (const c of d.compartments) {
        const cell = el("div", c.parcel ? "cell full" : "cell");
        cell.append(el("b", "", `${c.number} · ${c.size}`), el("small", "", c.parcel || t("robot.empty")));
        grid.appendChild(cell);
      }
      sec.appendChild(grid);
      info.appendChild(sec);
    }
  }
  renderActions(node.querySelector(".drawer-actions"), v);
}

function renderActions(sec, v) {
  const { t } = S.ctx;
  const can = S.ctx.mayAct && v.online;
  const key = JSON.stringify([can, v.paused, !!v.e_stop, v.operating_mode, S.ctx.lang, S.busy]);
  if (S.drawer.actionsKey === key) return;
  S.drawer.actionsKey = key;
  sec.replaceChildren();
  sec.appendChild(el("h4", "", t("robot.actions")));
  const grid = el("div", "actions");
  const button = (id, label, cls, onClick, enabled = true) => {
    const b = el("button", `btn ${cls || ""}`, label);
    b.type = "button";
    b.dataset.action = id;
    b.disabled = !can || !enabled || S.busy;
    b.addEventListener("click", onClick);
    grid.appendChild(b);
    return b;
  };
  const serial = v.serial;
  const name = v.name || serial;
  if (v.paused) button("resume", t("robot.resume"), "", () => act(serial, "resume", t("robot.resume")));
  else button("pause", t("robot.pause"), "", () => act(serial, "pause", t("robot.pause")));
  button("cancel", t("robot.cancel"), "", async () => {
    const ok = await S.ctx.ui.confirm({ title: t("robot.cancel_title", { robot: name }), body: t("robot.cancel_body"), reason: true });
    if (ok.ok) act(serial, "cancel", t("robot.cancel"), { reason: ok.reason });
  });
  button("charge", t("robot.charge"), "", () => act(serial, "charge", t("robot.charge")));
  if (v.e_stop) button("release", t("robot.release"), "btn-primary", () => act(serial, "release", t("robot.release")));
  else {
    button("estop", t("robot.estop"), "btn-danger", async () => {
      const ok = await S.ctx.ui.confirm({ title: t("robot.estop_title", { robot: name }), body: t("robot.estop_body"), danger: true, reason: true });
      if (ok.ok) act(serial, "estop", t("robot.estop"), { reason: ok.reason });
    });
  }
  button("remote", t("robot.remote"), "btn-primary wide", () => startRemote(v));
  sec.appendChild(grid);
  const row = el("div", "mode-row");
  const select = el("select");
  select.id = "mode-select";
  for (const m of ["AUTOMATIC", "SEMIAUTOMATIC"]) {
    const o = el("option", "", t(`mode.${m}`));
    o.value = m;
    o.selected = v.operating_mode === m;
    select.appendChild(o);
  }
  select.disabled = !can || S.busy;
  const go = el("button", "btn btn-ghost-dark", t("robot.mode_switch"));
  go.type = "button";
  go.dataset.action = "mode";
  go.disabled = !can || S.busy;
  go.addEventListener("click", async () => {
    const mode = select.value;
    if (mode === v.operating_mode) return;
    const ok = await S.ctx.ui.confirm({ title: t("robot.mode_title", { mode: t(`mode.${mode}`) }), body: t("robot.mode_body"), reason: true });
    if (ok.ok) switchMode(serial, mode, ok.reason);
  });
  row.append(select, go);
  sec.appendChild(row);
}

async function act(serial, action, label, body = {}) {
  const { t } = S.ctx;
  const path = `/v1/console/robots/${encodeURIComponent(serial)}:${action}`;
  setBusy(true);
  try {
    const out = await S.ctx.api.post(path, body);
    S.ctx.ui.toast(t(out && out.status === "FINISHED" ? "robot.done" : "robot.sent", { action: label }), "ok");
  } catch (err) {
    S.ctx.ui.toast(t("error.generic", { message: err.message }), "error");
    return false;
  } finally {
    setBusy(false);
    loadDetails();
  }
  return true;
}

function setBusy(busy) {
  if (!S) return;
  S.busy = busy;
  S.drawerDirty = true;
}

async function switchMode(serial, mode, reason = "") {
  const { api, ui, t } = S.ctx;
  const base = `/v1/console/robots/${encodeURIComponent(serial)}`;
  setBusy(true);
  try {
    await api.post(`${base}:mode`, { mode, reason });
    await api.post(`${base}:mode-confirm`, { reason });
    ui.toast(t("robot.done", { action: t(`mode.${mode}`) }), "ok");
    return true;
  } catch (err) {
    ui.toast(t("error.generic", { message: err.message }), "error");
    try {
      await api.post(`${base}:mode-cancel`, {});
    } catch {
      // nothing pending
    }
    return false;
  } finally {
    setBusy(false);
    loadDetails();
  }
}

async function startRemote(v) {
  const { t, ui } = S.ctx;
  if (v.operating_mode !== "SEMIAUTOMATIC") {
    const ok = await ui.confirm({ title: t("robot.remote_title"), body: t("robot.remote_body", { robot: v.name || v.serial }), reason: true, id: "remote-dialog" });
    if (!ok.ok) return;
    if (!(await switchMode(v.serial, "SEMIAUTOMATIC", ok.reason))) return;
  }
  const teleop = await import("./teleop.js");
  if (!S) return;
  if (S.teleop) S.teleop.unmount();
  S.teleop = teleop;
  const host = el("div");
  S.root.querySelector(".map-wrap").appendChild(host);
  teleop.mount(host, { ...S.ctx, robot: v, onClose: () => { host.remove(); if (S) S.teleop = null; } });
}

// ---- mount / unmount -----------------------------------------------------------------------------

function layout(root, t) {
  root.innerHTML = `
    <aside class="map-side">
      <h3><span></span></h3>
      <div class="floor-list"></div>
      <h3><span></span><small class="robots-count"></small></h3>
      <div class="robot-list"></div>
      <div class="legend"></div>
    </aside>
    <div class="map-wrap">
      <div class="map-canvas" id="map"></div>
      <canvas class="robot-layer" id="robot-layer"></canvas>
      <div class="map-floor-title"></div>
    </div>`;
  const heads = root.querySelectorAll(".map-side h3 span");
  heads[0].textContent = t("map.floors");
  heads[1].textContent = t("map.robots");
  const legend = root.querySelector(".legend");
  for (const s of ["driving", "idle", "paused", "estop", "teleop", "offline"]) {
    const item = el("span");
    const i = el("i");
    i.style.background = STATE_COLOR[s];
    item.append(i, t(`state.${s}`));
    legend.appendChild(item);
  }
  for (const k of ["station", "stop", "handoff", "charger"]) {
    const item = el("span");
    const i = el("i");
    i.style.background = PLACE_STYLE[k].color;
    item.append(i, t(`place.${k}`));
    legend.appendChild(item);
  }
}

export async function mount(root, ctx) {
  const L = window.L;
  root.dataset.ready = "0";
  layout(root, ctx.t);
  S = {
    ctx, root, robots: new Map(), facilities: { lift: new Map(), door: new Map(), gate: new Map() },
    drawer: null, listDirty: true, listAt: 0, drawerDirty: false, drawerAt: 0, offs: [], busy: false, teleop: null,
  };
  window.__robopostMap = { robots: 0, frames: [], positions: {} };
  S.canvas = root.querySelector(".robot-layer");
  S.map = L.map(root.querySelector(".map-canvas"), {
    crs: L.CRS.Simple, minZoom: -6, maxZoom: 6, zoomSnap: 0.25, zoomDelta: 0.5, wheelPxPerZoomLevel: 90,
    attributionControl: false, preferCanvas: true, zoomControl: false,
  });
  L.control.zoom({ position: "topright" }).addTo(S.map);
  S.map.on("zoomend moveend", declutter);
  S.map.on("click", (e) => {
    const serial = robotAt(e.containerPoint);
    if (serial) openDrawer(serial);
  });
  S.map.on("mousemove", (e) => {
    S.map.getContainer().style.cursor = robotAt(e.containerPoint) ? "pointer" : "";
  });
  resizeCanvas();
  S.resize = () => {
    if (!S) return;
    S.map.invalidateSize();
    resizeCanvas();
  };
  window.addEventListener("resize", S.resize);
  for (const view of ctx.fleet.values()) updateRobot(view);
  S.offs.push(ctx.stream.on("snapshot", (msg) => ((msg.fleet && msg.fleet.robots) || []).forEach(updateRobot)));
  S.offs.push(ctx.stream.on("*", (msg) => {
    if (msg.view && typeof msg.type === "string" && msg.type.startsWith("fleet.")) updateRobot(msg.view);
  }));
  for (const kind of ["lift", "door", "gate"]) {
    S.offs.push(ctx.stream.on(kind, (msg) => {
      const id = msg[kind];
      if (id === undefined) return;
      S.facilities[kind].set(id, msg);
      applyFacilities();
    }));
  }
  S.raf = requestAnimationFrame(frame);
  S.detailTimer = setInterval(() => S && S.drawer && loadDetails(), 3000);
  try {
    const res = await fetch("/v1/map");
    if (!res.ok) throw new Error(`GET /v1/map → HTTP ${res.status}`);
    const geo = await res.json();
    if (!S || S.root !== root) return;
    S.geo = geo;
  } catch (err) {
    root.dataset.ready = "error";
    ctx.ui.toast(ctx.t("view.failed", { message: err.message }), "error");
    return;
  }
  S.hasOutdoor = byFeature("edge").some((f) => f.properties.floor === null);
  const floors = S.geo.site.floors.map((f) => f.id);
  const m = /floor=([^&]+)/.exec(location.hash);
  const wanted = m ? decodeURIComponent(m[1]) : null;
  S.floor = wanted && (floors.includes(wanted) || (wanted === OUTDOOR && S.hasOutdoor)) ? wanted : S.hasOutdoor || floors.length === 0 ? OUTDOOR : floors[0];
  drawFloor();
  loadFacilities();
}

export function unmount() {
  if (!S) return;
  if (S.teleop) S.teleop.unmount();
  cancelAnimationFrame(S.raf);
  clearInterval(S.detailTimer);
  window.removeEventListener("resize", S.resize);
  S.offs.forEach((off) => off());
  S.map.remove();
  S = null;
}
