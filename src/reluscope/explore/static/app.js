// reluscope explore: draws what the server computes exactly; no geometry is computed here.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  mode: "train", box: [-1, 1, -1, 1], frame: null, version: -1, data: null, playing: false,
  clicks: [], segment: null, hulls: null, polling: false, lastHover: 0,
};
window.reluscopeRedraws = [];
const CLASS_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

function showError(message) { $("error").textContent = message || ""; }

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  if (response.status === 204) return null;
  const doc = await response.json();
  if (!response.ok) throw new Error(doc.error || response.statusText);
  return doc;
}

// -- coordinates ---------------------------------------------------------------------------
function toCanvas(canvas, box, x, y) {
  return [(x - box[0]) / (box[1] - box[0]) * canvas.width, (box[3] - y) / (box[3] - box[2]) * canvas.height];
}
function toWorld(canvas, box, event) {
  const r = canvas.getBoundingClientRect();
  const px = (event.clientX - r.left) * canvas.width / r.width;
  const py = (event.clientY - r.top) * canvas.height / r.height;
  return [box[0] + px / canvas.width * (box[1] - box[0]), box[3] - py / canvas.height * (box[3] - box[2])];
}

// -- the region map ------------------------------------------------------------------------
function drawMap() {
  const canvas = $("map"), ctx = canvas.getContext("2d"), f = state.frame, box = state.box;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!f) return;
  const P = f.polygons, off = f.offsets, showFiedler = $("show-fiedler").checked && f.fiedler_side;
  ctx.lineWidth = 0.5;
  ctx.strokeStyle = "rgba(60,60,60,0.55)";
  for (let i = 0; i + 1 < off.length; i++) {
    ctx.beginPath();
    for (let k = off[i]; k < off[i + 1]; k++) {
      const [cx, cy] = toCanvas(canvas, box, P[2 * k], P[2 * k + 1]);
      if (k === off[i]) ctx.moveTo(cx, cy); else ctx.lineTo(cx, cy);
    }
    ctx.closePath();
    ctx.fillStyle = f.colours[i];
    ctx.fill();
    if (showFiedler) {
      ctx.fillStyle = f.fiedler_side[i] ? "rgba(214,39,40,0.35)" : "rgba(31,119,180,0.35)";
      ctx.fill();
    }
    if ($("show-edges").checked) ctx.stroke();
  }
  if ($("show-dual").checked) drawSegments(ctx, canvas, f.dual, "rgba(0,0,0,0.45)", 0.8);
  drawSegments(ctx, canvas, f.decision, "#000", 2.2);
  if ($("show-data").checked && state.data) {
    drawPoints(ctx, canvas, state.data.train, 3.2, true);
  }
  if (state.mode === "model" && f.anchors) {
    f.anchors.forEach(([x, y], i) => {
      const [cx, cy] = toCanvas(canvas, box, x, y);
      ctx.fillStyle = "#000"; ctx.beginPath(); ctx.arc(cx, cy, 5, 0, 2 * Math.PI); ctx.fill();
      ctx.fillStyle = "#fff"; ctx.font = "bold 11px sans-serif"; ctx.fillText(String(f.classes[i]), cx - 3, cy + 4);
    });
  }
  drawSegment(ctx, canvas);
}

function drawSegments(ctx, canvas, flat, colour, width) {
  ctx.strokeStyle = colour; ctx.lineWidth = width; ctx.beginPath();
  for (let k = 0; k + 3 < flat.length; k += 4) {
    const [ax, ay] = toCanvas(canvas, state.box, flat[k], flat[k + 1]);
    const [bx, by] = toCanvas(canvas, state.box, flat[k + 2], flat[k + 3]);
    ctx.moveTo(ax, ay); ctx.lineTo(bx, by);
  }
  ctx.stroke();
}

