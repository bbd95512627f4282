// Live jobs: one card per job, kept current by one Server-Sent Events stream for every job
// still running (`/api/events?jobs=…`: one connection however many jobs, so the browser's
// per-origin connection limit is never reached). Each job's last sequence number is kept, so a
// stream reopened for a changed set of jobs resumes each where it was.

import { ApiFailure, get, post, withToken } from "./api.js";
import { STAGES, h, seconds, shortId, toast } from "./dom.js";

const TERMINAL = new Set(["succeeded", "failed", "canceled"]);
const STATUS_TEXT = {
  queued: "Queued",
  running: "Running",
  succeeded: "Succeeded",
  failed: "Failed",
  canceled: "Canceled",
};
const STEP_TEXT = {
  conditioning: "Conditioning on the image",
  denoising: "Denoising",
  volume_decoding: "Decoding the volume",
  surface_extraction: "Extracting the surface",
  delight: "Removing the lighting",
  multiview_diffusion: "Generating six views",
  baking: "Baking the texture",
};
const NAMES_KEY = "orfeas.studio.names";

function rememberedNames() {
  try {
    return JSON.parse(sessionStorage.getItem(NAMES_KEY) ?? "{}");
  } catch {
    return {};
  }
}

export function nameOf(id) {
  return rememberedNames()[id] ?? `Job ${shortId(id)}`;
}

function rememberName(id, name) {
  const names = rememberedNames();
  names[id] = name;
  sessionStorage.setItem(NAMES_KEY, JSON.stringify(names));
}

/** One job's card: stable elements updated in place, so focus and screen readers keep track. */
class JobCard {
  constructor(job, tracker) {
    this.job = job;
    this.tracker = tracker;
    this.stageEls = new Map();
    const id = job.view.id;
    this.status = h("span", { class: "badge" });
    this.queue = h("p", { class: "queue" });
    this.bar = h("progress", { max: 100, value: 0, "aria-label": `Progress of ${job.name}` });
    this.step = h("p", { class: "step" });
    this.error = h("p", { class: "job-error" });
    this.cancel = h("button", { type: "button", onclick: () => this.doCancel() }, "Cancel");
    this.cancel.setAttribute("aria-label", `Cancel ${job.name}`);
    const stages = h(
      "ol",
      { class: "stages", "aria-label": "Stages" },
      STAGES.map(([key, label]) => {
        const time = h("span", { class: "time" });
        const li = h("li", { class: "stage pending", dataset: { stage: key } }, h("span", { class: "label" }, label), time);
        this.stageEls.set(key, { li, time });
        return li;
      }),
    );
    this.el = h(
      "article",
      { class: "job", dataset: { job: id }, "aria-labelledby": `job-${id}-title` },
      h("header", {}, h("h3", { id: `job-${id}-title` }, h("a", { href: `#/jobs/${id}` }, job.name)), this.status),
      this.queue,
      this.bar,
      this.step,
      stages,
      this.error,
      h("div", { class: "actions" }, this.cancel),
    );
    this.update();
  }

  update() {
    const v = this.job.view;
    this.status.textContent = STATUS_TEXT[v.status] ?? v.status;
    this.status.className = `badge status-${v.status}`;
    this.el.dataset.status = v.status;
    const q = v.queue;
    if (v.status === "queued" && q) {
      // `position` counts the jobs ahead in the engine's queue (0: this one is next).
      const ahead = q.position;
      const pos = ahead === null || ahead === undefined
        ? "Waiting in the queue"
        : ahead === 0 ? "Next in the queue" : `${ahead} ${ahead === 1 ? "job" : "jobs"} ahead in the queue`;
      const eta = q.eta_seconds !== null && q.eta_seconds !== undefined ? ` · starts in about ${seconds(q.eta_seconds)}` : "";
      this.queue.textContent = pos + eta;
    } else if (v.status === "running" && this.job.worker) {
      this.queue.textContent = `On ${this.job.worker}${this.job.batch ? ` in a batch of ${this.job.batch}` : ""}`;
    } else {
      this.queue.textContent = "";
    }
    this.bar.value = v.status === "succeeded" ? 100 : Math.max(0, v.progress ?? 0);
    const s = this.job.step;
    this.step.textContent = s && v.status === "running"
      ? `${STEP_TEXT[s.step] ?? s.step}${s.total ? ` ${s.done} / ${s.total}` : ""}`
      : "";
    const finished = new Map((v.timings ?? []).map((t) => [t.stage, t.seconds]));
    for (const [key, { li, time }] of this.stageEls) {
      let state = "pending";
      if (finished.has(key)) state = "done";
      else if (this.job.failedStage === key) state = "failed";
      else if (v.stage === key && v.status === "running") state = "running";
      li.className = `stage ${state}`;
      li.dataset.state = state;
      time.textContent = finished.has(key) ? seconds(finished.get(key)) : state === "running" ? "running…" : "";
    }
    if (v.error) {
      const meaning = this.tracker.meaning(v.error.code);
      this.error.textContent = `${v.error.message} — ${meaning} (${v.error.code})`;
    } else {
      this.error.textContent = "";
    }
    this.cancel.hidden = TERMINAL.has(v.status) || this.tracker.readOnly;
  }

