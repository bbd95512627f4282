// Operators (admin keys): the performance summary as charts, the recommendations with the
// figures behind them, each device's status with trend sparklines and the optimizer's reasoning,
// and the live workers. Everything is read from the operator endpoints the API documents.

import { ApiFailure, get } from "./api.js";
import { barChart, sparkline } from "./charts.js";
import { bytes, h, replace, seconds, stageName, when } from "./dom.js";

const WINDOWS = ["1h", "6h", "24h", "7d", "30d"];

function figure(label, value, key) {
  return h("div", { class: "figure", dataset: { figure: key } }, h("span", { class: "figure-value" }, value), h("span", { class: "figure-label" }, label));
}

function evidence(value) {
  if (value === null || typeof value !== "object") return String(value);
  return h("dl", { class: "evidence" }, Object.entries(value).map(([k, v]) => [
    h("dt", {}, k.replaceAll("_", " ")),
    h("dd", {}, typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : typeof v === "object" ? JSON.stringify(v) : String(v)),
  ]));
}

export class OperatorsView {
  constructor({ navigate }) {
    this.navigate = navigate;
    this.window = "24h";
  }

  render() {
    const pick = h("select", { id: "ops-window", onchange: () => {
      this.window = pick.value;
      this.load();
    } }, WINDOWS.map((w) => h("option", { value: w, selected: w === this.window }, w)));
    this.body = h("div", { class: "ops-body" }, h("p", {}, "Loading…"));
    this.load();
    return h("div", { class: "view operators" },
      h("h1", {}, "Operators"),
      h("div", { class: "toolbar" }, h("label", { for: "ops-window" }, "Window"), pick,
        h("button", { type: "button", onclick: () => this.load() }, "Refresh")),
      this.body);
  }

  async load() {
    let summary, recs, gpu, workers;
    try {
      [summary, recs, gpu, workers] = await Promise.all([
        get(`/api/performance/summary?window=${this.window}`),
        get(`/api/performance/recommendations?window=${this.window}`),
        get("/api/gpu/status"),
        get("/api/workers"),
      ]);
    } catch (err) {
      if (!(err instanceof ApiFailure)) throw err;
      if (err.status === 401) return this.navigate("#/signin");
      replace(this.body, h("p", { class: "form-error", role: "alert" }, `${err.message} (${err.code})`));
      return;
    }
    replace(this.body, this.summary(summary), this.recommendations(recs), this.devices(gpu, workers.workers), this.workers(workers.workers));
  }

  summary(s) {
    const slowest = [...s.stages].sort((a, b) => b.share_percent - a.share_percent)[0];
    const stages = barChart({
      id: "stages",
      title: "Share of pipeline time by stage",
      rows: s.stages.map((st) => ({
        key: st.stage,
        label: stageName(st.stage),
        value: st.share_percent,
        text: `${st.share_percent.toFixed(1)} % · ${seconds(st.average_seconds)}`,
        highlight: st === slowest,
      })),
    });
    const times = barChart({
      id: "durations",
      title: "Pipeline time",
      rows: [
        ["average_seconds", "Average", s.duration.average_seconds],
        ["p50_seconds", "Median (p50)", s.duration.p50_seconds],
        ["p95_seconds", "p95", s.duration.p95_seconds],
      ].map(([key, label, v]) => ({ key, label, value: v, text: seconds(v) })),
      empty: "No finished jobs in this window.",
    });
    const failures = barChart({
      id: "failures",
      title: "Failures by code",
      rows: s.failures.map(([code, n]) => ({ key: code, label: code, value: n, text: String(n) })),
      empty: "No failures in this window.",
    });
    return h("section", { class: "panel", "aria-labelledby": "ops-summary" },
      h("h2", { id: "ops-summary" }, "Performance"),
      h("div", { class: "figures" },
        figure("pipelines run", String(s.total_pipelines), "total_pipelines"),
        figure("average time", seconds(s.avg_duration), "avg_duration"),
        figure("failed", String(s.failed), "failed"),
        figure("canceled", String(s.canceled), "canceled"),
        figure("queue wait p95", seconds(s.queue_wait.p95_seconds), "queue_wait_p95"),
        figure("average batch", s.average_batch_size.toFixed(2), "average_batch_size")),
      slowest ? h("p", { class: "slowest", dataset: { stage: slowest.stage } },
        `Slowest stage: ${slowest.stage} (${slowest.share_percent.toFixed(1)} %)`) : null,
      s.bottlenecks.length ? h("ul", { class: "bottlenecks", "aria-label": "Bottlenecks" }, s.bottlenecks.map((b) =>
        h("li", {}, h("span", { class: `badge severity-${b.severity}` }, b.severity), ` ${stageName(b.stage)}: ${b.avg_percent.toFixed(1)} % of the time`))) : null,
      h("div", { class: "charts" }, stages, times, failures));
  }