function drawPoints(ctx, canvas, data, radius, outline) {
  data.x.forEach(([x, y], i) => {
    const [cx, cy] = toCanvas(canvas, state.box, x, y);
    ctx.beginPath(); ctx.arc(cx, cy, radius, 0, 2 * Math.PI);
    ctx.fillStyle = CLASS_COLOURS[data.y[i] % CLASS_COLOURS.length]; ctx.fill();
    if (outline) { ctx.strokeStyle = "#fff"; ctx.lineWidth = 0.8; ctx.stroke(); }
  });
}

function drawSegment(ctx, canvas) {
  const pts = state.segment ? [state.segment.p0, state.segment.p1] : state.clicks;
  if (!pts.length) return;
  ctx.strokeStyle = "#ff00aa"; ctx.fillStyle = "#ff00aa"; ctx.lineWidth = 2;
  const c = pts.map(([x, y]) => toCanvas(canvas, state.box, x, y));
  if (c.length === 2) { ctx.beginPath(); ctx.moveTo(c[0][0], c[0][1]); ctx.lineTo(c[1][0], c[1][1]); ctx.stroke(); }
  c.forEach(([x, y]) => { ctx.beginPath(); ctx.arc(x, y, 4, 0, 2 * Math.PI); ctx.fill(); });
  if (state.segment) {  // a tick at every region boundary the segment crosses
    const s = state.segment;
    ctx.fillStyle = "#000";
    s.t.slice(1, -1).forEach((t) => {
      const [x, y] = toCanvas(canvas, state.box, s.p0[0] + t * (s.p1[0] - s.p0[0]), s.p0[1] + t * (s.p1[1] - s.p0[1]));
      ctx.fillRect(x - 1.5, y - 1.5, 3, 3);
    });
  }
}

// -- charts ----------------------------------------------------------------------------------
function drawChart(canvas, xs, series, title) {
  const ctx = canvas.getContext("2d"), W = canvas.width, H = canvas.height, pad = 16;
  ctx.clearRect(0, 0, W, H);
  ctx.fillStyle = "#333"; ctx.font = "11px sans-serif"; ctx.fillText(title, 4, 11);
  const values = series.flatMap((s) => s.ys.filter((v) => v !== null && Number.isFinite(v)));
  if (!xs.length || !values.length) return;
  let lo = Math.min(...values), hi = Math.max(...values);
  if (hi - lo < 1e-12) { hi += 0.5; lo -= 0.5; }
  const x0 = xs[0], x1 = xs[xs.length - 1] === xs[0] ? xs[0] + 1 : xs[xs.length - 1];
  const X = (x) => pad + (x - x0) / (x1 - x0) * (W - 2 * pad);
  const Y = (y) => H - 4 - (y - lo) / (hi - lo) * (H - pad - 8);
  series.forEach((s) => {
    ctx.strokeStyle = s.colour; ctx.lineWidth = 1.4; ctx.beginPath();
    let started = false;
    s.ys.forEach((y, i) => {
      if (y === null || !Number.isFinite(y)) { started = false; return; }
      if (!started) { ctx.moveTo(X(xs[i]), Y(y)); started = true; } else ctx.lineTo(X(xs[i]), Y(y));
    });
    ctx.stroke();
  });
  ctx.fillStyle = "#666"; ctx.fillText(`${fmt(hi)}`, W - 44, 11); ctx.fillText(`${fmt(lo)}`, W - 44, H - 4);
  let lx = 4 + ctx.measureText(title).width + 8;
  series.forEach((s) => {
    if (!s.label) return;
    ctx.fillStyle = s.colour; ctx.fillText(s.label, lx, 11); lx += ctx.measureText(s.label).width + 8;
  });
}
function fmt(v) { return Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3); }

