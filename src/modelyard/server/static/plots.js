/* modelyard dashboard plots: small SVG charts drawn in plain JS (no libraries, works offline).
 * Every chart returns an <svg class="plot" data-kind=... data-points=N> so tests and users can
 * see what was drawn. Values that are null/NaN are skipped, never drawn at 0. */
"use strict";

const Plots = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"];
  const STATE_COLORS = { complete: "#2563eb", pruned: "#dc2626", failed: "#6b7280", running: "#d97706" };

  function el(tag, attrs, parent) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) e.setAttribute(k, v);
    if (parent) parent.appendChild(e);
    return e;
  }
  function text(parent, x, y, s, attrs) {
    const t = el("text", Object.assign({ x, y }, attrs || {}), parent);
    t.textContent = s;
    return t;
  }
  function finite(v) { return typeof v === "number" && Number.isFinite(v); }

  function fmt(v) {
    if (!finite(v)) return String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
    if (Number.isInteger(v)) return String(v);
    return v.toPrecision(4).replace(/\.?0+$/, "");
  }

  function extent(values, log) {
    let lo = Infinity, hi = -Infinity;
    for (const v of values) if (finite(v) && (!log || v > 0)) { if (v < lo) lo = v; if (v > hi) hi = v; }
    if (lo === Infinity) return [0, 1];
    if (lo === hi) { const d = log ? lo : Math.abs(lo) * 0.1 || 1; return log ? [lo / 2, hi * 2] : [lo - d, hi + d]; }
    return [lo, hi];
  }

  /* A scale maps a domain to a pixel range; log scales work in log10. */
  function scale(domain, range, log) {
    const f = log ? Math.log10 : (x) => x;
    const d0 = f(domain[0]), d1 = f(domain[1]);
    const s = (v) => range[0] + ((f(v) - d0) / (d1 - d0 || 1)) * (range[1] - range[0]);
    s.ticks = (n) => {
      if (log) {
        const out = [];
        for (let e = Math.floor(d0); e <= Math.ceil(d1); e++) { const t = Math.pow(10, e); if (t >= domain[0] && t <= domain[1]) out.push(t); }
        return out.length >= 2 ? out : [domain[0], domain[1]];
      }
      const span = domain[1] - domain[0];
      const step0 = Math.pow(10, Math.floor(Math.log10(span / n)));
      const step = [1, 2, 5, 10].map((m) => m * step0).find((s2) => span / s2 <= n) || step0 * 10;
      const out = [];
      for (let t = Math.ceil(domain[0] / step) * step; t <= domain[1] + step * 1e-9; t += step) out.push(+t.toPrecision(12));
      return out;
    };
    return s;
  }

  function frame(opts) {
    const width = opts.width || 640, height = opts.height || 320;
    const m = Object.assign({ top: 16, right: 16, bottom: 40, left: 64 }, opts.margin || {});
    const svg = el("svg", { class: "plot", viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img",
      "data-kind": opts.kind, preserveAspectRatio: "xMinYMin meet" });
    if (opts.title) el("title", {}, svg).textContent = opts.title;
    return { svg, width, height, m, iw: width - m.left - m.right, ih: height - m.top - m.bottom };
  }

  function axes(f, xs, ys, xLabel, yLabel) {
    const g = el("g", { class: "axes" }, f.svg);
    const y0 = f.m.top + f.ih, x0 = f.m.left;
    el("line", { x1: x0, y1: y0, x2: x0 + f.iw, y2: y0, class: "axis" }, g);
    el("line", { x1: x0, y1: f.m.top, x2: x0, y2: y0, class: "axis" }, g);
    for (const t of xs.ticks(6)) {
      const x = xs(t);
      el("line", { x1: x, y1: y0, x2: x, y2: y0 + 4, class: "axis" }, g);
      text(g, x, y0 + 16, fmt(t), { "text-anchor": "middle", class: "tick" });
    }
    for (const t of ys.ticks(5)) {
      const y = ys(t);
      el("line", { x1: x0 - 4, y1: y, x2: x0 + f.iw, y2: y, class: "grid" }, g);
      text(g, x0 - 7, y + 4, fmt(t), { "text-anchor": "end", class: "tick" });
    }
    if (xLabel) text(g, x0 + f.iw / 2, f.height - 6, xLabel, { "text-anchor": "middle", class: "label" });
    if (yLabel) text(g, 12, f.m.top + f.ih / 2, yLabel, { "text-anchor": "middle", class: "label",
      transform: `rotate(-90 12 ${f.m.top + f.ih / 2})` });
  }

  function legend(f, items) {
    const g = el("g", { class: "legend" }, f.svg);
    let x = f.m.left + 8;
    for (const it of items) {
      el("rect", { x, y: f.m.top + 2, width: 10, height: 10, fill: it.color }, g);
      const t = text(g, x + 14, f.m.top + 11, it.label, { class: "tick" });
      x += 24 + 7 * it.label.length;
      void t;
    }
  }

  function empty(kind, message) {
    const f = frame({ kind, height: 80 });
    text(f.svg, f.width / 2, 44, message, { "text-anchor": "middle", class: "empty" });
    f.svg.setAttribute("data-points", "0");
    return f.svg;
  }

  function path(points) {
    let d = "";
    for (const [x, y] of points) d += (d ? "L" : "M") + x.toFixed(1) + "," + y.toFixed(1);
    return d;
  }

  /* Optimization history: one dot per trial (coloured by state) and the best-so-far staircase. */
  function history(data, opts) {
    opts = opts || {};
    const pts = data.points.filter((p) => finite(p.value));
    if (!pts.length) return empty("history", "no finished trial yet");
    const log = !!opts.logY && pts.every((p) => p.value > 0);
    const f = frame({ kind: "history", title: "optimization history" });
    const nums = pts.map((p) => p.number).concat(data.best.map((b) => b.number));
    const xs = scale(extent(nums), [f.m.left, f.m.left + f.iw]);
    const ys = scale(extent(pts.map((p) => p.value), log), [f.m.top + f.ih, f.m.top], log);
    axes(f, xs, ys, "trial", "value" + (log ? " (log)" : ""));
    const g = el("g", { class: "dots" }, f.svg);
    for (const p of pts) {
      const c = el("circle", { cx: xs(p.number).toFixed(1), cy: ys(p.value).toFixed(1), r: 2.6,
        fill: STATE_COLORS[p.state] || "#2563eb", "fill-opacity": 0.7, class: "pt" }, g);
      el("title", {}, c).textContent = `trial ${p.number}: ${fmt(p.value)} (${p.state})`;
    }
    if (data.best.length) {
      const stair = [];
      const last = Math.max(...nums);
      data.best.forEach((b, i) => {
        if (i > 0) stair.push([xs(b.number), ys(data.best[i - 1].value)]);
        stair.push([xs(b.number), ys(b.value)]);
      });
      stair.push([xs(last), ys(data.best[data.best.length - 1].value)]);
      el("path", { d: path(stair), class: "best", fill: "none", stroke: "#16a34a", "stroke-width": 2 }, f.svg);
    }
    legend(f, [{ label: "complete", color: STATE_COLORS.complete }, { label: "best so far", color: "#16a34a" }]);
    f.svg.setAttribute("data-points", String(pts.length));
    return f.svg;
  }

  /* Parallel coordinates: one vertical axis per parameter plus the objective; one polyline per trial,
   * coloured from good (dark) to bad (light). Categorical axes space their choices evenly. */
  function parallel(data, opts) {
    opts = opts || {};
    const rows = data.rows.filter((r) => finite(r.value));
    if (!rows.length || !data.params.length) return empty("parallel", "no completed trial with parameters yet");
    const axesSpec = data.params.concat([{ name: "value", type: "float", log: false }]);
    const f = frame({ kind: "parallel", title: "parallel coordinates", height: 340, margin: { top: 28, bottom: 28, left: 40, right: 40 } });
    const step = f.iw / Math.max(1, axesSpec.length - 1);
    const scales = axesSpec.map((a, i) => {
      const x = f.m.left + i * step;
      const vals = rows.map((r) => (a.name === "value" ? r.value : r.params[a.name]));
      if (a.type === "categorical" || vals.some((v) => typeof v === "string" || typeof v === "boolean")) {
        const choices = a.choices ? a.choices.map(String) : [...new Set(vals.map(String))].sort();
        const sy = (v) => f.m.top + f.ih - (choices.indexOf(String(v)) + 0.5) * (f.ih / choices.length);
        return { x, y: sy, ticks: choices.map((c) => [c, sy(c)]) };
      }
      const log = !!a.log && vals.every((v) => !finite(v) || v > 0);
      const s = scale(extent(vals, log), [f.m.top + f.ih, f.m.top], log);
      return { x, y: s, ticks: s.ticks(4).map((t) => [fmt(t), s(t)]) };
    });
    const [vlo, vhi] = extent(rows.map((r) => r.value));
    const better = data.direction === "maximize" ? (v) => (v - vlo) / (vhi - vlo || 1) : (v) => (vhi - v) / (vhi - vlo || 1);
    const lines = el("g", { class: "lines" }, f.svg);
    const ordered = rows.slice().sort((a, b) => better(a.value) - better(b.value)); // best drawn last, on top
    for (const r of ordered) {
      const pts = [];
      let ok = true;
      axesSpec.forEach((a, i) => {
        const v = a.name === "value" ? r.value : r.params[a.name];
        if (v === undefined || v === null) { ok = false; return; }
        pts.push([scales[i].x, scales[i].y(v)]);
      });
      if (!ok || pts.some((p) => !finite(p[1]))) continue;
      const t = better(r.value);
      const light = Math.round(85 - 55 * t);
      const line = el("path", { d: path(pts), fill: "none", stroke: `hsl(221, 83%, ${light}%)`, "stroke-opacity": 0.35 + 0.6 * t,
        "stroke-width": 1.2, class: "pc-line" }, lines);
      el("title", {}, line).textContent = `trial ${r.number}: value ${fmt(r.value)}`;
    }
    const ag = el("g", { class: "axes" }, f.svg);
    axesSpec.forEach((a, i) => {
      const s = scales[i];
      el("line", { x1: s.x, y1: f.m.top, x2: s.x, y2: f.m.top + f.ih, class: "axis" }, ag);
      text(ag, s.x, f.m.top - 10, a.name, { "text-anchor": "middle", class: "label" });
      for (const [lab, y] of s.ticks) {
        el("line", { x1: s.x - 3, y1: y, x2: s.x + 3, y2: y, class: "axis" }, ag);
        text(ag, s.x + 5, y + 4, lab.length > 10 ? lab.slice(0, 9) + "…" : lab, { class: "tick" });
      }
    });
    f.svg.setAttribute("data-points", String(lines.childNodes.length));
    return f.svg;
  }

  /* Intermediate values per step: completed trials in blue, pruned in red. */
  function curves(data, opts) {
    opts = opts || {};
    const trials = data.trials.filter((t) => t.steps.length);
    if (!trials.length) return empty("curves", "no intermediate values reported yet");
    const allSteps = [], allVals = [];
    for (const t of trials) for (const [s, v] of t.steps) if (finite(v)) { allSteps.push(s); allVals.push(v); }
    const log = !!opts.logY && allVals.every((v) => v > 0);
    const f = frame({ kind: "curves", title: "intermediate values" });
    const xs = scale(extent(allSteps), [f.m.left, f.m.left + f.iw]);
    const ys = scale(extent(allVals, log), [f.m.top + f.ih, f.m.top], log);
    axes(f, xs, ys, "step", "intermediate value");
    const g = el("g", { class: "lines" }, f.svg);
    const order = { pruned: 0, failed: 0, running: 1, complete: 2 };
    for (const t of trials.slice().sort((a, b) => (order[a.state] || 0) - (order[b.state] || 0))) {
      const pts = t.steps.filter((p) => finite(p[1])).map(([s, v]) => [xs(s), ys(v)]);
      const line = el("path", { d: path(pts), fill: "none", stroke: STATE_COLORS[t.state] || "#4b5563",
        "stroke-opacity": 0.55, "stroke-width": 1.3, class: "curve", "data-state": t.state }, g);
      el("title", {}, line).textContent = `trial ${t.number} (${t.state})`;
    }
    legend(f, [{ label: "completed", color: STATE_COLORS.complete }, { label: "pruned", color: STATE_COLORS.pruned },
      { label: "running", color: STATE_COLORS.running }]);
    f.svg.setAttribute("data-points", String(g.childNodes.length));
    return f.svg;
  }

  /* Generic line chart: series = [{label, points: [[x, y], ...]}]. */
  function lines(series, opts) {
    opts = opts || {};
    const withData = series.filter((s) => s.points.some((p) => finite(p[1])));
    if (!withData.length) return empty(opts.kind || "lines", opts.emptyText || "nothing recorded");
    const f = frame({ kind: opts.kind || "lines", title: opts.title, height: opts.height || 280 });
    const xsv = [], ysv = [];
    for (const s of withData) for (const [x, y] of s.points) if (finite(y)) { xsv.push(x); ysv.push(y); }
    const xs = scale(extent(xsv), [f.m.left, f.m.left + f.iw]);
    const ys = scale(extent(ysv), [f.m.top + f.ih, f.m.top]);
    axes(f, xs, ys, opts.xLabel, opts.yLabel);
    const g = el("g", { class: "lines" }, f.svg);
    let n = 0;
    withData.forEach((s, i) => {
      const pts = s.points.filter((p) => finite(p[1])).map(([x, y]) => [xs(x), ys(y)]);
      const color = s.color || PALETTE[i % PALETTE.length];
      el("path", { d: path(pts), fill: "none", stroke: color, "stroke-width": 2, class: "series" }, g);
      for (const [x, y] of pts) { el("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: 2, fill: color, class: "pt" }, g); n++; }
      if (opts.mark && s.mark !== undefined && s.mark !== null) {
        const x = xs(s.mark);
        el("line", { x1: x, y1: f.m.top, x2: x, y2: f.m.top + f.ih, stroke: "#9ca3af", "stroke-dasharray": "4 3" }, g);
      }
    });
    legend(f, withData.map((s, i) => ({ label: s.label, color: s.color || PALETTE[i % PALETTE.length] })));
    f.svg.setAttribute("data-points", String(n));
    return f.svg;
  }

  /* Horizontal bars with optional intervals: items = [{label, value, lo, hi, color}]. */
  function bars(items, opts) {
    opts = opts || {};
    const rows = items.filter((it) => finite(it.value));
    if (!rows.length) return empty(opts.kind || "bars", opts.emptyText || "nothing to show");
    const rowH = 26;
    const f = frame({ kind: opts.kind || "bars", title: opts.title, height: 40 + rowH * rows.length,
      margin: { top: 8, bottom: 32, left: 150, right: 24 } });
    const vals = rows.flatMap((r) => [r.value, r.lo, r.hi]).filter(finite);
    if (opts.zero !== false) vals.push(0);
    const dom = extent(vals);
    const xs = scale(dom, [f.m.left, f.m.left + f.iw]);
    const g = el("g", { class: "bars" }, f.svg);
    for (const t of xs.ticks(5)) {
      el("line", { x1: xs(t), y1: f.m.top, x2: xs(t), y2: f.m.top + f.ih, class: "grid" }, g);
      text(g, xs(t), f.m.top + f.ih + 16, fmt(t), { "text-anchor": "middle", class: "tick" });
    }
    const zero = xs(Math.min(Math.max(0, dom[0]), dom[1]));
    rows.forEach((r, i) => {
      const y = f.m.top + i * rowH + 4;
      const x = xs(r.value);
      el("rect", { x: Math.min(x, zero), y, width: Math.max(1, Math.abs(x - zero)), height: rowH - 10,
        fill: r.color || PALETTE[i % PALETTE.length], class: "bar" }, g);
      if (finite(r.lo) && finite(r.hi)) {
        const cy = y + (rowH - 10) / 2;
        el("line", { x1: xs(r.lo), y1: cy, x2: xs(r.hi), y2: cy, stroke: "#111827", "stroke-width": 1.5, class: "ci" }, g);
        el("line", { x1: xs(r.lo), y1: cy - 5, x2: xs(r.lo), y2: cy + 5, stroke: "#111827" }, g);
        el("line", { x1: xs(r.hi), y1: cy - 5, x2: xs(r.hi), y2: cy + 5, stroke: "#111827" }, g);
      }
      text(g, f.m.left - 8, y + rowH / 2, r.label, { "text-anchor": "end", class: "tick" });
    });
    f.svg.setAttribute("data-points", String(rows.length));
    return f.svg;
  }

  /* Histogram of precomputed bins: {edges: [...n+1], counts: [...n]}, with optional vertical markers. */
  function histogram(h, opts) {
    opts = opts || {};
    if (!h || !h.counts || !h.counts.length) return empty("histogram", opts.emptyText || "no samples");
    const f = frame({ kind: "histogram", title: opts.title, height: 240 });
    const xs = scale([h.edges[0], h.edges[h.edges.length - 1]], [f.m.left, f.m.left + f.iw]);
    const ys = scale([0, Math.max(...h.counts) || 1], [f.m.top + f.ih, f.m.top]);
    axes(f, xs, ys, opts.xLabel, "count");
    const g = el("g", { class: "bars" }, f.svg);
    h.counts.forEach((c, i) => {
      const x0 = xs(h.edges[i]), x1 = xs(h.edges[i + 1]);
      el("rect", { x: x0, y: ys(c), width: Math.max(0.5, x1 - x0 - 0.5), height: f.m.top + f.ih - ys(c), fill: "#93c5fd", class: "bar" }, g);
    });
    for (const mk of opts.markers || []) {
      if (!finite(mk.x)) continue;
      const x = xs(mk.x);
      el("line", { x1: x, y1: f.m.top, x2: x, y2: f.m.top + f.ih, stroke: mk.color || "#dc2626", "stroke-width": 2 }, g);
      text(g, x + 4, f.m.top + 12, mk.label, { class: "tick" });
    }
    f.svg.setAttribute("data-points", String(h.counts.length));
    return f.svg;
  }

  /* Lineage DAG: nodes = [{id, label, sub, current}], edges = [{source, target, label}].
   * Layered layout: a node's layer is its longest path from a root; nodes in a layer are ordered by
   * the mean position of their parents (one sweep of the barycentre heuristic). */
  function dag(graph, opts) {
    opts = opts || {};
    const nodes = graph.nodes, edges = graph.edges;
    if (!nodes.length) return empty("lineage", "no lineage");
    const parents = new Map(nodes.map((n) => [n.id, []]));
    for (const e of edges) if (parents.has(e.target) && parents.has(e.source)) parents.get(e.target).push(e.source);
    const layer = new Map();
    const visiting = new Set();
    const depth = (id) => {
      if (layer.has(id)) return layer.get(id);
      if (visiting.has(id)) return 0; // cycles cannot happen in a registry, but never loop forever
      visiting.add(id);
      const ps = parents.get(id) || [];
      const d = ps.length ? 1 + Math.max(...ps.map(depth)) : 0;
      layer.set(id, d);
      return d;
    };
    nodes.forEach((n) => depth(n.id));
    const layers = [];
    for (const n of nodes) (layers[layer.get(n.id)] = layers[layer.get(n.id)] || []).push(n);
    const pos = new Map();
    layers.forEach((ls, li) => {
      if (li > 0) {
        const bary = (n) => { const ps = parents.get(n.id).filter((p) => pos.has(p)); return ps.length ? ps.reduce((a, p) => a + pos.get(p), 0) / ps.length : 0; };
        ls.sort((a, b) => bary(a) - bary(b));
      }
      ls.forEach((n, i) => pos.set(n.id, i));
    });
    const nodeW = 150, nodeH = 40, gapX = 120, gapY = 22;
    const maxRows = Math.max(...layers.map((l) => (l ? l.length : 0)));
    const width = Math.max(320, layers.length * (nodeW + gapX) - gapX + 40);
    const height = Math.max(120, maxRows * (nodeH + gapY) + 40);
    const svg = el("svg", { class: "plot", viewBox: `0 0 ${width} ${height}`, width: Math.min(width, 1400), "data-kind": "lineage" });
    el("title", {}, svg).textContent = "lineage";
    const defs = el("defs", {}, svg);
    const mk = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, defs);
    el("path", { d: "M0,0L10,5L0,10z", fill: "#6b7280" }, mk);
    const xy = (id) => {
      const li = layer.get(id), rows = layers[li].length;
      const top = (height - rows * (nodeH + gapY) + gapY) / 2;
      return [20 + li * (nodeW + gapX), top + pos.get(id) * (nodeH + gapY)];
    };
    const eg = el("g", { class: "edges" }, svg);
    for (const e of edges) {
      if (!layer.has(e.source) || !layer.has(e.target)) continue;
      const [sx, sy] = xy(e.source), [tx, ty] = xy(e.target);
      const x1 = sx + nodeW, y1 = sy + nodeH / 2, x2 = tx, y2 = ty + nodeH / 2;
      const mx = (x1 + x2) / 2;
      el("path", { d: `M${x1},${y1}C${mx},${y1} ${mx},${y2} ${x2},${y2}`, fill: "none", stroke: "#6b7280",
        "stroke-width": 1.5, "marker-end": "url(#arrow)", class: "edge" }, eg);
      if (e.label) {
        const t = text(eg, mx, (y1 + y2) / 2 - 5, e.label.length > 28 ? e.label.slice(0, 27) + "…" : e.label,
          { "text-anchor": "middle", class: "edge-label" });
        el("title", {}, t).textContent = e.label;
      }
    }
    const ng = el("g", { class: "nodes" }, svg);
    for (const n of nodes) {
      const [x, y] = xy(n.id);
      const a = el("a", { href: n.href || "#", class: "node" + (n.current ? " current" : ""), "data-id": n.id }, ng);
      el("rect", { x, y, width: nodeW, height: nodeH, rx: 6, class: "node-box" }, a);
      text(a, x + nodeW / 2, y + 17, n.label.length > 22 ? n.label.slice(0, 21) + "…" : n.label, { "text-anchor": "middle", class: "node-label" });
      if (n.sub) text(a, x + nodeW / 2, y + 32, n.sub, { "text-anchor": "middle", class: "node-sub" });
      el("title", {}, a).textContent = n.title || n.label;
    }
    svg.setAttribute("data-points", String(nodes.length));
    svg.setAttribute("data-edges", String(edges.length));
    return svg;
  }

  return { history, parallel, curves, lines, bars, histogram, dag, fmt, STATE_COLORS };
})();
