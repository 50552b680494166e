// robopost console: draws GET /v1/map (GeoJSON, local ENU metres) on an SVG, one floor at a time.
// Plain script, no build step. When a floor is drawn the SVG gets data-ready="1" and data-floor="<id>".
"use strict";

(() => {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const OUTDOOR = "outdoor";
  const PAD_PX = 36;
  const PRIORITY = { station: 0, handoff: 1, stop: 2, charger: 3, office: 4, room: 4, parking: 5 };
  const RADIUS = { station: 8, handoff: 7, stop: 6, charger: 6, parking: 6, office: 5, room: 5 };
  const KNOWN_KINDS = new Set(["station", "stop", "handoff", "office", "room", "charger", "parking"]);
  // label positions around a point: dx, dy (px), text-anchor, vertical alignment
  const OFFSETS = [
    [0, -10, "middle", "bottom"], [0, 10, "middle", "top"], [11, 0, "start", "middle"], [-11, 0, "end", "middle"],
    [8, -8, "start", "bottom"], [-8, -8, "end", "bottom"], [8, 8, "start", "top"], [-8, 8, "end", "top"],
    [0, -26, "middle", "bottom"], [0, 26, "middle", "top"],
  ];
  const LINE_PX = 14;

  const svg = document.getElementById("map");
  const state = { map: null, floor: null, zoom: 1, pan: [0, 0], frame: null };

  // ---- small helpers -------------------------------------------------------------------------

  function el(name, attrs, parent) {
    const node = document.createElementNS(SVG_NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (parent) parent.appendChild(node);
    return node;
  }

  function isCjk(ch) {
    const c = ch.codePointAt(0);
    return (c >= 0x2e80 && c <= 0x9fff) || (c >= 0xf900 && c <= 0xfaff) || (c >= 0xff00 && c <= 0xffef);
  }

  function textWidth(text, px) {
    let w = 0;
    for (const ch of text) w += isCjk(ch) ? px : px * 0.58;
    return w;
  }

  function overlaps(a, b) {
    return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
  }

  function clamp(v, lo, hi) {
    return Math.max(lo, Math.min(hi, v));
  }

  // ---- what is on a floor --------------------------------------------------------------------

  function byFeature(kind) {
    return state.map.features.filter((f) => f.properties.feature === kind);
  }

  function floorBuilding(floorId) {
    const floor = state.map.site.floors.find((f) => f.id === floorId);
    return floor ? floor.building : null;
  }

  function featuresOn(floor) {
    const outdoor = floor === OUTDOOR;
    const building = outdoor ? null : floorBuilding(floor);
    return {
      buildings: byFeature("building").filter((f) => outdoor || f.properties.id === building),
      edges: byFeature("edge").filter((f) =>
        outdoor ? f.properties.floor === null || f.properties.entrance : f.properties.floor === floor),
      places: byFeature("place").filter((f) => (outdoor ? f.properties.floor === null : f.properties.floor === floor)),
      lifts: outdoor ? [] : byFeature("lift").filter((f) => f.properties.floors.includes(floor)),
    };
  }

  function hasOutdoor() {
    return byFeature("edge").some((f) => f.properties.floor === null);
  }

  function bounds(parts, floor) {
    // a floor's view frames its whole building (so floors line up); outdoor frames the network
    const pts = [];
    const add = (c) => pts.push(c);
    const building = floor === OUTDOOR ? null : floorBuilding(floor);
    const edges = building === null ? parts.edges
      : byFeature("edge").filter((f) => f.properties.floor !== null && floorBuilding(f.properties.floor) === building);
    edges.forEach((f) => f.geometry.coordinates.forEach(add));
    parts.places.forEach((f) => add(f.geometry.coordinates));
    parts.lifts.forEach((f) => add(f.geometry.coordinates));
    parts.buildings.forEach((f) => f.geometry.coordinates[0].forEach(add));
    if (pts.length === 0) return [-1, -1, 1, 1];
    const xs = pts.map((p) => p[0]);
    const ys = pts.map((p) => p[1]);
    return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
  }

  function projector(b) {
    const w = svg.clientWidth || 800;
    const h = svg.clientHeight || 600;
    const k0 = Math.min((w - 2 * PAD_PX) / Math.max(b[2] - b[0], 1e-6), (h - 2 * PAD_PX) / Math.max(b[3] - b[1], 1e-6));
    const k = k0 * state.zoom;
    const cx = (b[0] + b[2]) / 2;
    const cy = (b[1] + b[3]) / 2;
    const project = ([x, y]) => [w / 2 + (x - cx) * k + state.pan[0], h / 2 - (y - cy) * k + state.pan[1]];
    project.size = [w, h];
    project.metresPerPx = 1 / k;
    return project;
  }

  // ---- drawing -------------------------------------------------------------------------------

  function edgeClass(p) {
    if (p.entrance) return "entrance";
    if (p.floor !== null) return "indoor";
    if (p.cart === false) return p.barrier ? "barrier" : p.step || p.kerb ? "step" : "narrow";
    return "road";
  }

  function strokeWidth(p, cls) {
    if (cls === "entrance") return 3;
    if (cls === "indoor") return p.width ? clamp(p.width, 1, 2.6) : 1.6;
    if (cls !== "road") return 1.8;
    return p.width ? clamp(0.6 + 0.4 * p.width, 1, 3.4) : 1.2;
  }

  function midpoint(pts) {
    const lens = pts.slice(1).map((p, i) => Math.hypot(p[0] - pts[i][0], p[1] - pts[i][1]));
    const total = lens.reduce((a, b) => a + b, 0);
    let half = total / 2;
    for (let i = 0; i < lens.length; i += 1) {
      if (half <= lens[i] || i === lens.length - 1) {
        const t = lens[i] > 0 ? half / lens[i] : 0;
        const [a, b] = [pts[i], pts[i + 1]];
        const d = lens[i] > 0 ? [(b[0] - a[0]) / lens[i], (b[1] - a[1]) / lens[i]] : [1, 0];
        return { x: a[0] + t * (b[0] - a[0]), y: a[1] + t * (b[1] - a[1]), dx: d[0], dy: d[1], length: total };
      }
      half -= lens[i];
    }
    return { x: pts[0][0], y: pts[0][1], dx: 1, dy: 0, length: 0 };
  }

  function drawBuildings(layer, parts, project, labels) {
    const here = state.floor !== OUTDOOR;
    for (const f of parts.buildings) {
      const ring = f.geometry.coordinates[0].map(project);
      el("polygon", { class: here ? "building here" : "building", points: ring.map((p) => p.join(",")).join(" ") }, layer);
      if (here) continue;
      const cx = ring.reduce((a, p) => a + p[0], 0) / ring.length;
      const cy = ring.reduce((a, p) => a + p[1], 0) / ring.length;
      const lines = [f.properties.label, f.properties.name].filter(Boolean);
      labels.push({ x: cx, y: cy, lines, priority: -1, cls: "building-label", centred: true });
    }
  }

  function drawEdges(layer, parts, project, marks, labels) {
    const arrows = [];
    for (const f of parts.edges) {
      const p = f.properties;
      const cls = edgeClass(p);
      const pts = f.geometry.coordinates.map(project);
      const line = el("polyline", {
        class: `edge ${cls}`, points: pts.map((q) => q.join(",")).join(" "), "stroke-width": strokeWidth(p, cls),
        "data-id": p.id,
      }, layer);
      el("title", {}, line).textContent = `${p.id}${p.width ? ` · ${p.width} m` : ""}${p.oneway ? " · one-way 单行" : ""}`;
      const mid = midpoint(pts);
      if (p.oneway && mid.length > 30 && arrows.every((a) => Math.hypot(a.x - mid.x, a.y - mid.y) > 45)) {
        arrows.push(mid);
        const ang = (Math.atan2(mid.dy, mid.dx) * 180) / Math.PI;
        el("path", { class: "arrow", d: "M 6 0 L -5 -4.5 L -5 4.5 Z", transform: `translate(${mid.x},${mid.y}) rotate(${ang})` }, marks);
      }
      if (p.door) {
        el("rect", { class: "door", x: mid.x - 3.5, y: mid.y - 3.5, width: 7, height: 7, "data-door": p.door }, marks);
      }
      if (p.gate) {
        el("rect", { class: "gate", x: mid.x - 5, y: mid.y - 5, width: 10, height: 10, "data-gate": p.gate,
          transform: `rotate(45 ${mid.x} ${mid.y})` }, marks);
        // building gates get a label; the many street gates of an imported city map keep just their marker
        if (p.entrance || p.floor !== null) {
          labels.push({ x: mid.x, y: mid.y, lines: [`闸机 gate ${p.gate}`], priority: 1, cls: "gate-label", key: `gate:${p.gate}` });
        }
      }
    }
  }

  function drawLifts(layer, parts, project, labels) {
    for (const f of parts.lifts) {
      const [x, y] = project(f.geometry.coordinates);
      const g = el("g", { class: "lift", "data-lift": f.properties.id }, layer);
      el("rect", { x: x - 7, y: y - 7, width: 14, height: 14 }, g);
      el("title", {}, g).textContent = `${f.properties.id} · ${f.properties.floors.join(", ")}`;
      labels.push({ x, y, lines: [`电梯 ${f.properties.id}`], priority: 0, cls: "lift-label" });
    }
  }

  function drawPlaces(layer, parts, project, labels) {
    for (const f of parts.places) {
      const p = f.properties;
      const [x, y] = project(f.geometry.coordinates);
      const kind = KNOWN_KINDS.has(p.kind) ? p.kind : "other";
      const dot = el("circle", { class: `place kind-${kind}`, cx: x, cy: y, r: RADIUS[p.kind] || 4, "data-place": p.name }, layer);
      el("title", {}, dot).textContent = `${p.label ? `${p.label} · ` : ""}${p.name} (${p.kind})`;
      const lines = p.label && p.label !== p.name ? [p.label, p.name] : [p.name];
      labels.push({ x, y, lines, priority: PRIORITY[p.kind] ?? 6, cls: "place-label", place: p.name });
    }
  }

  function labelBox(item, off) {
    const widths = item.lines.map((t, i) => textWidth(t, i === 0 ? 12 : 11));
    const w = Math.max(...widths) + 4;
    const h = item.lines.length * LINE_PX + 2;
    const [dx, dy, anchor, valign] = off;
    const x0 = anchor === "start" ? item.x + dx : anchor === "end" ? item.x + dx - w : item.x + dx - w / 2;
    const y0 = valign === "bottom" ? item.y + dy - h : valign === "top" ? item.y + dy : item.y + dy - h / 2;
    return { x0, y0, x1: x0 + w, y1: y0 + h, anchor };
  }

  function placeLabels(layer, labels, taken, size) {
    const frame = { x0: 0, y0: 0, x1: size[0], y1: size[1] };
    const seen = new Set();
    let placed = 0;
    for (const item of labels.sort((a, b) => a.priority - b.priority)) {
      if (item.key && seen.has(item.key)) continue;
      const offsets = item.centred ? [[0, 0, "middle", "middle"], ...OFFSETS.slice(0, 2)] : OFFSETS;
      const box = offsets.map((off) => labelBox(item, off)).find((b) =>
        b.x0 >= frame.x0 && b.x1 <= frame.x1 && b.y0 >= frame.y0 && b.y1 <= frame.y1 && !taken.some((t) => overlaps(b, t)));
      if (!box) continue;
      taken.push(box);
      if (item.key) seen.add(item.key);
      placed += 1;
      const x = box.anchor === "start" ? box.x0 + 2 : box.anchor === "end" ? box.x1 - 2 : (box.x0 + box.x1) / 2;
      const text = el("text", { class: item.cls, x, y: box.y0 + 12, "text-anchor": box.anchor }, layer);
      if (item.place) text.setAttribute("data-place", item.place);
      item.lines.forEach((line, i) => {
        const span = el("tspan", { x, dy: i === 0 ? 0 : LINE_PX, class: i === 0 ? "main" : "en" }, text);
        span.textContent = line;
      });
    }
    return placed;
  }

  function draw() {
    if (!state.map || state.floor === null) return;
    svg.dataset.ready = "0";
    svg.replaceChildren();
    const parts = featuresOn(state.floor);
    const project = projector(bounds(parts, state.floor));
    const layers = ["buildings", "edges", "marks", "places", "labels"].map((id) => el("g", { class: id }, svg));
    const labels = [];
    drawBuildings(layers[0], parts, project, labels);
    drawEdges(layers[1], parts, project, layers[2], labels);
    drawLifts(layers[2], parts, project, labels);
    drawPlaces(layers[3], parts, project, labels);
    const taken = labels.filter((l) => !l.centred).map((l) => ({ x0: l.x - 4, y0: l.y - 4, x1: l.x + 4, y1: l.y + 4 }));
    const placed = placeLabels(layers[4], labels, taken, project.size);
    svg.dataset.floor = state.floor;
    svg.dataset.edges = String(parts.edges.length);
    svg.dataset.labels = String(placed);
    svg.dataset.ready = "1";
  }

  // ---- floor switcher and header -------------------------------------------------------------

  function selectFloor(floor) {
    state.floor = floor;
    state.zoom = 1;
    state.pan = [0, 0];
    for (const b of document.querySelectorAll("#floors button")) {
      b.setAttribute("aria-pressed", String(b.dataset.floor === floor));
    }
    history.replaceState(null, "", `#floor=${encodeURIComponent(floor)}`);
    draw();
  }

  function button(floor, text, title, parent) {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.floor = floor;
    b.textContent = text;
    b.title = title;
    b.addEventListener("click", () => selectFloor(floor));
    parent.appendChild(b);
    return b;
  }

  function buildFloorSwitcher() {
    const nav = document.getElementById("floors");
    nav.replaceChildren();
    const names = new Map(byFeature("building").map((f) => [f.properties.id, f.properties]));
    if (hasOutdoor()) button(OUTDOOR, "室外 Outdoor", "outdoor network", nav);
    const groups = new Map();
    for (const f of state.map.site.floors) {
      if (!groups.has(f.building)) groups.set(f.building, []);
      groups.get(f.building).push(f);
    }
    for (const [building, floors] of groups) {
      const group = document.createElement("span");
      group.className = "group";
      const b = names.get(building);
      const head = document.createElement("b");
      head.textContent = b ? `${b.label ? `${b.label} ` : ""}${b.name}` : building;
      group.appendChild(head);
      floors.forEach((f) => button(f.id, f.name, `${f.id} · ${f.elevation.toFixed(1)} m`, group));
      nav.appendChild(group);
    }
  }

  function buildHeader() {
    const site = state.map.site;
    document.getElementById("site-label").textContent = site.label || site.name;
    document.getElementById("site-name").textContent = site.label ? site.name : "";
    const count = (k) => byFeature(k).length;
    document.getElementById("site-info").textContent =
      `原点 origin ${site.origin.lat.toFixed(5)}°, ${site.origin.lon.toFixed(5)}° · ${site.floors.length} 层 floors · ` +
      `${count("lift")} 部电梯 lifts · ${count("edge")} 条通道 edges · ${count("place")} 个地点 places`;
    document.title = `robopost · ${site.label || site.name}`;
  }

  function initialFloor() {
    const m = /floor=([^&]+)/.exec(location.hash);
    const wanted = m ? decodeURIComponent(m[1]) : null;
    const floors = state.map.site.floors.map((f) => f.id);
    if (wanted && (floors.includes(wanted) || wanted === OUTDOOR)) return wanted;
    return hasOutdoor() || floors.length === 0 ? OUTDOOR : floors[0];
  }

  // ---- zoom and pan --------------------------------------------------------------------------

  function redrawSoon() {
    if (state.frame !== null) return;
    state.frame = requestAnimationFrame(() => {
      state.frame = null;
      draw();
    });
  }

  function installZoom() {
    svg.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      const f = Math.exp(-ev.deltaY * 0.0015);
      const zoom = clamp(state.zoom * f, 0.5, 200);
      const g = zoom / state.zoom;
      const rect = svg.getBoundingClientRect();
      const m = [ev.clientX - rect.left - rect.width / 2, ev.clientY - rect.top - rect.height / 2];
      state.pan = [m[0] - (m[0] - state.pan[0]) * g, m[1] - (m[1] - state.pan[1]) * g];
      state.zoom = zoom;
      redrawSoon();
    }, { passive: false });
    let drag = null;
    svg.addEventListener("pointerdown", (ev) => {
      drag = { x: ev.clientX, y: ev.clientY, pan: state.pan.slice() };
      svg.setPointerCapture(ev.pointerId);
      svg.classList.add("dragging");
    });
    svg.addEventListener("pointermove", (ev) => {
      if (!drag) return;
      state.pan = [drag.pan[0] + ev.clientX - drag.x, drag.pan[1] + ev.clientY - drag.y];
      redrawSoon();
    });
    const stop = () => {
      drag = null;
      svg.classList.remove("dragging");
    };
    svg.addEventListener("pointerup", stop);
    svg.addEventListener("pointercancel", stop);
    svg.addEventListener("dblclick", () => {
      state.zoom = 1;
      state.pan = [0, 0];
      draw();
    });
  }

  // ---- start ---------------------------------------------------------------------------------

  async function main() {
    const res = await fetch("/v1/map");
    if (!res.ok) throw new Error(`GET /v1/map → HTTP ${res.status}`);
    state.map = await res.json();
    buildHeader();
    buildFloorSwitcher();
    installZoom();
    window.addEventListener("resize", redrawSoon);
    selectFloor(initialFloor());
  }

  main().catch((err) => {
    svg.dataset.ready = "error";
    document.getElementById("status").textContent = `地图加载失败 Map failed to load: ${err.message}`;
  });
})();
