// bumps view: the page. Data comes from the local server (/api/...) or, in an exported page,
// from window.BUMPS_EXPORT. Charts are uPlot (vendored); heat maps are plain canvases.
(function () {
  "use strict";
  const EXPORT = window.BUMPS_EXPORT || null;
  const FILE = new URLSearchParams(location.search).get("file") || "";
  const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  const KIND_COLOR = { bump: "#d62728", spike: "#ff7f0e", phase_change: "#9467bd" };
  const PHASE_COLOR = { memorisation: "rgba(255,160,0,0.18)", circuit: "rgba(0,160,255,0.16)", cleanup: "rgba(0,200,90,0.16)", after: "rgba(0,0,0,0)" };
  const MAX_MARKERS = 2000;
  const state = { page: null, events: [], version: null, updates: 0, seed: 0, record: null, followLast: true, sortNeurons: true, seedData: null };
  const app = document.getElementById("app");
  const tip = document.getElementById("tooltip");

  // ------------------------------------------------------------------ helpers
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const k of kids) if (k != null) e.append(k);
    return e;
  }
  function svg(tag, attrs) {
    const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }
  const exact = (v) => (v == null ? "—" : String(v));
  const short = (v) => (v == null ? "—" : Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3) : (+v.toPrecision(4)).toString());
  const tick = (v) => (v >= 1e-3 && v < 1e4 ? short(v) : v.toExponential(Number.isInteger(Math.log10(v)) ? 0 : 1));
  async function api(route, query) {
    const u = new URL(route, location.href);
    for (const [k, v] of Object.entries(query || {})) u.searchParams.set(k, v);
    const r = await fetch(u, { cache: "no-store" });
    const j = await r.json();
    if (!r.ok) throw new Error(j.error || r.statusText);
    return j;
  }
  function showTip(ev, text) {
    tip.hidden = false;
    tip.textContent = text;
    tip.style.left = ev.clientX + 12 + "px";
    tip.style.top = ev.clientY + 12 + "px";
  }
  const hideTip = () => (tip.hidden = true);
  function fail(msg) {
    app.replaceChildren(el("p", { class: "error", id: "error", text: msg }));
    document.body.dataset.ready = "error";
  }
  function section(id, title, ...kids) {
    return el("section", { id }, el("h2", { text: title }), ...kids);
  }

  // ------------------------------------------------------------------ line charts (uPlot)
  function eventsFor(chart, seed) {
    return state.events.filter((e) => chart.keys.includes(e.series) && (seed == null || (e.index || [])[0] === seed));
  }
  function drawOverlay(u, events, marks) {
    const ctx = u.ctx, top = u.bbox.top, h = u.bbox.height;
    ctx.save();
    for (const e of events.slice(0, 300)) {
      const c = KIND_COLOR[e.kind] || "#000";
      const x0 = u.valToPos(e.start_step, "x", true), x1 = u.valToPos(e.end_step, "x", true), xa = u.valToPos(e.at_step, "x", true);
      ctx.fillStyle = c + "14";
      ctx.fillRect(x0, top, Math.max(1, x1 - x0), h);
      ctx.strokeStyle = c;
      ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(xa, top); ctx.lineTo(xa, top + 8); ctx.stroke();
    }
    ctx.setLineDash([4, 3]);
    for (const m of marks || []) {
      const x = u.valToPos(m.step, "x", true);
      ctx.strokeStyle = "#444";
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + h); ctx.stroke();
    }
    ctx.restore();
  }
  // zoom: ask the server for the chart over the shown steps only (finer than the first envelope)
  function refine(u, c, box) {
    clearTimeout(u._timer);
    u._timer = setTimeout(async () => {
      const min = u.scales.x.min, max = u.scales.x.max;
      let w;
      try { w = await api("/api/window", { file: FILE, chart: c.id, lo: min, hi: max }); } catch (e) { return; }
      if (w.series.length !== c.series.length || !box.isConnected) return;
      u._refining = true;
      u.setData([w.x].concat(w.series.map((s) => s.y)), false);
      u.setScale("x", { min, max });
      u._refining = false;
      box.dataset.points = w.points;
      box.dataset.refined = (+box.dataset.refined || 0) + 1;
    }, 150);
  }
  function lineChart(parent, c, opts) {
    opts = opts || {};
    const box = el("div", { class: "chart", "data-chart": c.id, "data-points": c.points, "data-samples": c.samples });
    parent.append(box);
    const events = opts.events || [];
    box.dataset.events = events.length;
    const width = Math.max(360, (box.clientWidth || 560) - 10);
    const series = [{ label: c.x.length && c.id === "spectrum" ? "k" : "step" }].concat(
      c.series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length], width: 1.25, spanGaps: true, points: { show: c.x.length < 80 }, value: (u, v) => exact(v) }))
    );
    const uopts = {
      title: c.title + (c.samples > c.points ? ` (${c.points} of ${c.samples} samples: min/max per pixel)` : ""),
      width, height: opts.height || 240,
      scales: { x: { time: false }, y: c.log ? { distr: 3 } : {} },
      series,
      axes: [{}, { size: 64, values: (u, vals) => vals.map((v) => (v == null ? "" : c.log ? tick(v) : short(v))) }],
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      hooks: {
        draw: [(u) => drawOverlay(u, events, opts.marks)],
        setScale: [(u, key) => { if (key === "x" && opts.zoom && u._ready && !u._refining) refine(u, c, box); }],
      },
    };
    const u = new uPlot(uopts, [c.x].concat(c.series.map((s) => s.y)), box);
    u._ready = !EXPORT;
    box.uplot = u;
    return u;
  }

  // ------------------------------------------------------------------ events
  function eventsSection(p) {
    const evs = state.events;
    const counts = {};
    for (const e of evs) counts[e.kind] = (counts[e.kind] || 0) + 1;
    const kinds = el("div", { class: "kinds" });
    for (const k of Object.keys(KIND_COLOR)) {
      kinds.append(el("span", { class: "kind-count", "data-kind": k }, el("span", { class: "swatch", style: `background:${KIND_COLOR[k]}` }), `${k}: ${counts[k] || 0}`));
    }
    const rows = [...new Set(evs.map((e) => e.series))];
    const steps = evs.flatMap((e) => [e.start_step, e.end_step]);
    const lo = Math.min(...steps, 0), hi = Math.max(...steps, 1);
    const W = 1000, left = 130, rowH = 18, H = rows.length * rowH + 24;
    const g = svg("svg", { id: "events-timeline", viewBox: `0 0 ${W} ${H}`, height: H });
    const xOf = (s) => left + ((s - lo) / (hi - lo || 1)) * (W - left - 10);
    rows.forEach((r, i) => {
      const t = svg("text", { x: 4, y: i * rowH + 14 });
      t.textContent = r;
      g.append(t);
    });
    let drawn = 0;
    for (const e of evs.slice(0, MAX_MARKERS)) {
      const y = rows.indexOf(e.series) * rowH + 10;
      const line = svg("line", { x1: xOf(e.start_step), x2: xOf(e.end_step), y1: y, y2: y, stroke: KIND_COLOR[e.kind] || "#000", "stroke-opacity": 0.25 });
      const dot = svg("circle", { class: "event", "data-kind": e.kind, "data-series": e.series, cx: xOf(e.at_step), cy: y, r: 3, fill: KIND_COLOR[e.kind] || "#000", "fill-opacity": 0.6 });
      const title = svg("title");
      title.textContent = `${e.kind} in ${e.series} ${JSON.stringify(e.index)}: ${e.start_step} → ${e.at_step} → ${e.end_step}` + (e.height != null ? `, height ${e.height}` : "");
      dot.append(title);
      g.append(line, dot);
      drawn++;
    }
    for (const s of [lo, hi]) {
      const t = svg("text", { x: xOf(s), y: H - 4, "text-anchor": s === lo ? "start" : "end" });
      t.textContent = `step ${s}`;
      g.append(t);
    }
    document.body.dataset.events = drawn;
    const table = el("table", { id: "events-table" }, el("tr", {}, ...["kind", "series", "index", "start", "peak / steepest", "end", "height"].map((h) => el("th", { text: h }))));
    for (const e of evs.slice(0, 100)) {
      table.append(el("tr", { class: "event-row", "data-kind": e.kind }, el("td", { text: e.kind }), el("td", { text: e.series }), el("td", { text: JSON.stringify(e.index) }),
        el("td", { class: "num", text: e.start_step }), el("td", { class: "num", text: e.at_step }), el("td", { class: "num", text: e.end_step }), el("td", { class: "num", text: exact(e.height) })));
    }
    const more = evs.length > 100 ? el("p", { class: "note", text: `first 100 of ${evs.length} events listed; ${Math.min(evs.length, MAX_MARKERS)} drawn` }) : null;
    const waiting = state.eventsLoaded ? "" : " (detecting the unit families…)";
    return section("events", `Detected events (${evs.length})${waiting}`, kinds, evs.length ? g : el("p", { class: "note", text: state.eventsLoaded ? "no events detected" : "detecting…" }), evs.length ? el("details", {}, el("summary", { text: "event table" }), table, more) : null);
  }

  // ------------------------------------------------------------------ heat maps
  function colour(t) { // t in [0, 1] -> a viridis-like RGB
    const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
    t = Math.min(1, Math.max(0, t)) * (stops.length - 1);
    const i = Math.min(stops.length - 2, Math.floor(t)), f = t - i;
    return stops[i].map((a, j) => Math.round(a + f * (stops[i + 1][j] - a)));
  }
  // values[c][r] drawn with column c across, row r down; cell (cw x rh) pixels
  function heatCanvas(values, cw, rh, opts) {
    const C = values.length, R = C ? values[0].length : 0;
    const cv = el("canvas", { width: C * cw, height: R * rh });
    const ctx = cv.getContext("2d");
    let lo = Infinity, hi = -Infinity;
    const f = opts.log ? (v) => Math.log10(Math.max(v, 1e-12)) : (v) => v;
    for (const col of values) for (const v of col) if (v != null) { const x = f(v); if (x < lo) lo = x; if (x > hi) hi = x; }
    if (opts.range) [lo, hi] = opts.range;
    const img = ctx.createImageData(C * cw, R * rh);
    for (let c = 0; c < C; c++) for (let r = 0; r < R; r++) {
      const v = values[c][r];
      const rgb = v == null ? [255, 255, 255] : colour((f(v) - lo) / (hi - lo || 1));
      for (let dy = 0; dy < rh; dy++) for (let dx = 0; dx < cw; dx++) {
        const o = 4 * ((r * rh + dy) * C * cw + c * cw + dx);
        img.data[o] = rgb[0]; img.data[o + 1] = rgb[1]; img.data[o + 2] = rgb[2]; img.data[o + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
    cv.addEventListener("mousemove", (ev) => {
      const b = cv.getBoundingClientRect();
      const c = Math.floor(((ev.clientX - b.left) / b.width) * C), r = Math.floor(((ev.clientY - b.top) / b.height) * R);
      if (c >= 0 && c < C && r >= 0 && r < R) showTip(ev, opts.label(c, r, values[c][r]));
    });
    cv.addEventListener("mouseleave", hideTip);
    return cv;
  }
  function wavetable(m, key, title) {
    const wt = m.wavetable, cols = wt[key], F = m.freqs;
    if (!cols) return null;
    const C = cols.length;
    const cw = Math.max(1, Math.floor(900 / C)), rh = Math.max(3, Math.floor(280 / F));
    // rows: frequency k = 1 at the top
    const cv = heatCanvas(cols, cw, rh, { log: true, label: (c, r, v) => `epoch ${wt.steps[c]}, k=${r + 1}: ${exact(v)}` });
    const box = el("div", { class: "heat wavetable", id: `wavetable-${key}`, "data-key": key }, cv);
    const W = C * cw, H = F * rh;
    const xOf = (step) => { // step -> pixel, interpolated over the shown records
      const s = wt.steps; if (!s.length) return 0;
      if (step <= s[0]) return 0; if (step >= s[C - 1]) return W;
      let i = 1; while (s[i] < step) i++;
      return (i - 1 + (step - s[i - 1]) / (s[i] - s[i - 1] || 1)) * cw + cw / 2;
    };
    const keys = new Set(m.key_freqs);
    const every = Math.max(1, Math.ceil(F / 14));
    for (let k = 1; k <= F; k++) {
      if (!keys.has(k) && (k - 1) % every !== 0) continue;
      box.append(el("span", { class: "ylabel" + (keys.has(k) ? " key-freq" : ""), style: `top:${(k - 0.5) * rh}px`, "data-k": k, text: keys.has(k) ? `key ${k}` : `k=${k}` }));
    }
    const ph = m.phases || {}, s0 = wt.steps[0] || 0, s1 = wt.steps[C - 1] || 0;
    const bounds = [["memorisation", s0, ph.memorisation_end], ["circuit", ph.memorisation_end, ph.cleanup_start], ["cleanup", ph.cleanup_start, ph.cleanup_end], ["after", ph.cleanup_end, s1]];
    for (const [name, a, b] of bounds) {
      if (a == null) continue;
      const x0 = xOf(a), x1 = xOf(b == null ? s1 : b);
      if (x1 <= x0) continue;
      box.append(el("div", { class: "phase", "data-phase": name, style: `left:${x0}px;width:${x1 - x0}px;background:${PHASE_COLOR[name]}` }, el("span", { text: name })));
    }
    for (const s of [s0, s1]) box.append(el("span", { class: "xlabel", style: `left:${xOf(s)}px`, text: `epoch ${s}` }));
    const ctx = cv.getContext("2d");
    const evs = state.events.filter((e) => e.series === key);
    for (const e of evs) {
      const k = (e.index || [])[0] + 1;
      ctx.strokeStyle = KIND_COLOR[e.kind] || "#fff";
      ctx.lineWidth = 2;
      ctx.beginPath(); ctx.arc(xOf(e.at_step), (k - 0.5) * rh, Math.max(3, rh / 2), 0, 2 * Math.PI); ctx.stroke();
    }
    box.dataset.events = evs.length;
    return el("div", {}, el("div", { class: "wavetitle", text: `${title}: frequency (rows, k = 1 at the top) × epoch, log colour; key frequencies in red; ${evs.length} events circled` }), box);
  }
  async function recordData(i) {
    if (EXPORT) {
      const have = Object.keys(EXPORT.records).map(Number);
      const best = have.reduce((a, b) => (Math.abs(b - i) < Math.abs(a - i) ? b : a), have[0]);
      return EXPORT.records[String(best)];
    }
    return api("/api/record", { file: FILE, i });
  }
  async function showRecord(m, i) {
    const out = document.getElementById("record-view");
    const label = document.getElementById("record-label");
    let r;
    try { r = await recordData(i); } catch (e) { out.replaceChildren(el("p", { class: "error", text: e.message })); return; }
    if (!r) return;
    label.textContent = `record ${r.record} of ${m.records}: epoch ${r.step}`;
    const F = m.freqs, ks = Array.from({ length: F }, (_, j) => j + 1);
    const spec = { id: "spectrum", title: `spectrum at epoch ${r.step}`, log: true, keys: ["freq_norm", "freq_norm_wl"], x: ks,
      series: [{ label: "W_E freq_norm", y: r.freq_norm }, { label: "W_L freq_norm_wl", y: r.freq_norm_wl }].filter((s) => s.y), points: F, samples: F };
    const kids = [];
    const specBox = el("div", { id: "spectrum" });
    kids.push(specBox);
    if (r.neuron_freq) {
      const nf = r.neuron_freq; // [neuron][freq]
      let order = nf.map((_, n) => n);
      if (state.sortNeurons) {
        const best = nf.map((row) => row.indexOf(Math.max(...row)));
        order.sort((a, b) => best[a] - best[b] || nf[b][best[b]] - nf[a][best[a]]);
      }
      const cols = order.map((n) => nf[n]); // columns are neurons, rows frequencies
      const cw = Math.max(1, Math.floor(1000 / cols.length)), rh = Math.max(3, Math.floor(240 / F));
      const cv = heatCanvas(cols, cw, rh, { range: [0, 1], label: (c, k, v) => `neuron ${order[c]}, k=${k + 1}: ${exact(v)} of its variance` });
      const nstep = r.neuron_step ?? r.step; // the table has its own cadence: the latest at or before r.step
      const box = el("div", { class: "heat", id: "neuron-table", "data-neurons": cols.length, "data-step": nstep }, cv);
      const keys = new Set(m.key_freqs);
      for (const k of m.key_freqs) box.append(el("span", { class: "ylabel key-freq", style: `top:${(k - 0.5) * rh}px`, text: `key ${k}` }));
      for (const k of [1, F]) if (!keys.has(k)) box.append(el("span", { class: "ylabel", style: `top:${(k - 0.5) * rh}px`, text: `k=${k}` }));
      kids.push(el("div", { class: "wavetitle", text: `neuron × frequency table at epoch ${nstep}: fraction of each neuron's variance per frequency (0–1)` + (state.sortNeurons ? ", neurons sorted by best frequency" : "") }), box);
    }
    out.replaceChildren(...kids);
    lineChart(specBox, spec, { height: 200 });
    document.body.dataset.recordStep = r.step;
  }
  function modaddSection(m) {
    const wave = section("wavetable", "Wavetable", el("p", { class: "note", text: `p = ${m.p}; key frequencies ${JSON.stringify(m.key_freqs)} (official rule ${JSON.stringify(m.key_freqs_official)}); grok epoch ${m.grok_epoch}; phases: ${Object.entries(m.phases).map(([k, v]) => `${k} ${v}`).join(", ") || "not found"}` }),
      wavetable(m, "freq_norm", "W_E frequency norms (freq_norm)"), wavetable(m, "freq_norm_wl", "W_L frequency norms (freq_norm_wl)"));
    if (state.record == null || state.followLast || state.record >= m.records) state.record = m.records - 1;
    const slider = el("input", { type: "range", id: "record-slider", min: 0, max: m.records - 1, value: state.record, step: 1 });
    let timer = null;
    slider.addEventListener("input", () => {
      state.record = +slider.value;
      state.followLast = state.record === m.records - 1;
      clearTimeout(timer);
      timer = setTimeout(() => showRecord(m, state.record), 60);
    });
    const sort = el("input", { type: "checkbox", id: "sort-neurons" });
    sort.checked = state.sortNeurons;
    sort.addEventListener("change", () => { state.sortNeurons = sort.checked; showRecord(m, state.record); });
    const rec = section("records", "Spectrum and neurons at one record",
      el("div", { id: "record-controls" }, slider, el("span", { id: "record-label" }), el("label", {}, sort, " sort neurons")),
      EXPORT ? el("p", { class: "note", text: `exported page: the slider steps over ${Object.keys(EXPORT.records).length} of the ${m.records} records` }) : null,
      el("div", { id: "record-view" }));
    setTimeout(() => showRecord(m, state.record), 0);
    return [wave, rec];
  }

  // ------------------------------------------------------------------ toy model
  async function seedData(s) {
    if (s === 0 && state.page.lowrank.first) return state.page.lowrank.first;
    if (EXPORT) return EXPORT.seeds[String(s)];
    return api("/api/seed", { file: FILE, s });
  }
  async function showSeed(s) {
    const box = document.getElementById("seed-view");
    let d;
    try { d = await seedData(s); } catch (e) { box.replaceChildren(el("p", { class: "error", text: e.message })); return; }
    const left = el("div", { id: "per-unit" }, el("h3", { text: "per unit (depends on the basis the units are in)" }));
    const right = el("div", { id: "invariant" }, el("h3", { text: "frame-invariant" }));
    box.replaceChildren(el("div", { class: "side-by-side" }, left, right));
    for (const c of d.per_unit) lineChart(left, c, { events: eventsFor(c, s), height: 220 });
    for (const c of d.invariant) lineChart(right, c, { events: eventsFor(c, s), height: 220 });
    document.body.dataset.seed = s;
  }
  function lowrankSection(l) {
    const pick = el("select", { id: "seed-select" });
    for (let s = 0; s < (EXPORT ? Math.min(l.seeds, Object.keys(EXPORT.seeds).length) : l.seeds); s++) pick.append(el("option", { value: s, text: `seed ${s}` }));
    if (state.seed >= l.seeds) state.seed = 0;
    pick.value = state.seed;
    pick.addEventListener("change", () => { state.seed = +pick.value; showSeed(state.seed); });
    setTimeout(() => showSeed(state.seed), 0);
    return section("seeds", `Inner products with truth, per seed (${l.seeds} seeds, rank ${l.rank}, ${l.learned} learned units)`, el("label", {}, "seed ", pick), el("div", { id: "seed-view" }));
  }

  // ------------------------------------------------------------------ pages
  function renderRun(p) {
    document.getElementById("meta").textContent = `${p.name} · ${p.kind} run · ${p.status} (${p.detail}) · ${p.records} records`;
    document.body.dataset.records = p.records;
    document.body.dataset.kind = p.kind;
    const list = el("ul", { id: "series-list" });
    for (const c of p.charts) for (const k of c.keys) list.append(el("li", { "data-key": k, text: k }));
    for (const k of p.families) list.append(el("li", { "data-key": k, class: "family", text: `${k} (curve family)` }));
    const charts = el("div", { class: "charts" });
    const parts = [section("series", "Recorded series", list), eventsSection(p), section("scalars", "Scalar series (drag to zoom, double-click to reset; hover for exact values)", charts)];
    if (p.modadd) parts.push(...modaddSection(p.modadd));
    if (p.lowrank) parts.push(lowrankSection(p.lowrank));
    if (!state.single && !EXPORT) parts.unshift(el("p", {}, el("a", { href: "./", text: "← the folder" })));
    app.replaceChildren(...parts);
    for (const c of p.charts) lineChart(charts, c, { events: eventsFor(c, null), zoom: true });
  }
  function cell(v, cls) { return el("td", { class: cls || "", text: v == null ? "—" : String(v) }); }
  function renderFolder(p) {
    const counts = {};
    for (const r of p.runs) counts[r.status] = (counts[r.status] || 0) + 1;
    document.getElementById("meta").textContent = `${p.name} · folder of ${p.runs.length} runs · ` + Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(", ");
    document.body.dataset.runs = p.runs.length;
    const parts = [];
    const over = el("div", { class: "charts" });
    parts.push(section("overlays", "Every run overlaid (dashed: grok epochs)", over));
    const table = el("table", { id: "run-table" }, el("tr", {}, ...["run", "kind", "status", "records", "grok epoch", "final test acc", "final loss"].map((h) => el("th", { text: h }))));
    for (const r of p.runs) {
      const name = EXPORT ? r.file : el("a", { href: "?file=" + encodeURIComponent(r.file), text: r.file });
      table.append(el("tr", { class: "run-row", "data-file": r.file, "data-status": r.status }, el("td", {}, name), cell(r.kind), cell(`${r.status} (${r.detail})`, "status-" + r.status.replace(" ", "-")),
        cell(r.records, "num"), cell(r.grok_epoch, "num"), cell(r.final_test_acc == null ? null : short(r.final_test_acc), "num"), cell(r.final_loss == null ? null : short(r.final_loss), "num")));
    }
    parts.push(section("runs", "Runs", table));
    if (p.skipped.length) parts.push(section("skipped", "Not runs", el("ul", {}, ...p.skipped.map((s) => el("li", { text: `${s.file}: ${s.reason}` })))));
    if (p.sweep) {
      const sw = p.sweep;
      const t = el("table", { id: "sweep-table" }, el("tr", {}, ...["id", "grid", "status", "summary / error"].map((h) => el("th", { text: h }))));
      for (const r of sw.runs) {
        const grid = Object.entries(r.grid || {}).map(([k, v]) => `${k}=${v}`).join(" ");
        const what = r.error || (r.summary ? JSON.stringify(r.summary) : "") || r.note || (r.progress ? JSON.stringify(r.progress) : "");
        t.append(el("tr", { class: "sweep-row", "data-status": r.status }, cell(r.id), cell(grid), cell(r.status, "status-" + r.status), cell(what)));
      }
      parts.push(section("sweep", `Sweep: ${sw.command} · ` + Object.entries(sw.counts).map(([k, v]) => `${v} ${k}`).join(", ") + (sw.updated ? ` · manifest ${sw.updated}` : ""), t));
    }
    app.replaceChildren(...parts);
    for (const c of p.overlays) lineChart(over, c, { marks: c.marks, height: 300 });
  }
  function render() {
    const p = state.page;
    try {
      if (p.view === "folder") renderFolder(p);
      else renderRun(p);
    } catch (e) { fail("could not draw the page: " + e.message); throw e; }
    document.body.dataset.updates = state.updates;
    document.body.dataset.ready = "1";
  }
  // events in two parts: the curves (fast), then the unit families (many curves: slow on big runs)
  async function loadEvents() {
    const version = state.version;
    let all = [];
    for (const group of ["curves", "units"]) {
      try { all = all.concat((await api("/api/events", { file: FILE, group })).events); }
      catch (e) { document.body.dataset.eventsError = e.message; }
      if (version !== state.version) return; // a newer file arrived meanwhile: its own loadEvents draws
      state.events = all;
      state.eventsLoaded = group === "units";
      render();
      document.body.dataset.eventsPart = group;
    }
    document.body.dataset.eventsReady = "1";
  }
  async function refresh() {
    state.page = await api("/api/page", FILE ? { file: FILE } : {});
    state.single = state.page.view === "run" && !FILE;
    render();
    if (state.page.view === "run") await loadEvents();
  }
  async function poll() {
    try {
      const v = (await api("/api/version")).version;
      if (v === state.version) return;
      state.version = v;
      state.updates++;
      await refresh();
      document.getElementById("live").textContent = `live · updated ${new Date().toLocaleTimeString()}`;
    } catch (e) { document.getElementById("live").textContent = "live · " + e.message; }
  }
  async function main() {
    if (EXPORT) {
      state.page = EXPORT.page; state.events = EXPORT.events; state.eventsLoaded = true; state.single = true;
      const live = document.getElementById("live");
      live.textContent = "exported page (static)"; live.className = "static";
      render();
      document.body.dataset.eventsReady = "1";
      return;
    }
    try {
      state.version = (await api("/api/version")).version;
      await refresh();
    } catch (e) { fail(e.message); return; }
    setInterval(poll, 1500);
  }
  main();
})();
