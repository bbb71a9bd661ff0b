// expledger dashboard: plain JavaScript over the JSON API (/api/), no build step.
// User text only ever enters the page as text nodes or attribute values (never as HTML),
// and the server's Content-Security-Policy forbids inline scripts, so a name like
// <img src=x onerror=alert(1)> stays a name.
"use strict";

(() => {
  const main = document.getElementById("main");
  const STATUSES = ["QUEUED", "RUNNING", "SUCCESS", "FAILED", "CANCELLED"];
  const LIVE_MS = 2000;
  const PAGE = 50;
  const BASE_FIELDS = ["id", "status", "name", "task", "model", "machine", "created", "started", "completed",
    "params", "metrics", "summary", "failed_reason", "tags"];
  const LOWER = ["loss", "error", "err", "wer", "cer", "ter", "der", "eer", "perplexity", "ppl", "nll", "bpc", "bpd",
    "mse", "mae", "rmse", "mape", "fid", "kid", "lpips", "ece", "far", "frr", "latency", "time", "seconds", "memory",
    "cost", "regret", "distance"];
  let timers = [];
  let charts = [];

  // --- small helpers ---------------------------------------------------------------

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") el.className = value;
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  async function api(path, options) {
    const response = await fetch(path, options);
    let body;
    try {
      body = await response.json();
    } catch (err) {
      body = { ok: false, error: { message: `${response.status} ${response.statusText}` } };
    }
    if (!response.ok || body.ok === false) {
      const error = new Error((body.error && body.error.message) || response.statusText);
      error.status = response.status;
      throw error;
    }
    return body;
  }

  function post(path, body) {
    return api(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body || {}) });
  }

  function query() {
    return new URLSearchParams(location.search);
  }

  function setQuery(params, push) {
    for (const [key, value] of [...params.entries()]) if (value === "") params.delete(key);
    const text = params.toString();
    const url = location.pathname + (text ? `?${text}` : "");
    if (push) history.pushState(null, "", url);
    else history.replaceState(null, "", url);
  }

  function every(ms, action) {
    const timer = setInterval(action, ms);
    timers.push(timer);
    return timer;
  }

  function relative(iso) {
    if (!iso) return "";
    const then = Date.parse(iso);
    if (Number.isNaN(then)) return iso;
    const seconds = (Date.now() - then) / 1000;
    if (seconds < 0) return iso.slice(0, 16).replace("T", " ");
    for (const [size, unit, step] of [[60, "s", 1], [3600, "m", 60], [86400, "h", 3600], [86400 * 31, "d", 86400]]) {
      if (seconds < size) return `${Math.floor(seconds / step)}${unit} ago`;
    }
    return iso.slice(0, 10);
  }

  function duration(exp) {
    if (!exp.started) return "";
    const end = exp.completed ? Date.parse(exp.completed) : (exp.status === "RUNNING" ? Date.now() : NaN);
    const seconds = (end - Date.parse(exp.started)) / 1000;
    if (!Number.isFinite(seconds)) return "";
    if (seconds < 60) return `${seconds.toFixed(1)}s`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${Math.round(seconds % 60)}s`;
    return `${Math.floor(seconds / 3600)}h ${Math.round((seconds % 3600) / 60)}m`;
  }

  function value(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "number") return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }

  function pairs(obj) {
    return Object.entries(obj || {}).map(([k, v]) => `${k}=${value(v)}`).join("  ");
  }

  function dig(record, path) {
    let here = record;
    const [head, ...rest] = path.split(".");
    here = here[head];
    const key = rest.join(".");
    if (key) here = here && typeof here === "object" ? here[key] : undefined;
    return here;
  }

  function badge(status) {
    return h("span", { class: `badge st-${status}` }, status);
  }

  function expLink(id, label) {
    return h("a", { href: `/exp/${encodeURIComponent(id)}` }, label || id);
  }

  function lowerIsBetter(name) {
    return name.toLowerCase().split(/[^a-z]+/).some((word) => LOWER.includes(word));
  }

  // A mark once the frame that shows something has been painted (benchmarks/bench_ui.py reads it).
  function markPainted(name) {
    if (performance.getEntriesByName(name).length) return;
    requestAnimationFrame(() => setTimeout(() => performance.mark(name)));
  }

  function title(text) {
    document.title = `${text} · expledger`;
  }

  function failure(err) {
    return h("p", { class: "error", role: "alert" }, err.message);
  }

  function mark(nav) {
    for (const link of document.querySelectorAll("[data-nav]")) {
      if (link.dataset.nav === nav) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }

  // --- charts (uPlot) --------------------------------------------------------------

  const PALETTE = ["#2f6fde", "#d9480f", "#2b8a3e", "#ae3ec9", "#e8590c", "#1098ad", "#c2255c", "#5c940d", "#7048e8", "#868e96"];

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  // uPlot is loaded when the first chart is drawn, so the table page does not wait for it.
  let chartLibrary = null;

  function loadCharts() {
    chartLibrary = chartLibrary || new Promise((resolve, reject) => {
      const script = h("script", { src: "/static/vendor/uPlot.iife.min.js" });
      script.addEventListener("load", resolve);
      script.addEventListener("error", () => reject(new Error("could not load the chart library")));
      document.head.append(script);
    });
    return chartLibrary;
  }

  function chart(holder, name, xs, columns, labels) {
    const fg = css("--fg");
    const grid = css("--grid");
    const width = Math.max(280, holder.clientWidth || 600);
    const options = {
      title: name,
      width,
      height: 240,
      scales: { x: { time: false } },
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      series: [{ label: "step" }, ...labels.map((label, i) => ({
        label, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: labels.length > 1,
        points: { show: false },
      }))],
      axes: [
        { stroke: fg, grid: { stroke: grid }, ticks: { stroke: grid } },
        { stroke: fg, grid: { stroke: grid }, ticks: { stroke: grid }, size: 60 },
      ],
    };
    const plot = new uPlot(options, [xs, ...columns], holder);
    charts.push({ plot, holder });
    return plot;
  }

  // Runs sampled at different steps on one x axis: the union of steps, gaps as null.
  function align(runs) {
    const steps = [...new Set(runs.flatMap((run) => run.steps))].sort((a, b) => a - b);
    const position = new Map(steps.map((s, i) => [s, i]));
    const columns = runs.map((run) => {
      const column = new Array(steps.length).fill(null);
      run.steps.forEach((s, i) => { column[position.get(s)] = run.values[i]; });
      return column;
    });
    return [steps, columns];
  }

  window.addEventListener("resize", () => {
    for (const { plot, holder } of charts) {
      if (holder.isConnected) plot.setSize({ width: Math.max(280, holder.clientWidth), height: 240 });
    }
  });

  // --- the experiments table -------------------------------------------------------

  function tableState() {
    const q = query();
    return {
      where: q.get("where") || "",
      status: (q.get("status") || "").split(",").filter(Boolean),
      sort: q.get("sort") || "-id",
      cols: (q.get("cols") || "").split(",").filter(Boolean),
      offset: Math.max(0, parseInt(q.get("offset") || "0", 10) || 0),
      selected: new Set((q.get("sel") || "").split(",").filter(Boolean)),
    };
  }

  function stateQuery(state) {
    return new URLSearchParams({
      where: state.where, status: state.status.join(","), sort: state.sort === "-id" ? "" : state.sort,
      cols: state.cols.join(","), offset: state.offset ? String(state.offset) : "", sel: [...state.selected].join(","),
    });
  }

  function filterParams(state, withStatus) {
    const params = new URLSearchParams();
    if (state.where) params.set("where", state.where);
    if (withStatus && state.status.length) params.set("status", state.status.join(","));
    return params;
  }

  async function tablePage() {
    mark("table");
    title("Experiments");
    const state = tableState();
    const whereInput = h("input", {
      id: "where", name: "where", type: "search", value: state.where, autocomplete: "off", spellcheck: "false",
      placeholder: "params.lr < 0.01 and metrics.acc >= 0.9   (press / to focus)", "aria-label": "Filter (--where)",
      "aria-describedby": "where-error",
    });
    const whereError = h("p", { id: "where-error", class: "error", role: "alert", hidden: true });
    const form = h("form", { class: "filter", role: "search" }, whereInput, h("button", { type: "submit" }, "Filter"));
    const chips = h("div", { class: "chips", role: "group", "aria-label": "Status" });
    const columnsBox = h("details", { class: "columns" }, h("summary", {}, "Columns"));
    const compareButton = h("button", { type: "button", id: "compare-selected", disabled: true }, "Compare selected");
    const tools = h("div", { class: "tools" }, chips, columnsBox, compareButton);
    const holder = h("div", { class: "table-holder" });
    const pager = h("nav", { class: "pager", "aria-label": "Pages" });
    main.replaceChildren(h("h1", { class: "visually-hidden" }, "Experiments"), form, whereError, tools, holder, pager);

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      state.where = whereInput.value.trim();
      state.offset = 0;
      refresh(true);
    });
    compareButton.addEventListener("click", () => {
      location.href = `/compare?ids=${encodeURIComponent([...state.selected].join(","))}`;
    });

    let rows = [];
    let loading = 0;

    async function refresh(push) {
      setQuery(stateQuery(state), push);
      const ticket = ++loading;
      const list = filterParams(state, true);
      list.set("sort", state.sort);
      list.set("limit", String(PAGE));
      list.set("offset", String(state.offset));
      list.set("fields", [...BASE_FIELDS, ...state.cols].join(","));
      const listCall = api(`/api/experiments?${list}`);  // first: the store answers one call at a time
      const countsCall = api(`/api/counts?${filterParams(state, false)}`).catch(() => null);
      let body;
      try {
        body = await listCall;
      } catch (err) {
        if (ticket !== loading) return;
        whereError.textContent = err.message;
        whereError.hidden = false;
        whereInput.setAttribute("aria-invalid", "true");
        holder.replaceChildren();
        pager.replaceChildren();
        return;
      }
      if (ticket !== loading) return;
      whereError.hidden = true;
      whereInput.removeAttribute("aria-invalid");
      rows = body.experiments;
      drawTable(body);
      markPainted("exp:table-painted");
      drawPager(body);
      drawColumns();
      const counts = await countsCall;
      if (ticket === loading && counts) drawChips(counts);
    }

    function drawChips(counts) {
      const chip = (label, status, count) => h("button", {
        type: "button", class: `chip ${status ? `st-${status}` : ""}`,
        "aria-pressed": status ? String(state.status.includes(status)) : String(!state.status.length),
        onclick: () => {
          if (!status) state.status = [];
          else if (state.status.includes(status)) state.status = state.status.filter((s) => s !== status);
          else state.status = [...state.status, status];
          state.offset = 0;
          refresh(true);
        },
      }, label, " ", h("span", { class: "count" }, count.toLocaleString()));
      chips.replaceChildren(chip("All", null, counts.total), ...STATUSES.map((s) => chip(s.toLowerCase(), s, counts.counts[s])));
    }

    function drawColumns() {
      const seen = new Set();
      for (const row of rows) {
        for (const key of Object.keys(row.metrics || {})) seen.add(`metrics.${key}`);
        for (const key of Object.keys(row.params || {})) seen.add(`params.${key}`);
      }
      for (const col of state.cols) seen.add(col);
      const boxes = [...seen].sort().map((name) => h("label", {},
        h("input", {
          type: "checkbox", checked: state.cols.includes(name), onchange: (event) => {
            state.cols = event.target.checked ? [...state.cols, name] : state.cols.filter((c) => c !== name);
            refresh(true);
          },
        }), " ", name));
      const extra = h("input", { type: "text", placeholder: "params.lr", "aria-label": "Add a column", size: 14 });
      const add = h("form", { class: "add-column" }, extra, h("button", { type: "submit" }, "Add"));
      add.addEventListener("submit", (event) => {
        event.preventDefault();
        const name = extra.value.trim();
        if (name && !state.cols.includes(name)) {
          state.cols = [...state.cols, name];
          refresh(true);
        }
      });
      const wasOpen = columnsBox.open;
      columnsBox.replaceChildren(h("summary", {}, `Columns${state.cols.length ? ` (${state.cols.length})` : ""}`),
        h("div", { class: "column-list" }, boxes), add);
      columnsBox.open = wasOpen;
    }

    function header(label, field) {
      if (!field) return h("th", { scope: "col" }, label);
      const active = state.sort.replace(/^[-+]/, "") === field;
      const descending = state.sort.startsWith("-");
      const sortState = active ? (descending ? "descending" : "ascending") : "none";
      return h("th", { scope: "col", "aria-sort": sortState },
        h("button", {
          type: "button", class: "sort", "data-field": field,
          onclick: () => {
            state.sort = active && !descending ? `-${field}` : (active ? field : (field === "id" || field.startsWith("metrics.") ? `-${field}` : field));
            state.offset = 0;
            refresh(true);
          },
        }, label, active ? (descending ? " ▼" : " ▲") : ""));
    }

    function drawTable(body) {
      updateCompare();
      if (!rows.length) {
        holder.replaceChildren(h("p", { class: "muted" }, state.where || state.status.length ? "No experiments match." : "No experiments yet: exp add --name …"));
        return;
      }
      const head = h("tr", {}, h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Select")),
        header("ID", "id"), header("Status", "status"), header("Name", "name"), header("Task", "task"),
        header("Model", "model"), header("Machine", "machine"), header("Created", "created"),
        state.cols.map((c) => header(c, c)), header("Metrics"), header("Outcome"));
      const lines = rows.map((exp) => {
        const box = h("input", {
          type: "checkbox", checked: state.selected.has(exp.id), "aria-label": `Select ${exp.id}`,
          onchange: (event) => {
            if (event.target.checked) state.selected.add(exp.id);
            else state.selected.delete(exp.id);
            setQuery(stateQuery(state), false);
            updateCompare();
          },
        });
        const outcome = exp.status === "FAILED" ? exp.failed_reason : exp.summary;
        return h("tr", { class: `row st-row-${exp.status}`, "data-id": exp.id },
          h("td", {}, box), h("td", { class: "id" }, expLink(exp.id)), h("td", {}, badge(exp.status)),
          h("td", { class: "name", title: exp.name }, exp.name), h("td", {}, exp.task || ""), h("td", {}, exp.model || ""),
          h("td", {}, exp.machine || ""), h("td", { title: exp.created || "" }, relative(exp.created)),
          state.cols.map((c) => h("td", { class: "num" }, value(dig(exp, c)))),
          h("td", { class: "metrics" }, pairs(exp.metrics)), h("td", { class: "outcome", title: outcome || "" }, outcome || ""));
      });
      holder.replaceChildren(h("table", { class: "grid", id: "experiments" }, h("thead", {}, head), h("tbody", {}, lines)));
    }

    function drawPager(body) {
      const first = body.total ? body.offset + 1 : 0;
      const last = body.offset + body.experiments.length;
      const go = (offset) => () => { state.offset = Math.max(0, offset); refresh(true); };
      const lastPage = Math.max(0, Math.floor((body.total - 1) / PAGE) * PAGE);
      pager.replaceChildren(
        h("button", { type: "button", disabled: body.offset === 0, onclick: go(0), "aria-label": "First page" }, "«"),
        h("button", { type: "button", id: "prev", disabled: body.offset === 0, onclick: go(body.offset - PAGE) }, "‹ Prev"),
        h("span", { class: "range", "aria-live": "polite" }, `${first.toLocaleString()}–${last.toLocaleString()} of ${body.total.toLocaleString()}`),
        h("button", { type: "button", id: "next", disabled: !body.next_cursor, onclick: go(body.offset + PAGE) }, "Next ›"),
        h("button", { type: "button", disabled: !body.next_cursor, onclick: go(lastPage), "aria-label": "Last page" }, "»"));
    }

    function updateCompare() {
      compareButton.disabled = state.selected.size < 2;
      compareButton.textContent = `Compare selected (${state.selected.size})`;
    }

    keys.table = (event) => {
      const rowsNow = [...main.querySelectorAll("tbody tr")];
      const current = rowsNow.indexOf(document.activeElement && document.activeElement.closest("tr"));
      const focusRow = (i) => { const row = rowsNow[Math.max(0, Math.min(rowsNow.length - 1, i))]; if (row) row.querySelector("a").focus(); };
      if (event.key === "/") { event.preventDefault(); whereInput.focus(); whereInput.select(); }
      else if (event.key === "j") focusRow(current + 1);
      else if (event.key === "k") focusRow(current < 0 ? 0 : current - 1);
      else if (event.key === "x" && current >= 0) rowsNow[current].querySelector("input").click();
      else if (event.key === "n") document.getElementById("next")?.click();
      else if (event.key === "p") document.getElementById("prev")?.click();
      else if (event.key === "c" && !compareButton.disabled) compareButton.click();
      else return false;
      return true;
    };

    await refresh(false);
    every(LIVE_MS * 2, () => {
      if (document.hidden || !rows.some((r) => r.status === "RUNNING" || r.status === "QUEUED")) return;
      if (main.contains(document.activeElement) && document.activeElement.matches("input[type=text],input[type=search]")) return;
      refresh(false);
    });
  }

  // --- one experiment --------------------------------------------------------------

  async function experimentPage(id) {
    mark("");
    title(id);
    const stepsPath = `/api/experiments/${encodeURIComponent(id)}/steps`;
    const firstSteps = api(stepsPath);  // asked at once: the server answers it right after the record
    firstSteps.catch(() => {});
    loadCharts().catch(() => {});
    let body;
    try {
      body = await api(`/api/experiments/${encodeURIComponent(id)}`);
    } catch (err) {
      title(`${id} not found`);
      main.replaceChildren(h("h1", {}, id), failure(err));
      return;
    }
    const exp = body.experiment;
    title(`${exp.id} ${exp.name}`);
    const head = h("div", { class: "exp-head" });
    const facts = h("section", { "aria-label": "Fields" });
    const notes = h("div", {});
    const chartsBox = h("section", { class: "charts", "aria-label": "Step metrics" });
    const rest = h("div", {});
    main.replaceChildren(head, facts, notes, chartsBox, rest);
    let full = false;
    const plots = new Map();

    function draw(data) {
      const e = data.experiment;
      title(`${e.id} ${e.name}`);
      head.replaceChildren(
        h("h1", {}, h("span", { class: "id" }, e.id), " ", h("span", { class: "name" }, e.name), " ", badge(e.status)),
        actions(e, () => load()));
      const when = (field) => e[field] ? h("span", { title: e[field] }, `${e[field]} (${relative(e[field])})`) : "";
      const rows = [["task", e.task], ["model", e.model], ["machine", e.machine], ["command", e.command && h("code", {}, e.command)],
        ["created", when("created")], ["started", when("started")], ["completed", when("completed")],
        ["duration", duration(e)], ["priority", e.priority], ["tags", (e.tags || []).join(", ")], ["workdir", e.workdir],
        ["aliases", (e.aliases || []).join(", ")], ["uuid", e.uuid], ["rev", e.rev], ["updated", when("updated")]];
      facts.replaceChildren(h("table", { class: "facts" }, h("tbody", {},
        rows.filter(([, v]) => v !== null && v !== undefined && v !== "").map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", {}, v))))));
      notes.replaceChildren(
        e.summary ? h("section", { "aria-label": "Summary" }, h("h2", {}, "Summary"), h("p", { class: "summary" }, e.summary)) : "",
        e.failed_reason ? h("section", { "aria-label": "Failed reason" }, h("h2", {}, "Failed reason"), h("p", { class: "failed" }, e.failed_reason)) : "");
      const blocks = [h("div", { class: "side-by-side" }, keyValues("Params", e.params), keyValues("Metrics", e.metrics))];
      if ((e.history || []).length) {
        blocks.push(h("section", {}, h("h2", {}, "Earlier results"), h("ul", {}, e.history.map((r) =>
          h("li", {}, badge(r.status), " ", pairs(r.metrics), " ", r.summary || r.failed_reason || "", " ", h("span", { class: "muted" }, `replaced ${relative(r.replaced)}`))))));
      }
      if (data.log_tail && data.log_tail.length) {
        blocks.push(h("section", {}, h("h2", {}, "Log tail"), h("pre", { class: "log" }, data.log_tail.map((l) => `${l.file}: ${l.line}`).join("\n"))));
      } else {
        // Not in a run folder here (a run on another machine, or not started): the output
        // its runner kept in the store, as `exp logs` reads it.
        const output = h("section", { class: "output", "aria-label": "Output" },
          h("p", { class: "muted" }, data.run_dir ? `No output saved in ${data.run_dir}.` : "No output saved."));
        blocks.push(output);
        api(`/api/experiments/${encodeURIComponent(e.id)}/logs`).then((kept) => {
          if (!kept.bytes) return;
          const lines = kept.output.replace(/\n$/, "").split("\n");
          output.replaceChildren(h("h2", {}, "Output"),
            h("p", { class: "muted" }, `The last ${lines.length > 40 ? 40 : lines.length} lines of ${kept.bytes} bytes, as its runner ` +
              `sent them (exp logs ${e.id}).`),
            h("pre", { class: "log" }, lines.slice(-40).join("\n")));
        }).catch(() => {});
      }
      if (e.provenance && Object.keys(e.provenance).length) {
        blocks.push(h("details", {}, h("summary", {}, "Provenance"), h("pre", { class: "log" }, JSON.stringify(e.provenance, null, 2))));
      }
      if (e.runner && Object.keys(e.runner).length) {
        blocks.push(h("details", {}, h("summary", {}, "Runner"), h("pre", { class: "log" }, JSON.stringify(e.runner, null, 2))));
      }
      rest.replaceChildren(...blocks);
    }

    async function drawCharts(prefetched) {
      const [data] = await Promise.all([prefetched || api(`${stepsPath}${full ? "?full=1" : ""}`), loadCharts()]);
      const names = Object.keys(data.series);
      if (!names.length) {
        chartsBox.replaceChildren(h("p", { class: "muted" }, "No step metrics logged."));
        plots.clear();
        return data;
      }
      if (!chartsBox.querySelector(".chart")) chartsBox.replaceChildren(h("h2", {}, "Step metrics"));
      let sampled = false;
      for (const name of names) {
        const s = data.series[name];
        sampled = sampled || s.downsampled;
        let entry = plots.get(name);
        if (!entry || !entry.holder.isConnected) {
          const holder = h("div", { class: "chart", "data-metric": name });
          const note = h("p", { class: "muted chart-note" });
          chartsBox.append(h("figure", {}, holder, note));
          entry = { holder, note, plot: chart(holder, name, s.steps, [s.values], [name]) };
          plots.set(name, entry);
        } else {
          entry.plot.setData([s.steps, s.values]);
        }
        entry.holder.dataset.points = String(s.steps.length);
        markPainted("exp:chart-painted");
        entry.holder.dataset.total = String(s.points);
        entry.note.textContent = s.downsampled ? `${s.points.toLocaleString()} points, ${s.steps.length.toLocaleString()} drawn (min/max per bucket)` : `${s.points.toLocaleString()} points`;
      }
      let toggle = chartsBox.querySelector(".full-toggle");
      if (sampled || full) {
        if (!toggle) {
          toggle = h("button", { type: "button", class: "full-toggle" });
          toggle.addEventListener("click", () => { full = !full; drawCharts(); });
          chartsBox.append(toggle);
        }
        toggle.textContent = full ? "Show downsampled" : "Load every point";
      }
      return data;
    }

    async function load() {
      try {
        const data = await api(`/api/experiments/${encodeURIComponent(id)}`);
        draw(data);
        return data;
      } catch (err) {
        head.append(failure(err));
        return null;
      }
    }

    draw(body);
    await drawCharts(firstSteps).catch((err) => chartsBox.replaceChildren(failure(err)));
    let running = exp.status === "RUNNING";
    every(LIVE_MS, async () => {
      if (!running || document.hidden) return;
      const data = await load();
      if (data) {
        running = data.experiment.status === "RUNNING";
        await drawCharts().catch(() => {});
      }
    });
  }

  function keyValues(label, obj) {
    const entries = Object.entries(obj || {});
    return h("section", { "aria-label": label }, h("h2", {}, label), entries.length
      ? h("table", { class: "facts" }, h("tbody", {}, entries.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", { class: "num" }, value(v))))))
      : h("p", { class: "muted" }, "none"));
  }

  function actions(e, reload) {
    const box = h("div", { class: "actions" });
    const message = h("span", { class: "error", role: "alert" });
    const act = (label, path, body, then) => h("button", {
      type: "button", "data-action": label.toLowerCase().replace(/ /g, "-"),
      onclick: async () => {
        message.textContent = "";
        try {
          const result = await post(path, body ? body() : {});
          if (then) then(result); else reload();
        } catch (err) {
          message.textContent = err.message;
        }
      },
    }, label);
    const base = `/api/experiments/${encodeURIComponent(e.id)}`;
    if (e.status === "QUEUED" || e.status === "RUNNING") box.append(act("Cancel", `${base}/cancel`));
    else box.append(act("Queue again", `${base}/requeue`, null, (r) => { location.href = `/exp/${encodeURIComponent(r.experiment.id)}`; }));
    const tags = h("input", { type: "text", value: (e.tags || []).join(", "), "aria-label": "Tags", size: 24 });
    const summary = h("textarea", { rows: 2, cols: 40, "aria-label": "Summary" });
    summary.value = e.summary || "";
    const editor = h("details", { class: "edit" }, h("summary", {}, "Edit tags and summary"),
      h("label", {}, "Tags ", tags), h("label", {}, "Summary ", summary),
      act("Save", `${base}/edit`, () => ({ tags: tags.value.split(",").map((t) => t.trim()).filter(Boolean), summary: summary.value })));
    box.append(editor, message);
    return box;
  }

  // --- compare ---------------------------------------------------------------------

  async function comparePage() {
    mark("compare");
    const ids = (query().get("ids") || "").split(",").filter(Boolean);
    title(ids.length ? `Compare ${ids.join(", ")}` : "Compare");
    if (ids.length < 2) {
      main.replaceChildren(h("h1", {}, "Compare"), h("p", { class: "muted" }, "Select two or more experiments in the table (x on a row, then c), or open /compare?ids=EXP-001,EXP-002."));
      return;
    }
    let body;
    try {
      body = await api(`/api/compare?ids=${encodeURIComponent(ids.join(","))}`);
    } catch (err) {
      main.replaceChildren(h("h1", {}, "Compare"), failure(err));
      return;
    }
    const runs = body.experiments;
    const showSame = h("input", { type: "checkbox", id: "show-same" });
    const table = h("table", { class: "grid compare", id: "comparison" });
    const chartsBox = h("section", { class: "charts", "aria-label": "Step metrics overlaid" }, h("h2", {}, "Step metrics"));
    main.replaceChildren(h("h1", {}, "Compare"), h("label", { class: "toggle" }, showSame, " show identical params"), table, chartsBox);

    function drawTable() {
      const head = h("tr", {}, h("th", { scope: "col" }, ""), runs.map((e) => h("th", { scope: "col" }, expLink(e.id), " ", badge(e.status), h("div", { class: "name" }, e.name))));
      const rows = [];
      const section = (label) => rows.push(h("tr", { class: "section" }, h("th", { scope: "rowgroup", colspan: runs.length + 1 }, label)));
      section("params");
      for (const [name, values] of Object.entries(body.params.differ)) {
        rows.push(h("tr", { class: "differ" }, h("th", { scope: "row" }, name), runs.map((e) => h("td", { class: "num" }, e.id in values ? value(values[e.id]) : "—"))));
      }
      if (showSame.checked) {
        for (const [name, v] of Object.entries(body.params.same)) rows.push(h("tr", { class: "same" }, h("th", { scope: "row" }, name), runs.map(() => h("td", { class: "num" }, value(v)))));
      }
      section("metrics");
      for (const [name, m] of Object.entries(body.metrics)) {
        rows.push(h("tr", {}, h("th", { scope: "row" }, `${name} ${m.higher_is_better ? "↑" : "↓"}`), runs.map((e) => {
          const best = m.best.includes(e.id);
          const delta = m.delta[e.id];
          return h("td", { class: `num${best ? " best" : ""}` }, e.id in m.values ? value(m.values[e.id]) : "—", best ? " ★" : "",
            delta !== undefined ? h("span", { class: "delta" }, ` (${delta >= 0 ? "+" : ""}${value(delta)})`) : "");
        })));
      }
      rows.push(h("tr", {}, h("th", { scope: "row" }, "outcome"), runs.map((e) => h("td", {}, e.status === "FAILED" ? e.failed_reason : (e.summary || "")))));
      table.replaceChildren(h("thead", {}, head), h("tbody", {}, rows));
    }
    showSame.addEventListener("change", drawTable);
    drawTable();

    const [series] = await Promise.all([
      Promise.all(runs.map((e) => api(`/api/experiments/${encodeURIComponent(e.id)}/steps`).catch(() => ({ series: {} })))),
      loadCharts()]);
    const names = [...new Set(series.flatMap((s) => Object.keys(s.series)))];
    if (!names.length) chartsBox.append(h("p", { class: "muted" }, "None of these runs logged step metrics."));
    for (const name of names) {
      const present = runs.map((e, i) => [e, series[i].series[name]]).filter(([, s]) => s);
      const [xs, columns] = align(present.map(([, s]) => s));
      const holder = h("div", { class: "chart", "data-metric": name, "data-runs": String(present.length), "data-points": String(xs.length) });
      chartsBox.append(h("figure", {}, holder, h("figcaption", { class: "muted chart-note" }, lowerIsBetter(name) ? "lower is better" : "higher is better")));
      chart(holder, name, xs, columns, present.map(([e]) => `${e.id} ${e.name}`));
    }
  }

  // --- queue -----------------------------------------------------------------------

  async function queuePage() {
    mark("queue");
    title("Queue");
    const holder = h("div", { class: "table-holder" });
    const message = h("p", { class: "error", role: "alert" });
    main.replaceChildren(h("h1", {}, "Queue"), h("p", { class: "muted" }, "In the order workers take them: highest priority first, then oldest."), message, holder);
    async function refresh() {
      let body;
      try {
        body = await api("/api/queue");
      } catch (err) {
        holder.replaceChildren(failure(err));
        return;
      }
      if (!body.experiments.length) {
        holder.replaceChildren(h("p", { class: "muted" }, "The queue is empty."));
        return;
      }
      holder.replaceChildren(h("table", { class: "grid", id: "queue" },
        h("thead", {}, h("tr", {}, ["#", "ID", "Priority", "Name", "Task", "Model", "Target", "Command", "Queued", ""].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, body.experiments.map((e, i) => h("tr", { "data-id": e.id },
          h("td", {}, i + 1), h("td", {}, expLink(e.id)), h("td", { class: "num" }, e.priority), h("td", { class: "name" }, e.name),
          h("td", {}, e.task || ""), h("td", {}, e.model || ""), h("td", {}, e.machine || "any"), h("td", {}, e.command ? h("code", {}, e.command) : h("span", { class: "muted" }, "waits for exp run --id")),
          h("td", { title: e.created }, relative(e.created)),
          h("td", {}, h("button", {
            type: "button", "data-action": "cancel", "aria-label": `Cancel ${e.id}`,
            onclick: async () => {
              try { await post(`/api/experiments/${encodeURIComponent(e.id)}/cancel`); message.textContent = ""; refresh(); } catch (err) { message.textContent = err.message; }
            },
          }, "Cancel")))))));
    }
    await refresh();
    every(LIVE_MS * 2, () => { if (!document.hidden) refresh(); });
  }

  // --- keyboard, theme, routing ----------------------------------------------------

  const keys = {};
  const HELP = [["/", "focus the filter"], ["j / k", "next / previous row"], ["x", "select the row"], ["c", "compare the selected"],
    ["n / p", "next / previous page"], ["g e / g q", "experiments / queue"], ["t", "light / dark"], ["?", "this help"]];
  let lastKey = "";

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const typing = event.target.matches("input, textarea, select, [contenteditable]");
    if (typing) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    const handler = keys[route().name];
    if (handler && handler(event)) return;
    if (lastKey === "g" && event.key === "e") location.href = "/";
    else if (lastKey === "g" && event.key === "q") location.href = "/queue";
    else if (event.key === "t") toggleTheme();
    else if (event.key === "?") toggleHelp();
    lastKey = event.key;
  });

  function toggleHelp() {
    const open = document.getElementById("help");
    if (open) { open.remove(); return; }
    document.body.append(h("aside", { id: "help", role: "dialog", "aria-label": "Keyboard shortcuts" },
      h("h2", {}, "Keyboard"), h("dl", {}, HELP.map(([k, what]) => [h("dt", {}, h("kbd", {}, k)), h("dd", {}, what)])),
      h("button", { type: "button", onclick: toggleHelp }, "Close")));
  }

  // The theme: the one chosen with the button (remembered), else the system's.
  const systemDark = matchMedia("(prefers-color-scheme: dark)");

  function applyTheme() {
    document.documentElement.dataset.theme = localStorage.getItem("exp-theme") || (systemDark.matches ? "dark" : "light");
  }

  function toggleTheme() {
    localStorage.setItem("exp-theme", document.documentElement.dataset.theme === "dark" ? "light" : "dark");
    applyTheme();
    render();  // charts take their colours when drawn
  }

  applyTheme();
  systemDark.addEventListener("change", () => { applyTheme(); render(); });
  document.getElementById("theme").addEventListener("click", toggleTheme);

  function route() {
    const path = location.pathname;
    if (path.startsWith("/exp/")) return { name: "exp", run: () => experimentPage(decodeURIComponent(path.slice(5))) };
    if (path === "/compare") return { name: "compare", run: comparePage };
    if (path === "/queue") return { name: "queue", run: queuePage };
    return { name: "table", run: tablePage };
  }

  function render() {
    timers.forEach(clearInterval);
    timers = [];
    for (const { plot } of charts) plot.destroy();
    charts = [];
    for (const name of Object.keys(keys)) delete keys[name];
    return route().run();
  }

  window.addEventListener("popstate", render);
  render();
})();