  async doCancel() {
    this.cancel.disabled = true;
    try {
      await post(`/api/jobs/${this.job.view.id}/cancel`);
    } catch (err) {
      if (!(err instanceof ApiFailure)) throw err;
      toast(`Could not cancel ${this.job.name}: ${err.message}`, { kind: "error" });
    } finally {
      this.cancel.disabled = false;
    }
  }
}

export class Tracker {
  constructor({ caps, readOnly = false }) {
    this.caps = caps;
    this.readOnly = readOnly;
    this.jobs = new Map();
    this.listEl = h("div", { class: "jobs" });
    this.source = null;
    this.streaming = "";
    this.listeners = new Set();
  }

  meaning(code) {
    return this.caps.error_codes.find((c) => c.code === code)?.meaning ?? "";
  }

  /** The list of cards (the generate view shows it). */
  list() {
    return this.listEl;
  }

  /** Another live card for a followed job (the job page shows one beside the list's). */
  cardFor(id) {
    const job = this.jobs.get(id);
    const card = new JobCard(job, this);
    job.cards.push(card);
    return card.el;
  }

  refresh(job) {
    // The list's card stays; other cards are dropped once their page is gone.
    job.cards = job.cards.filter((c, i) => i === 0 || c.el.isConnected);
    for (const c of job.cards) c.update();
    for (const fn of this.listeners) fn(job.view);
  }

  /** Calls `fn(view)` whenever a job changes. */
  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Starts following a job from its view (as `POST /api/jobs` or `GET /api/jobs/{id}` answer). */
  add(view, name = null) {
    if (name) rememberName(view.id, name);
    let job = this.jobs.get(view.id);
    if (job) {
      job.view = view;
      this.refresh(job);
    } else {
      job = { view, name: name ?? nameOf(view.id), seq: 0, step: null, worker: null, batch: null, failedStage: null };
      job.cards = [new JobCard(job, this)];
      this.jobs.set(view.id, job);
      this.listEl.prepend(job.cards[0].el);
    }
    this.restream();
    return job;
  }

  restream() {
    const active = [...this.jobs.values()].filter((j) => !TERMINAL.has(j.view.status)).slice(0, 100);
    const key = active.map((j) => j.view.id).join(",");
    if (key === this.streaming) return;
    this.source?.close();
    this.source = null;
    this.streaming = key;
    if (!key) return;
    const after = active.map((j) => j.seq).join(",");
    const source = new EventSource(withToken(`/api/events?jobs=${key}&after=${after}`));
    for (const kind of ["queued", "started", "stage_started", "stage_finished", "progress", "succeeded", "failed", "canceled"]) {
      source.addEventListener(kind, (e) => this.apply(JSON.parse(e.data)));
    }
    this.source = source;
  }

  apply(event) {
    const job = this.jobs.get(event.job);
    if (!job || event.seq <= job.seq) return;
    job.seq = event.seq;
    const v = job.view;
    const d = event.data;
    switch (event.type) {
      case "queued":
        v.status = "queued";
        v.queue = { position: d.position, eta_seconds: d.eta_seconds };
        break;
      case "started":
        v.status = "running";
        v.attempt = d.attempt;
        job.worker = d.worker;
        job.batch = d.batch_size;
        v.timings = [];
        job.failedStage = null;
        break;
      case "stage_started":
        v.stage = d.stage;
        job.step = null;
        break;
      case "stage_finished":
        if (d.ok) v.timings = [...(v.timings ?? []).filter((t) => t.stage !== d.stage), { stage: d.stage, seconds: d.seconds }];
        else job.failedStage = d.stage;
        break;
      case "progress":
        v.progress = d.percent;
        v.stage = d.stage;
        job.step = d.step ? { step: d.step, done: d.done, total: d.total } : null;
        break;
      case "succeeded":
      case "failed":
      case "canceled":
        this.finish(job, event);
        break;
      default:
        break;
    }
    this.refresh(job);
  }

  /** A terminal event: say so, then read the job's final view (outputs, timings, error). */
  async finish(job, event) {
    const v = job.view;
    v.status = event.type;
    if (event.type === "failed") {
      v.error = { code: event.data.code, message: event.data.message };
      job.failedStage = event.data.stage;
    }
    const link = { href: `#/jobs/${v.id}`, text: "Open" };
    if (event.type === "succeeded") toast(`${job.name} is ready.`, { kind: "success", link });
    if (event.type === "failed") {
      toast(`${job.name} failed: ${this.meaning(event.data.code)} (${event.data.code}).`, { kind: "error", link, ms: 0 });
    }
    if (event.type === "canceled") toast(`${job.name} was canceled.`, { kind: "info" });
    this.restream();
    try {
      job.view = await get(`/api/jobs/${v.id}`);
      this.refresh(job);
    } catch (err) {
      if (!(err instanceof ApiFailure)) throw err;
    }
  }

  /** Submits a finished job again (same stored input and options) and follows the new one;
   *  resolves to its id, or rejects with the API's refusal. */
  async rerun(id) {
    const job = await post(`/api/jobs/${id}/rerun`);
    this.add(job, nameOf(id));
    return job.id;
  }
}

