/* modelyard dashboard: a hash-routed single page over the REST API (/api/openapi.json).
 * DOM is built with createElement/textContent only (never innerHTML with data), so names and
 * values from the store cannot inject markup. Pages that change while a study runs poll the API. */
"use strict";

(() => {
  const view = document.getElementById("view");
  const statusEl = document.getElementById("status");
  let timers = [];
  let generation = 0; // bumps on every navigation; stale async renders check it and stop

  // ---------- helpers ----------
  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k === "class") e.className = v;
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) e.append(c instanceof Node ? c : String(c));
    return e;
  }
  const fmt = (v) => (v === null || v === undefined ? "–" : typeof v === "number" ? Plots.fmt(v) : String(v));
  const when = (iso) => (iso ? iso.replace("T", " ").replace(/\.\d+Z$/, "Z") : "–");
  const seg = (ref) => ref.split("/").map(encodeURIComponent).join("/");
  const vlink = (idOrRef, text) => h("a", { href: "#/versions/" + seg(idOrRef) }, text || idOrRef);

  function token() { return sessionStorage.getItem("modelyard-token"); }

  async function api(path, opts) {
    opts = Object.assign({ headers: {} }, opts || {});
    if (opts.json !== undefined) { opts.body = JSON.stringify(opts.json); opts.headers["Content-Type"] = "application/json"; }
    if (token()) opts.headers["Authorization"] = "Bearer " + token();
    let r = await fetch(path, opts);
    if (r.status === 401) {
      const t = window.prompt("This server needs its access token (see the ui-token file in the store folder):");
      if (t) { sessionStorage.setItem("modelyard-token", t.trim()); opts.headers["Authorization"] = "Bearer " + t.trim(); r = await fetch(path, opts); }
    }
    let body = null;
    try { body = await r.json(); } catch (_) { body = null; }
    if (!r.ok) throw new Error((body && body.error) || `${r.status} ${r.statusText}`);
    return body;
  }

  function poll(fn, ms) {
    const gen = generation;
    const id = setInterval(() => { if (gen === generation && !document.hidden) fn().catch((e) => setStatus("update failed: " + e.message)); }, ms);
    timers.push(id);
  }
  function setStatus(s) { statusEl.textContent = s; }
  function errorBox(e) { return h("div", { class: "error", role: "alert" }, e.message || String(e)); }

  function parseHash() {
    const raw = location.hash.replace(/^#/, "") || "/studies";
    const [path, qs] = raw.split("?");
    const params = new URLSearchParams(qs || "");
    return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), params, path };
  }
  function go(path, params) {
    const qs = params && [...params].length ? "?" + params.toString() : "";
    location.hash = "#" + path + qs;
  }

  function table(columns, rows, opts) {
    opts = opts || {};
    const thead = h("thead", {}, h("tr", {}, columns.map((c) => {
      const th = h("th", { class: (c.num ? "num " : "") + (c.sort ? "sortable" : "") }, c.label);
      if (c.sort && opts.onSort) th.addEventListener("click", () => opts.onSort(c.sort));
      if (c.sort && opts.sort && opts.sort.replace("-", "") === c.sort) th.append(opts.sort.startsWith("-") ? " ↓" : " ↑");
      return th;
    })));
    const tbody = h("tbody", {}, rows.map((r) => h("tr", { class: opts.rowClass ? opts.rowClass(r) : null },
      columns.map((c) => h("td", { class: c.num ? "num" : null }, c.cell(r))))));
    if (!rows.length) tbody.append(h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, opts.empty || "nothing here yet")));
    return h("table", { class: opts.class || null }, thead, tbody);
  }

  function pager(pageData, onOffset) {
    const { total, limit, offset, next_offset } = pageData;
    const from = total ? offset + 1 : 0, to = offset + pageData.items.length;
    return h("div", { class: "pager" },
      h("button", { class: "secondary", disabled: offset === 0, onclick: () => onOffset(Math.max(0, offset - limit)) }, "‹ prev"),
      h("span", {}, `${from}–${to} of ${total}`),
      h("button", { class: "secondary", disabled: next_offset === null, onclick: () => onOffset(next_offset) }, "next ›"));
  }

  function kv(obj) {
    return h("dl", { class: "kv" }, Object.entries(obj).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v instanceof Node ? v : fmt(v))]));
  }

  function withParams(params, changes) {
    const p = new URLSearchParams(params);
    for (const [k, v] of Object.entries(changes)) { if (v === null || v === "" || v === undefined) p.delete(k); else p.set(k, v); }
    return p;
  }

  // ---------- studies ----------
  async function studiesList(route) {
    const p = route.params;
    const offset = +p.get("offset") || 0, name = p.get("name") || "";
    const q = new URLSearchParams({ limit: 50, offset });
    if (name) q.set("name", name);
    const filter = h("input", { type: "search", placeholder: "filter by name", value: name, "aria-label": "filter studies" });
    filter.addEventListener("change", () => go("/studies", withParams(p, { name: filter.value, offset: null })));
    const holder = h("div");
    const render = async () => {
      const data = await api("/api/studies?" + q);
      holder.replaceChildren(table([
        { label: "study", cell: (s) => h("a", { href: "#/studies/" + encodeURIComponent(s.name) }, s.name) },
        { label: "direction", cell: (s) => s.direction },
        { label: "trials", num: true, cell: (s) => s.n_trials },
        { label: "complete", num: true, cell: (s) => s.counts.complete },
        { label: "pruned", num: true, cell: (s) => s.counts.pruned },
        { label: "failed", num: true, cell: (s) => s.counts.failed },
        { label: "running", num: true, cell: (s) => s.counts.running },
        { label: "best", num: true, cell: (s) => s.best_value === null ? "–" : `${fmt(s.best_value)} (#${s.best_number})` },
        { label: "optimizer", cell: (s) => `${s.optimizer} / ${s.pruner}` },
        { label: "created", cell: (s) => when(s.created_at) },
      ], data.items, { empty: "no studies yet: run `modelyard tune ...`" }),
      pager(data, (o) => go("/studies", withParams(p, { offset: o }))));
      setStatus("updated " + new Date().toLocaleTimeString());
    };
    view.replaceChildren(h("h1", {}, "Studies"), h("div", { class: "toolbar" }, filter), holder);
    await render();
    poll(render, 5000);
  }

  async function studyPage(route) {
    const name = route.parts[1];
    const p = route.params;
    const enc = encodeURIComponent(name);
    const head = h("div"), plots = h("div", { class: "grid2" }), trials = h("div");
    const histCard = h("div", { class: "card", id: "plot-history" }), pcCard = h("div", { class: "card", id: "plot-parallel" });
    const curveCard = h("div", { class: "card", id: "plot-curves" });
    plots.append(histCard, pcCard, curveCard);
    const logY = h("input", { type: "checkbox", id: "logy" });
    view.replaceChildren(h("a", { href: "#/studies" }, "← studies"), head,
      h("div", { class: "toolbar" }, h("label", {}, logY, " log scale for values")), plots, h("h2", {}, "Trials"), trials);
    let last = null;
    let cache = {};
    const drawPlots = () => {
      if (cache.history) histCard.replaceChildren(h("h2", {}, "Optimization history"), Plots.history(cache.history, { logY: logY.checked }),
        cache.history.thinned ? h("p", { class: "muted" }, `${cache.history.points.length} of ${cache.history.n_finished} points drawn (bucket extremes); the best-so-far line is exact`) : "");
      if (cache.parallel) pcCard.replaceChildren(h("h2", {}, "Parameters vs value"), Plots.parallel(cache.parallel),
        cache.parallel.sampled ? h("p", { class: "muted" }, `${cache.parallel.rows.length} of ${cache.parallel.n_complete} completed trials: the best half and an even sample`) : "");
      if (cache.curves) curveCard.replaceChildren(h("h2", {}, "Intermediate values: pruned vs completed"), Plots.curves(cache.curves, { logY: logY.checked }),
        cache.curves.sampled ? h("p", { class: "muted" }, "showing the latest trials of each state") : "");
    };
    logY.addEventListener("change", drawPlots);
    const state = p.get("state") || "", sort = p.get("sort") || "number", offset = +p.get("offset") || 0;
    const renderTrials = async (info) => {
      const q = new URLSearchParams({ limit: 50, offset, sort });
      if (state) q.set("state", state);
      const data = await api(`/api/studies/${enc}/trials?` + q);
      const names = Object.keys(info.space);
      const sel = h("select", { "aria-label": "state filter" }, ["", "complete", "pruned", "failed", "running"].map((s) => h("option", { value: s, selected: s === state }, s || "all states")));
      sel.addEventListener("change", () => go(route.path, withParams(p, { state: sel.value, offset: null })));
      const onSort = (k) => go(route.path, withParams(p, { sort: sort === k ? "-" + k : k, offset: null }));
      trials.replaceChildren(h("div", { class: "toolbar" }, sel), table([
        { label: "#", num: true, sort: "number", cell: (t) => t.number },
        { label: "state", cell: (t) => h("span", { class: "state-" + t.state }, t.state) },
        { label: "value", num: true, sort: "value", cell: (t) => fmt(t.value) },
        ...names.map((n) => ({ label: n, num: true, cell: (t) => fmt(t.params[n]) })),
        { label: "steps", num: true, cell: (t) => Object.keys(t.intermediate).length },
        { label: "duration s", num: true, sort: "duration", cell: (t) => fmt(t.duration) },
        { label: "reason", cell: (t) => t.reason || "" },
      ], data.items, { sort, onSort, rowClass: (t) => (t.number === info.best_number ? "best" : null), empty: "no trials match" }),
      pager(data, (o) => go(route.path, withParams(p, { offset: o }))));
    };
    const refresh = async () => {
      const info = await api(`/api/studies/${enc}`);
      const sig = JSON.stringify([info.counts, info.best_value]);
      if (sig === last) return;
      last = sig;
      head.replaceChildren(h("h1", {}, "Study ", name),
        h("p", { class: "muted" }, `${info.direction} · ${info.optimizer} optimizer · ${info.pruner} pruner · seed ${info.seed} · created ${when(info.created_at)}`),
        h("div", { class: "card" }, kv({
          trials: info.n_trials, complete: info.counts.complete, pruned: info.counts.pruned, failed: info.counts.failed,
          running: info.counts.running, "best value": info.best_value, "best trial": info.best_number,
        })));
      const [history, parallel, curves] = await Promise.all([
        api(`/api/studies/${enc}/history`), api(`/api/studies/${enc}/parallel`), api(`/api/studies/${enc}/curves`)]);
      cache = { history, parallel, curves };
      drawPlots();
      await renderTrials(info);
      setStatus(info.counts.running ? `${info.counts.running} running · live` : "updated " + new Date().toLocaleTimeString());
    };
    await refresh();
    poll(refresh, 2000);
  }

  // ---------- models and versions ----------
  async function modelsList(route) {
    const p = route.params;
    const offset = +p.get("offset") || 0, name = p.get("name") || "";
    const q = new URLSearchParams({ limit: 50, offset });
    if (name) q.set("name", name);
    const filter = h("input", { type: "search", placeholder: "filter by name", value: name, "aria-label": "filter models" });
    filter.addEventListener("change", () => go("/models", withParams(p, { name: filter.value, offset: null })));
    const data = await api("/api/models?" + q);
    view.replaceChildren(h("h1", {}, "Registered models"), h("div", { class: "toolbar" }, filter), table([
      { label: "model", cell: (m) => h("a", { href: "#/models/" + encodeURIComponent(m.name) }, m.name) },
      { label: "versions", num: true, cell: (m) => m.n_versions },
      { label: "latest", cell: (m) => (m.latest_ref ? vlink(m.latest_ref) : "–") },
      { label: "aliases", cell: (m) => Object.entries(m.aliases).map(([a, n]) => h("a", { class: "pill", href: `#/models/${encodeURIComponent(m.name)}/history?alias=${encodeURIComponent(a)}` }, `${a} → ${n}`)) },
      { label: "updated", cell: (m) => when(m.updated_at) },
    ], data.items, { empty: "no models yet: run `modelyard train ...`" }),
    pager(data, (o) => go("/models", withParams(p, { offset: o }))));
  }

  async function modelPage(route) {
    const name = route.parts[1], enc = encodeURIComponent(name), p = route.params;
    const offset = +p.get("offset") || 0, sort = p.get("sort") || "-number";
    const [model, aliases, data] = await Promise.all([
      api(`/api/models/${enc}`), api(`/api/models/${enc}/aliases`),
      api(`/api/models/${enc}/versions?` + new URLSearchParams({ limit: 50, offset, sort }))]);
    const chosen = new Set();
    const compareBtn = h("button", { disabled: true, onclick: () => go("/compare", new URLSearchParams({ refs: [...chosen].join(",") })) }, "Compare selected");
    const onSort = (k) => go(route.path, withParams(p, { sort: sort === k ? "-" + k : k, offset: null }));
    const aliasRows = Object.entries(aliases.aliases).map(([a, v]) => ({ alias: a, v }));
    const msg = h("div");
    const aliasForm = (() => {
      const aliasIn = h("input", { placeholder: "alias, e.g. production", "aria-label": "alias", size: 16 });
      const refIn = h("input", { placeholder: `${name}/NUMBER`, "aria-label": "version", size: 16 });
      const why = h("input", { placeholder: "reason (recorded)", "aria-label": "reason", size: 24 });
      const btn = h("button", { onclick: async () => {
        try {
          await api(`/api/models/${enc}/aliases/${encodeURIComponent(aliasIn.value.trim())}`, { method: "PUT", json: { ref: refIn.value.trim(), reason: why.value || null } });
          render();
        } catch (e) { msg.replaceChildren(errorBox(e)); }
      } }, "Move alias");
      return h("div", { class: "toolbar" }, aliasIn, h("span", {}, "→"), refIn, why, btn);
    })();
    const rollback = async (alias) => {
      try { await api(`/api/models/${enc}/aliases/${encodeURIComponent(alias)}/rollback`, { method: "POST", json: { reason: "rollback from the dashboard" } }); render(); }
      catch (e) { msg.replaceChildren(errorBox(e)); }
    };
    view.replaceChildren(
      h("a", { href: "#/models" }, "← models"), h("h1", {}, "Model ", name),
      h("p", { class: "muted" }, `${model.n_versions} versions · latest ${model.latest_ref || "–"} · `, h("a", { href: `#/models/${enc}/history` }, "alias history")),
      h("h2", {}, "Aliases"), msg,
      table([
        { label: "alias", cell: (r) => h("a", { href: `#/models/${enc}/history?alias=${encodeURIComponent(r.alias)}` }, r.alias) },
        { label: "version", cell: (r) => vlink(r.v.id, r.v.ref) },
        { label: "", cell: (r) => h("button", { class: "secondary", onclick: () => rollback(r.alias), title: "move the alias to the parent of the version it holds" }, "roll back") },
      ], aliasRows, { empty: "no aliases" }),
      aliasForm,
      h("h2", {}, "Versions"), h("div", { class: "toolbar" }, compareBtn, h("span", { class: "muted" }, "tick two or more versions")),
      table([
        { label: "", cell: (v) => { const cb = h("input", { type: "checkbox", "aria-label": "select " + v.ref }); cb.addEventListener("change", () => { cb.checked ? chosen.add(v.ref) : chosen.delete(v.ref); compareBtn.disabled = chosen.size < 2; }); return cb; } },
        { label: "version", sort: "number", cell: (v) => vlink(v.id, v.ref) },
        { label: "id", cell: (v) => h("code", {}, v.id.slice(0, 12)) },
        { label: "family", cell: (v) => v.family },
        { label: "key metric", num: true, sort: "key_value", cell: (v) => (v.key_metric ? `${v.key_metric} ${fmt(v.key_value)}` : "–") },
        { label: "aliases", cell: (v) => v.aliases.map((a) => h("span", { class: "pill" }, a)) },
        { label: "parent", cell: (v) => (v.parent_id ? vlink(v.parent_id, v.parent_id.slice(0, 12)) : "root") },
        { label: "created", sort: "created", cell: (v) => when(v.created_at) },
      ], data.items, { sort, onSort }),
      pager(data, (o) => go(route.path, withParams(p, { offset: o }))));
    function render() { router(); }
  }

  function diffLabel(diff) {
    return Object.entries(diff).map(([k, [a, b]]) => `${k}: ${fmt(a)}→${fmt(b)}`).join(", ");
  }

  async function versionPage(route) {
    const ref = route.parts.slice(1).join("/");
    const [v, lin] = await Promise.all([api("/api/versions/" + seg(ref)), api("/api/versions/" + seg(ref) + "/lineage")]);
    const epochs = v.history.map((e) => e.epoch);
    const loss = Plots.lines([
      { label: "train loss", points: v.history.map((e) => [e.epoch, e.train_loss]) },
      { label: "validation loss", points: v.history.map((e) => [e.epoch, e.val_loss]) },
    ], { kind: "training", title: "training curve", xLabel: "epoch", yLabel: "loss", emptyText: "no training history recorded" });
    const metric = Plots.lines([{ label: "validation metric", points: v.history.map((e) => [e.epoch, e.val_metric]), color: "#16a34a" }],
      { kind: "val-metric", xLabel: "epoch", yLabel: v.task === "classification" ? "accuracy" : "R²", emptyText: "no validation metric recorded" });
    const all = [...lin.ancestors, lin.version, ...lin.descendants];
    const graph = {
      nodes: all.map((s) => ({ id: s.id, label: s.ref, sub: `${s.family}${s.aliases.length ? " · " + s.aliases.join(",") : ""}`, current: s.id === v.id, href: "#/versions/" + s.id, title: `${s.ref} (${s.id.slice(0, 12)}) ${s.key_metric || ""} ${fmt(s.key_value)}` })),
      edges: lin.edges.map((e) => ({ source: e.parent_id, target: e.child_id, label: (diffLabel(e.diff) || "same params") + (e.retrained ? "" : " (weights reused)") })),
    };
    const scalars = Object.fromEntries(Object.entries(v.metrics).filter(([, x]) => typeof x === "number" || typeof x === "string"));
    view.replaceChildren(
      h("a", { href: "#/models/" + encodeURIComponent(v.name) }, "← " + v.name),
      h("h1", {}, v.ref, " ", v.aliases.map((a) => h("span", { class: "pill" }, a))),
      h("p", { class: "muted" }, `${v.family} · ${v.task} · created ${when(v.created_at)} by ${v.creator}`),
      h("div", { class: "toolbar" },
        v.parent_id ? h("button", { class: "secondary", onclick: () => go("/compare", new URLSearchParams({ refs: `${v.parent_id.slice(0, 16)},${v.id.slice(0, 16)}`, dataset: v.source && !v.source.startsWith("<") ? v.source : "" })) }, "Compare with parent") : ""),
      h("div", { class: "grid2" },
        h("div", { class: "card" }, h("h2", {}, "Record"), kv({ id: h("code", {}, v.id), parent: v.parent_id ? vlink(v.parent_id, v.parent_id.slice(0, 12)) : "root", data: v.source, fingerprint: v.fingerprint.slice(0, 16), seed: v.seed, artifact: h("code", {}, v.artifact.slice(0, 16) + "…"), "artifact bytes": v.artifact_size, split: splitText(v.split), description: v.description || "" })),
        h("div", { class: "card" }, h("h2", {}, "Metrics (held-out)"), table([{ label: "metric", cell: (r) => r[0] }, { label: "value", num: true, cell: (r) => fmt(r[1]) }], Object.entries(scalars))),
        h("div", { class: "card" }, h("h2", {}, "Hyperparameters"), table([{ label: "param", cell: (r) => r[0] }, { label: "value", cell: (r) => JSON.stringify(r[1]) }], Object.entries(v.params))),
        h("div", { class: "card", id: "plot-training" }, h("h2", {}, "Training curve"), loss, metric, epochs.length ? h("p", { class: "muted" }, `${epochs.length} epochs; config ${JSON.stringify(v.fit_config)}`) : ""),
        h("div", { class: "card", id: "plot-importance" }, h("h2", {}, "Feature importance"), importanceChart(v.importance))),
      h("div", { class: "card", id: "plot-lineage" }, h("h2", {}, "Lineage"), h("p", { class: "muted" }, "edges are labelled with the parameters that changed; click a version to open it"), Plots.dag(graph),
        lin.truncated && (lin.truncated.ancestors || lin.truncated.descendants) ? h("p", { class: "muted" }, `not shown: ${lin.truncated.ancestors} older ancestors, ${lin.truncated.descendants} further descendants`) : ""));
  }

  /* Feature importance of a version ({method, values: {feature: value}}) as bars, largest first (top 25). */
  function importanceChart(imp) {
    if (!imp || !imp.values) return h("p", { class: "muted" }, "this family records no feature importance");
    const items = Object.entries(imp.values).sort((a, b) => b[1] - a[1]);
    const shown = items.slice(0, 25).map(([label, value]) => ({ label, value }));
    return h("div", {},
      Plots.bars(shown, { kind: "importance", title: "feature importance", emptyText: "no importance recorded" }),
      h("p", { class: "muted" }, `${imp.method.replace(/_/g, " ")}${items.length > 25 ? `; top 25 of ${items.length} features` : ""}`));
  }

  async function aliasHistory(route) {
    const name = route.parts[1], enc = encodeURIComponent(name), p = route.params;
    const alias = p.get("alias") || "", offset = +p.get("offset") || 0;
    const q = new URLSearchParams({ limit: 50, offset });
    if (alias) q.set("alias", alias);
    const data = await api(`/api/models/${enc}/history?` + q);
    const ref = (r, id) => (r ? (id ? vlink(id, r) : r) : "–");
    view.replaceChildren(
      h("a", { href: "#/models/" + enc }, "← " + name), h("h1", {}, "Alias history of ", name, alias ? "@" + alias : ""),
      alias ? h("p", {}, h("a", { href: `#/models/${enc}/history` }, "all aliases")) : "",
      table([
        { label: "#", num: true, cell: (m) => m.seq },
        { label: "when", cell: (m) => when(m.at) },
        { label: "alias", cell: (m) => h("a", { href: `#/models/${enc}/history?alias=${encodeURIComponent(m.alias)}` }, m.alias) },
        { label: "action", cell: (m) => m.action },
        { label: "from", cell: (m) => ref(m.from, m.from_id) },
        { label: "to", cell: (m) => ref(m.to, m.to_id) },
        { label: "who", cell: (m) => m.user },
        { label: "why", cell: (m) => m.reason || "" },
      ], data.items, { empty: "no alias moves recorded" }),
      pager(data, (o) => go(route.path, withParams(p, { offset: o }))));
  }

  // how a version's rows were split: the part sizes and how they were drawn (never the row-hash record)
  function splitText(s) {
    const sizes = ["train", "validation", "test"].filter((k) => k in s).map((k) => `${k} ${s[k]}`).join(", ");
    if (!("seed" in s)) return sizes + " (how the rows were drawn is not recorded)";
    return `${sizes} of ${s.rows} rows (seed ${s.seed}, validation ${s.val_size}, test ${s.test_size}${s.stratify ? ", stratified" : ""})`;
  }

  // ---------- comparisons ----------
  async function comparePage(route) {
    const p = route.params;
    const [sets, recent] = await Promise.all([api("/api/datasets"), api("/api/comparisons")]);
    const refs = h("input", { id: "refs", size: 50, value: p.get("refs") || "", placeholder: "churn/3, churn/4 or churn@production, 3f9a2c", "aria-label": "versions" });
    const ds = h("input", { id: "dataset", size: 40, list: "datasets", value: p.get("dataset") || "", placeholder: "sklearn:iris or data/test.csv", "aria-label": "dataset" });
    const target = h("input", { id: "target", size: 14, placeholder: "target column", "aria-label": "target" });
    const allow = h("input", { id: "allow-training-rows", type: "checkbox", "aria-label": "allow training rows" });
    const msg = h("div");
    const run = h("button", { id: "run-compare" }, "Compare");
    run.addEventListener("click", async () => {
      run.disabled = true; msg.replaceChildren(h("p", { class: "muted" }, "evaluating… (rebuilding the versions from their artifacts)"));
      try {
        const res = await api("/api/comparisons", { method: "POST", json: { refs: refs.value.split(/[\s,]+/).filter(Boolean), dataset: ds.value.trim(), target: target.value.trim() || null, allow_training_rows: allow.checked } });
        go("/comparisons/" + res.id);
      } catch (e) { msg.replaceChildren(errorBox(e)); run.disabled = false; }
    });
    view.replaceChildren(h("h1", {}, "Compare versions"),
      h("div", { class: "card" },
        h("p", { class: "muted" }, "Evaluate two or more versions on the same rows: paired tests, metric deltas with bootstrap intervals, cost."),
        h("div", { class: "toolbar" }, h("label", { for: "refs" }, "versions"), refs),
        h("div", { class: "toolbar" }, h("label", { for: "dataset" }, "dataset"), ds, target, run),
        h("div", { class: "toolbar" }, allow, h("label", { for: "allow-training-rows" }, "also use rows a version trained on (by default they are left out)")),
        h("datalist", { id: "datasets" }, sets.items.map((d) => h("option", { value: d.dataset }))),
        h("p", { class: "muted" }, "files must lie under: " + sets.roots.join(", ")), msg),
      h("h2", {}, "Saved comparisons"),
      table([
        { label: "versions", cell: (c) => h("a", { href: "#/comparisons/" + c.id }, c.refs.join(" vs ")) },
        { label: "dataset", cell: (c) => c.data_source },
        { label: "best", cell: (c) => c.best },
        { label: "metric", cell: (c) => c.metric },
        { label: "rows", num: true, cell: (c) => c.n_rows },
        { label: "when", cell: (c) => when(c.created_at) },
      ], recent.items, { empty: "none saved yet (run one above, or modelyard compare ... --save)" }));
  }

  function confusion(entry, classes) {
    const m = entry.diagnostics && entry.diagnostics.confusion;
    if (!m) return "";
    const labels = classes || m.map((_, i) => i);
    return h("div", {}, h("h3", {}, entry.label),
      h("table", { class: "matrix" }, h("tr", {}, h("th", {}, "true \\ pred"), labels.map((c) => h("th", {}, String(c)))),
        m.map((row, i) => h("tr", {}, h("th", {}, String(labels[i])), row.map((x, j) => h("td", { style: null, class: i === j ? "sig" : null }, x))))));
  }

  async function comparisonPage(route) {
    const res = await api("/api/comparisons/" + encodeURIComponent(route.parts[1]));
    const c = res.comparison;
    const scalarMetrics = [...new Set(c.entries.flatMap((e) => Object.keys(e.metrics).filter((k) => typeof e.metrics[k] === "number")))];
    const leaderboard = table([
      { label: "rank", num: true, cell: (e) => e.rank },
      { label: "version", cell: (e) => (e.version_id ? vlink(e.version_id, e.label) : e.label) },
      { label: "family", cell: (e) => e.family },
      ...scalarMetrics.map((m) => ({ label: m, num: true, cell: (e) => fmt(e.metrics[m]) })),
    ], c.entries.slice().sort((a, b) => a.rank - b.rank), { rowClass: (e) => (e.rank === 1 ? "best" : null) });
    const pairs = c.pairs.map((pt) => {
      const deltas = pt.metrics.filter((m) => m.delta !== null);
      return h("div", { class: "card pair" },
        h("p", { class: "verdict" }, `${pt.a} vs ${pt.b}: ${pt.verdict}`),
        h("p", { class: "muted" }, `${pt.test}, p = ${fmt(pt.p_value)}${c.correction !== "none" ? `, Holm-adjusted ${fmt(pt.p_adjusted)}` : ""}, α = ${c.alpha}`),
        table([
          { label: "metric", cell: (m) => m.metric + (m.label !== null && m.label !== undefined ? ` [${m.label}]` : "") },
          { label: "A", num: true, cell: (m) => fmt(m.a) }, { label: "B", num: true, cell: (m) => fmt(m.b) },
          { label: "B − A", num: true, cell: (m) => fmt(m.delta) },
          { label: `${Math.round((1 - c.alpha) * 100)}% interval`, num: true, cell: (m) => `[${fmt(m.ci_low)}, ${fmt(m.ci_high)}]` },
          { label: "p", num: true, cell: (m) => fmt(m.p_value) },
          { label: "", cell: (m) => h("span", { class: m.significant ? "sig" : "nosig" }, m.significant ? `${m.better} better` : "n.s.") },
        ], pt.metrics),
        Plots.bars(deltas.map((m) => ({ label: m.metric, value: m.delta, lo: m.ci_low, hi: m.ci_high, color: m.significant ? "#16a34a" : "#9ca3af" })),
          { kind: "deltas", title: "B − A with bootstrap intervals" }),
        pt.mcnemar ? h("div", {}, h("h3", {}, "McNemar (paired correctness)"),
          h("table", { class: "matrix" }, h("tr", {}, h("th", {}, ""), h("th", {}, "B right"), h("th", {}, "B wrong")),
            h("tr", {}, h("th", {}, "A right"), h("td", {}, pt.mcnemar.both_right), h("td", {}, pt.mcnemar.a_only)),
            h("tr", {}, h("th", {}, "A wrong"), h("td", {}, pt.mcnemar.b_only), h("td", {}, pt.mcnemar.both_wrong))),
          h("p", { class: "muted" }, `exact p = ${fmt(pt.mcnemar.p_exact)}, mid-p = ${fmt(pt.mcnemar.p_midp)}, χ² = ${fmt(pt.mcnemar.statistic)}`)) : "");
    });
    const rocs = c.entries.filter((e) => e.diagnostics && e.diagnostics.roc);
    const prs = c.entries.filter((e) => e.diagnostics && e.diagnostics.pr);
    const regs = c.entries.filter((e) => e.diagnostics && e.diagnostics.y_true);
    const diag = h("div", { class: "grid2" },
      rocs.length ? h("div", { class: "card" }, h("h2", {}, "ROC"), Plots.lines(rocs.map((e) => ({ label: e.label, points: e.diagnostics.roc[0].map((x, i) => [x, e.diagnostics.roc[1][i]]) })), { kind: "roc", xLabel: "false positive rate", yLabel: "true positive rate" })) : "",
      prs.length ? h("div", { class: "card" }, h("h2", {}, "Precision-recall"), Plots.lines(prs.map((e) => ({ label: e.label, points: e.diagnostics.pr[0].map((x, i) => [x, e.diagnostics.pr[1][i]]) })), { kind: "pr", xLabel: "recall", yLabel: "precision" })) : "",
      regs.length ? h("div", { class: "card" }, h("h2", {}, "Predicted vs true"), Plots.lines(regs.map((e) => ({ label: e.label, points: e.diagnostics.y_true.map((y, i) => [y, e.diagnostics.y_pred[i]]).sort((a, b) => a[0] - b[0]) })), { kind: "pred-true", xLabel: "true", yLabel: "predicted" })) : "",
      c.entries.some((e) => e.diagnostics && e.diagnostics.confusion) ? h("div", { class: "card" }, h("h2", {}, "Confusion matrices"), c.entries.map((e) => confusion(e, c.classes))) : "");
    const cost = table([
      { label: "version", cell: (e) => e.label },
      { label: "train s", num: true, cell: (e) => fmt(e.cost.train_time_s) },
      { label: "artifact bytes", num: true, cell: (e) => fmt(e.cost.size_bytes) },
      { label: "parameters", num: true, cell: (e) => fmt(e.cost.n_parameters) },
      { label: "batch p50 s", num: true, cell: (e) => fmt(e.cost.latency && e.cost.latency.batch_p50_s) },
      { label: "row p50 s", num: true, cell: (e) => fmt(e.cost.latency && e.cost.latency.row_p50_s) },
      { label: "rows/s", num: true, cell: (e) => fmt(e.cost.latency && e.cost.latency.rows_per_s) },
    ], c.entries);
    const dist = c.distances.length ? table([
      { label: "A", cell: (d) => d.a }, { label: "B", cell: (d) => d.b },
      { label: "comparable", cell: (d) => (d.comparable ? "yes" : d.reason || "no") },
      { label: "L2", num: true, cell: (d) => fmt(d.l2) }, { label: "relative L2", num: true, cell: (d) => fmt(d.relative_l2) },
      { label: "cosine", num: true, cell: (d) => fmt(d.cosine) },
    ], c.distances) : "";
    view.replaceChildren(h("a", { href: "#/compare" }, "← compare"),
      h("h1", {}, "Comparison: ", res.refs.join(" vs ")),
      h("p", { class: "muted" }, `${c.task} · ${c.n_rows} rows of ${c.data_source} · ranked by ${c.metric} (${c.higher_is_better ? "higher" : "lower"} is better) · ${c.resamples} bootstrap resamples · seed ${c.seed} · ${when(c.created_at)}`),
      h("p", { id: "rows" }, c.rows ? c.rows.note : "rows not checked against the versions' training rows (saved before modelyard did)"),
      h("h2", {}, "Leaderboard"), h("div", { id: "leaderboard" }, leaderboard),
      h("h2", {}, "Pairwise tests"), h("div", { id: "pairs" }, pairs),
      diag, h("h2", {}, "Cost"), cost, dist ? h("h2", {}, "Weight distances") : "", dist);
  }

  // ---------- API reference ----------
  async function apiPage() {
    const spec = await api("/api/openapi.json");
    const rows = [];
    for (const [path, ops] of Object.entries(spec.paths)) for (const [method, op] of Object.entries(ops)) rows.push({ method: method.toUpperCase(), path, op });
    view.replaceChildren(h("h1", {}, "REST API"), h("p", { class: "muted" }, spec.info.description),
      h("p", {}, h("a", { href: "/api/openapi.json" }, "OpenAPI document (JSON)")),
      table([
        { label: "method", cell: (r) => h("code", {}, r.method) },
        { label: "path", cell: (r) => h("code", {}, r.path) },
        { label: "what", cell: (r) => [h("strong", {}, r.op.summary || ""), h("br"), h("span", { class: "muted" }, r.op.description || "")] },
        { label: "parameters", cell: (r) => (r.op.parameters || []).map((x) => h("span", { class: "pill" }, x.name)) },
      ], rows));
  }

  // ---------- router ----------
  const routes = [
    [/^studies$/, studiesList, "studies"], [/^studies\/[^/]+$/, studyPage, "studies"],
    [/^models$/, modelsList, "models"], [/^models\/[^/]+$/, modelPage, "models"], [/^models\/[^/]+\/history$/, aliasHistory, "models"],
    [/^versions\/.+$/, versionPage, "models"],
    [/^compare$/, comparePage, "compare"], [/^comparisons\/[^/]+$/, comparisonPage, "compare"],
    [/^api$/, apiPage, "api"],
  ];

  async function router() {
    generation++;
    timers.forEach(clearInterval);
    timers = [];
    const route = parseHash();
    const tok = route.params.get("token");
    if (tok) { sessionStorage.setItem("modelyard-token", tok); route.params.delete("token"); history.replaceState(null, "", "#" + route.path); }
    const key = route.parts.join("/");
    const match = routes.find(([re]) => re.test(key));
    document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", !!match && a.dataset.nav === match[2]));
    if (!match) { view.replaceChildren(errorBox(new Error(`no page ${location.hash}; use the links above`))); return; }
    const gen = generation;
    setStatus("");
    try { await match[1](route); }
    catch (e) { if (gen === generation) view.replaceChildren(errorBox(e)); }
  }

  window.addEventListener("hashchange", router);
  router();
})();