  recommendations(r) {
    return h("section", { class: "panel", "aria-labelledby": "ops-recs" },
      h("h2", { id: "ops-recs" }, "Recommendations"),
      r.details.length
        ? h("ul", { class: "recs" }, r.details.map((d) => h("li", { class: "rec", dataset: { rule: d.id } },
          h("p", {}, h("span", { class: `badge severity-${d.severity}` }, d.severity), " ", d.advice),
          h("details", {}, h("summary", {}, "Evidence"), evidence(d.evidence)))))
        : h("p", {}, "Nothing to recommend: the measurements look healthy."));
  }

  devices(gpu, workers) {
    const byId = new Map(workers.map((w) => [w.id, w]));
    return h("section", { class: "panel", "aria-labelledby": "ops-devices" },
      h("h2", { id: "ops-devices" }, "Devices"),
      h("div", { class: "figures" },
        figure("memory in use", `${bytes(gpu.memory.used_bytes)} of ${bytes(gpu.memory.total_bytes)}`, "memory"),
        figure("utilisation", `${gpu.trends.avg_utilization.toFixed(1)} %`, "utilization"),
        figure("memory trend", gpu.trends.trend, "trend"),
        figure("jobs in flight", String(gpu.fleet.jobs_in_flight), "jobs_in_flight")),
      gpu.recommendations.length ? h("ul", { class: "advice" }, gpu.recommendations.map((t) => h("li", {}, t))) : null,
      gpu.devices.length
        ? h("div", { class: "device-grid" }, gpu.devices.map((d) => {
          const samples = byId.get(d.worker_id)?.samples ?? [];
          return h("article", { class: "device", dataset: { worker: d.worker_id } },
            h("h3", {}, `${d.worker_id} · ${d.device}`),
            h("p", {}, `Memory ${bytes(d.memory_used_bytes)} of ${bytes(d.memory_total_bytes)} (${d.memory_used_percent.toFixed(1)} %), utilisation ${d.utilization_percent.toFixed(1)} %, trend ${d.trend}`),
            h("div", { class: "sparks" },
              h("span", {}, "Memory"), sparkline(samples.map((x) => x.memory_used_bytes), { label: "Memory in use", format: bytes, max: d.memory_total_bytes || null }),
              h("span", {}, "Utilisation"), sparkline(samples.map((x) => x.utilization * 100), { label: "Utilisation", format: (v) => `${v.toFixed(0)} %`, max: 100 })),
            h("p", {}, `Batch size ${d.batch_size}, ${d.current_batch} running now`),
            d.optimizer_reasoning ? h("p", { class: "reasoning" }, `Optimizer: ${d.optimizer_reasoning}`) : null,
            d.advice ? h("p", { class: "advice" }, d.advice) : null);
        }))
        : h("p", {}, "No live workers."));
  }

  workers(list) {
    return h("section", { class: "panel", "aria-labelledby": "ops-workers" },
      h("h2", { id: "ops-workers" }, "Live workers"),
      list.length
        ? h("div", { class: "scroll" }, h("table", { class: "workers" },
          h("thead", {}, h("tr", {}, ["Worker", "Engine", "Device", "Healthy", "Jobs done", "Running", "Last seen"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, list.map((w) => h("tr", { dataset: { worker: w.id } },
            h("th", { scope: "row" }, w.id), h("td", {}, w.engine), h("td", {}, w.device),
            h("td", {}, w.healthy ? "yes" : "no"), h("td", {}, String(w.jobs_done)),
            h("td", {}, String(w.current_batch.length)), h("td", {}, when(w.last_seen)))))))
        : h("p", {}, "No live workers."));
  }
}