function drawCharts() {
  const h = state.frame && state.frame.history;
  if (!h || !h.step) return;
  drawChart($("chart-loss"), h.step, [{ ys: h.loss, colour: "#444" }], "loss");
  drawChart($("chart-acc"), h.step, [{ ys: h.train_accuracy, colour: "#1f77b4", label: "train" }, { ys: h.test_accuracy, colour: "#d62728", label: "test" }], "accuracy");
  drawChart($("chart-regions"), h.step, [{ ys: h.regions, colour: "#2ca02c" }], "regions");
  drawChart($("chart-kappa"), h.step, [{ ys: h.kappa, colour: "#9467bd" }], "Fiedler κ vs decision");
  drawChart($("chart-betti"), h.step, [{ ys: h.beta0, colour: "#8c564b", label: "β0" }, { ys: h.beta1, colour: "#e377c2", label: "β1" }], "max Betti (random filtration)");
}

function drawWalk() {
  const s = state.segment;
  if (!s) return;
  const xs = s.running_chi.map((_, i) => i);
  drawChart($("walk-chart"), xs, [
    { ys: s.distance_to_start, colour: "#1f77b4", label: "Hamming to start" },
  ], "walk");
  const ctx = $("walk-chart").getContext("2d");  // running chi on its own [0, 1] scale, dashed
  const W = ctx.canvas.width, H = ctx.canvas.height;
  ctx.setLineDash([4, 3]); ctx.strokeStyle = "#d62728"; ctx.beginPath();
  s.running_chi.forEach((c, i) => {
    const x = 16 + (xs.length > 1 ? i / (xs.length - 1) : 0) * (W - 32), y = H - 4 - c * (H - 24);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke(); ctx.setLineDash([]);
  ctx.fillStyle = "#d62728"; ctx.fillText("running χ (0–1)", 4, H - 6);
}

// -- frames --------------------------------------------------------------------------------------
function applyFrame(f, started) {
  state.frame = f;
  state.version = f.version;
  drawMap();
  drawCharts();
  $("step-count").textContent = String(f.step);
  $("regions").textContent = String(f.n_regions);
  $("map-ms").textContent = f.map_ms ? f.map_ms.toFixed(1) : "–";
  $("map-note").textContent = f.map_every > 1 ? ` (this net is large: the region map is redrawn every ${f.map_every} frames)` : "";
  const ms = performance.now() - started;
  $("redraw-ms").textContent = ms.toFixed(1);
  window.reluscopeRedraws.push(ms);  // read by bench/explore.py
  if (window.reluscopeRedraws.length > 500) window.reluscopeRedraws.shift();
  if (typeof f.playing === "boolean") setPlaying(f.playing);
}

async function poll() {
  if (state.polling || state.mode !== "train") return;
  state.polling = true;
  try {
    const started = performance.now();
    const f = await api(`/api/frame?since=${state.version}`);
    if (f) applyFrame(f, started);
  } catch (err) {
    showError(err.message);
  } finally {
    state.polling = false;
  }
}

function setPlaying(playing) {
  state.playing = playing;
  $("play").textContent = playing ? "Pause" : "Play";
}

// -- controls --------------------------------------------------------------------------------------
function readConfig() {
  const num = (id) => Number($(id).value);
  return {
    data: $("data").value, n_points: num("n_points"), widths: $("widths").value,
    activation: $("activation").value, optimizer: $("optimizer").value, lr: num("lr"),
    weight_decay: num("weight_decay"), steps_per_frame: num("steps_per_frame"), seed: num("seed"),
  };
}
function writeConfig(c) {
  for (const k of ["data", "n_points", "activation", "optimizer", "lr", "weight_decay", "steps_per_frame", "seed"]) $(k).value = c[k];
  $("widths").value = c.widths.join(",");
  $("hull-layer").max = String(c.widths.length);
}

async function control(action, body) {
  showError("");
  try {
    const started = performance.now();
    const r = await api(`/api/control/${action}`, body || {});
    setPlaying(r.playing);
    if (action === "reset") { await loadState(); state.segment = null; state.clicks = []; }
    const f = await api(`/api/frame?since=${action === "reset" ? -1 : state.version}`);
    if (f) applyFrame(f, started);
    if ($("show-hulls").checked) await loadHulls();
  } catch (err) { showError(err.message); }
}

async function loadState() {
  const s = await api("/api/state");
  state.mode = s.mode;
  if (s.mode === "train") {
    writeConfig(s.config);
    const variant = $("variant");
    if (!variant.options.length) {
      s.variants.forEach((v) => { const o = document.createElement("option"); o.value = v; o.textContent = v; variant.appendChild(o); });
    }
    variant.value = s.variant;
    state.data = s.data.train ? s.data : null;
    state.box = s.data.box;
    setPlaying(s.playing);
  } else {
    setupModelMode(s);
  }
}

// -- clicks and hover ----------------------------------------------------------------------------
async function onMapClick(event) {
  const p = toWorld($("map"), state.box, event);
  if (state.mode === "model" && state.frame && state.frame.image_shape && state.frame.image_shape.length) probeImage(p);
  if (state.clicks.length >= 2 || state.segment) { state.clicks = []; state.segment = null; }
  state.clicks.push(p);
  $("map").dataset.clicks = JSON.stringify(state.clicks);
  if (state.clicks.length === 2) {
    try {
      const s = await api("/api/traverse", { p0: state.clicks[0], p1: state.clicks[1] });
      state.segment = s;
      $("pieces").textContent = String(s.n_pieces);
      $("chi").textContent = s.chi.toFixed(6);
      $("chi").dataset.value = String(s.chi);
      $("exact").textContent = s.exact ? "(exact)" : "(sampled)";
      drawWalk();
    } catch (err) { showError(err.message); }
  }
  drawMap();
}

async function onMapHover(event) {
  const now = performance.now();
  if (now - state.lastHover < 80 || !state.frame) return;
  state.lastHover = now;
  const [x, y] = toWorld($("map"), state.box, event);
  try {
    const r = await api(`/api/region?x=${x}&y=${y}`);
    $("region-info").textContent = r.face < 0 ? "outside the box" :
      `face ${r.face} · area ${r.area.toPrecision(3)} · neighbours ${r.neighbours.join(", ")}\npattern ${r.pattern}`;
  } catch (err) { /* the pointer can leave the box between frames; nothing to report */ }
}

// -- hulls --------------------------------------------------------------------------------------
async function loadHulls() {
  const canvas = $("hull-canvas");
  if (!$("show-hulls").checked) { canvas.hidden = true; $("hull-info").textContent = ""; return; }
  try {
    const h = await api(`/api/hulls?layer=${Number($("hull-layer").value)}`);
    canvas.hidden = false;
    const xs = [], ys = [];
    for (let k = 0; k + 1 < h.points.length; k += 2) { xs.push(h.points[k]); ys.push(h.points[k + 1]); }
    const pad = 0.08, bx = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    const wx = (bx[1] - bx[0]) || 1, wy = (bx[3] - bx[2]) || 1;
    const box = [bx[0] - pad * wx, bx[1] + pad * wx, bx[2] - pad * wy, bx[3] + pad * wy];
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    xs.forEach((x, i) => {
      const [cx, cy] = toCanvas(canvas, box, x, ys[i]);
      ctx.fillStyle = CLASS_COLOURS[h.labels[i] % CLASS_COLOURS.length]; ctx.fillRect(cx - 1.5, cy - 1.5, 3, 3);
    });
    h.hulls.forEach((ring, c) => {
      ctx.strokeStyle = CLASS_COLOURS[c % CLASS_COLOURS.length]; ctx.lineWidth = 1.5; ctx.beginPath();
      for (let k = 0; k + 1 < ring.length; k += 2) {
        const [cx, cy] = toCanvas(canvas, box, ring[k], ring[k + 1]);
        if (k === 0) ctx.moveTo(cx, cy); else ctx.lineTo(cx, cy);
      }
      ctx.closePath(); ctx.stroke();
    });
    $("hull-info").textContent = `layer ${h.layer}: class hulls in the top-2 principal plane (${(100 * h.explained_variance).toFixed(0)}% of the variance); nearest-convex-hull test accuracy ${h.nch_test_accuracy.toFixed(3)}`;
  } catch (err) { showError(err.message); }
}

// -- saved models ----------------------------------------------------------------------------------
function setupModelMode(s) {
  $("train-controls").hidden = true;
  $("model-controls").hidden = false;
  $("model-name").textContent = s.model;
  $("subtitle").textContent = "Exact linear regions of a saved model on a plane through three inputs.";
  if (s.input === "images") {
    const pickers = $("class-pickers");
    pickers.innerHTML = "";
    s.default_classes.forEach((c, i) => {
      const sel = document.createElement("select");
      sel.id = `class-${i}`;
      s.classes.forEach((k) => { const o = document.createElement("option"); o.value = k; o.textContent = k; sel.appendChild(o); });
      sel.value = c;
      pickers.appendChild(sel);
    });
  } else {
    $("class-pickers").textContent = "2-D inputs: the plane is the input plane.";
    state.box = s.box;
  }
}

function drawImage(canvas, pixels, shape) {
  const [h, w] = shape, ctx = canvas.getContext("2d"), img = ctx.createImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    const v = Math.max(0, Math.min(255, Math.round(pixels[i] * 255)));
    img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v; img.data[4 * i + 3] = 255;
  }
  const tmp = document.createElement("canvas"); tmp.width = w; tmp.height = h;
  tmp.getContext("2d").putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(tmp, 0, 0, canvas.width, canvas.height);
}

async function showPlane() {
  showError("");
  try {
    const started = performance.now();
    const classes = [0, 1, 2].map((i) => $(`class-${i}`)).filter(Boolean).map((e) => e.value).join(",");
    const f = await api(`/api/plane?classes=${classes}`);
    if (f.anchors.length) {
      const a = f.anchors, xs = a.map((p) => p[0]), ys = a.map((p) => p[1]);
      const w = Math.max(...xs) - Math.min(...xs), h = Math.max(...ys) - Math.min(...ys), m = 0.25 * Math.max(w, h);
      state.box = [Math.min(...xs) - m, Math.max(...xs) + m, Math.min(...ys) - m, Math.max(...ys) + m];
    }
    state.segment = null; state.clicks = [];
    applyFrame(f, started);
    const corners = $("corner-images");
    corners.innerHTML = "";
    f.images.forEach((pixels, i) => {
      const c = document.createElement("canvas"); c.width = 56; c.height = 56; c.title = `class ${f.classes[i]}`;
      corners.appendChild(c); drawImage(c, pixels, f.image_shape);
    });
  } catch (err) { showError(err.message); }
}

async function probeImage(p) {
  try {
    const r = await api(`/api/image?x=${p[0]}&y=${p[1]}`);
    drawImage($("probe"), r.image, r.shape);
  } catch (err) { showError(err.message); }
}

// -- start ---------------------------------------------------------------------------------------------
async function main() {
  $("reset").addEventListener("click", () => control("reset", { config: readConfig() }));
  $("play").addEventListener("click", () => control(state.playing ? "pause" : "play"));
  $("step").addEventListener("click", () => control("step"));
  $("variant").addEventListener("change", () => control("variant", { variant: $("variant").value }));
  for (const id of ["show-edges", "show-data", "show-dual", "show-fiedler"]) $(id).addEventListener("change", drawMap);
  $("show-hulls").addEventListener("change", loadHulls);
  $("hull-layer").addEventListener("change", loadHulls);
  $("map").addEventListener("click", onMapClick);
  $("map").addEventListener("mousemove", onMapHover);
  $("show-plane").addEventListener("click", showPlane);
  try {
    await loadState();
    if (state.mode === "train") {
      await poll();
      setInterval(poll, 40);
    } else {
      await showPlane();
    }
    document.body.dataset.ready = "1";
  } catch (err) { showError(err.message); }
}

main();
