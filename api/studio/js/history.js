// History: the key's jobs, newest first, filtered by status, one page at a time (the API's
// keyset cursor; the cursors of earlier pages are kept so "Previous" goes back).

import { ApiFailure, get } from "./api.js";
import { h, replace, seconds, when } from "./dom.js";
import { nameOf } from "./tracker.js";

const STATUSES = ["", "queued", "running", "succeeded", "failed", "canceled"];
const PAGE = 20;

function duration(v) {
  if (!v.started_at || !v.finished_at) return "–";
  return seconds((new Date(v.finished_at) - new Date(v.started_at)) / 1000);
}

export class HistoryView {
  constructor({ tracker, navigate, params }) {
    this.tracker = tracker;
    // `#/history?limit=N` sets the page size (1–100).
    this.limit = Math.min(100, Math.max(1, Number.parseInt(params?.get("limit") ?? "", 10) || PAGE));
    this.navigate = navigate;
    this.cursors = [null];
    this.status = "";
  }

  render() {
    const filter = h("select", { id: "history-status", onchange: () => {
      this.status = filter.value;
      this.cursors = [null];
      this.load();
    } }, STATUSES.map((s) => h("option", { value: s }, s || "all")));
    this.table = h("div", { class: "history-table" });
    this.prev = h("button", { type: "button", onclick: () => {
      this.cursors.pop();
      this.load();
    } }, "Previous page");
    this.next = h("button", { type: "button", onclick: () => {
      this.cursors.push(this.nextCursor);
      this.load();
    } }, "Next page");
    this.pageNote = h("span", { class: "page-note", "aria-live": "polite" });
    this.load();
    return h("div", { class: "view history" },
      h("h1", {}, "History"),
      h("div", { class: "toolbar" }, h("label", { for: "history-status" }, "Status"), filter),
      this.table,
      h("div", { class: "actions pager" }, this.prev, this.pageNote, this.next));
  }

  async load() {
    const cursor = this.cursors.at(-1);
    const q = new URLSearchParams({ limit: String(this.limit) });
    if (this.status) q.set("status", this.status);
    if (cursor) q.set("cursor", cursor);
    let page;
    try {
      page = await get(`/api/jobs?${q}`);
    } catch (err) {
      if (!(err instanceof ApiFailure)) throw err;
      if (err.status === 401) return this.navigate("#/signin");
      replace(this.table, h("p", { class: "form-error", role: "alert" }, err.message));
      return;
    }
    this.nextCursor = page.next_cursor;
    this.next.disabled = !page.next_cursor;
    this.prev.disabled = this.cursors.length <= 1;
    this.pageNote.textContent = `Page ${this.cursors.length}`;
    if (!page.jobs.length) {
      replace(this.table, h("p", {}, "No jobs yet."));
      return;
    }
    replace(this.table, h("table", {},
      h("caption", { class: "visually-hidden" }, "Your jobs, newest first"),
      h("thead", {}, h("tr", {}, ["Job", "Status", "Engine", "Submitted", "Run time", ""].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, page.jobs.map((v) => h("tr", { dataset: { job: v.id } },
        h("th", { scope: "row" }, h("a", { href: `#/jobs/${v.id}` }, nameOf(v.id))),
        h("td", {}, h("span", { class: `badge status-${v.status}` }, v.status)),
        h("td", {}, v.options.engine),
        h("td", {}, when(v.created_at)),
        h("td", {}, duration(v)),
        h("td", {}, v.deleted_at ? "" : h("button", {
          type: "button",
          class: "link",
          "aria-label": `Run again: ${nameOf(v.id)}`,
          onclick: () => this.rerun(v),
        }, "Run again")))))));
  }

  async rerun(v) {
    try {
      this.navigate(`#/jobs/${await this.tracker.rerun(v.id)}`);
    } catch (err) {
      if (!(err instanceof ApiFailure)) throw err;
      replace(this.pageNote, `${err.message} (${err.code})`);
    }
  }
}
