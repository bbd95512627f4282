// One job: its live card, and once it succeeded the result — an interactive preview of the GLB,
// the cut-out the engine saw, the mesh's statistics, downloads, a share link and a re-run.

import { ApiFailure, get, post, sharing, withToken } from "./api.js";
import { bytes, h, replace, seconds, stageName, when } from "./dom.js";
import { glbStats } from "./glb.js";
import { nameOf } from "./tracker.js";

const VIEWER = "/studio/vendor/model-viewer.min.js";
const SEGMENTATION_TEXT = {
  alpha: "the image's own transparency",
  plain_background: "a plain background model",
  u2net: "the U²-Net segmentation model",
  classic: "saliency and graph cuts (weights-free)",
  whole_image: "the whole image (no background removal)",
};

function optionRows(options) {
  return Object.entries(options)
    .filter(([, v]) => v !== null && v !== undefined && !(Array.isArray(v) && v.length === 0))
    .map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : typeof v === "object" ? JSON.stringify(v) : String(v)]);
}

export class JobView {
  constructor({ id, tracker, navigate }) {
    this.id = id;
    this.tracker = tracker;
    this.navigate = navigate;
    this.objectUrl = null;
    this.shown = null;
  }

  render() {
    this.body = h("div", { class: "job-page" }, h("p", {}, "Loading…"));
    this.root = h("div", { class: "view job-view" }, h("h1", { id: "job-title" }, nameOf(this.id)), this.body);
    this.load();
    return this.root;
  }

  leave() {
    this.unsubscribe?.();
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
  }

  async load() {
    let view;
    try {
      view = await get(`/api/jobs/${this.id}`);
    } catch (err) {
      if (!(err instanceof ApiFailure)) throw err;
      if (err.status === 401) return this.navigate("#/signin");
      replace(this.body, h("p", { class: "form-error", role: "alert" }, `${err.message} (${err.code})`));
      return;
    }
    this.tracker.add(view);
    this.result = h("div", { class: "result" });
    replace(this.body, this.tracker.cardFor(this.id), this.result);
    this.unsubscribe = this.tracker.subscribe((v) => {
      if (v.id === this.id) this.showResult(v);
    });
    this.showResult(view);
  }

  showResult(view) {
    // Rendered once per state that changes what it holds (succeeded with outputs, or ended).
    const state = `${view.status}:${view.outputs?.length ?? 0}`;
    if (this.shown === state) return;
    this.shown = state;
    const details = this.details(view);
    if (view.status !== "succeeded" || !view.outputs?.length) {
      replace(this.result, details);
      return;
    }
    const glb = view.outputs.find((o) => o.artifact === "glb");
    const cutout = view.outputs.find((o) => o.artifact === "cutout");
    const stats = h("dl", { class: "stats", "aria-label": "Mesh statistics" });
    const preview = h("div", { class: "preview" });
    const downloads = h(
      "ul",
      { class: "downloads", "aria-label": "Downloads" },
      view.outputs.map((o) =>
        h("li", {}, h("a", {
          class: "button",
          href: withToken(o.url),
          download: `${nameOf(this.id).replace(/\.[a-z]+$/i, "")}.${o.format}`,
          dataset: { artifact: o.artifact },
        }, o.artifact === "cutout" ? "Download cut-out (PNG)" : `Download ${o.format.toUpperCase()}`)),
      ),
    );
    replace(
      this.result,
      h("section", { class: "panel", "aria-labelledby": "result-title" },
        h("h2", { id: "result-title" }, "Result"),
        h("div", { class: "result-grid" },
          preview,
          h("div", { class: "beside" },
            cutout ? h("figure", {}, h("img", { src: withToken(cutout.url), alt: "The cut-out the engine saw", class: "cutout" }),
              h("figcaption", {}, "The cut-out the engine saw")) : null,
            stats,
            downloads,
            sharing() ? null : this.actions(view))),
      ),
      details,
    );
    if (glb) this.preview(glb, preview, stats);
    else replace(preview, h("p", {}, "No GLB was requested, so there is no preview."));
  }

  async preview(glb, box, stats) {
    replace(box, h("p", {}, "Loading the preview…"));
    let buffer;
    try {
      const resp = await fetch(withToken(glb.url), { credentials: "same-origin" });
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      buffer = await resp.arrayBuffer();
    } catch (err) {
      replace(box, h("p", { class: "form-error" }, `The mesh could not be loaded: ${err.message}`));
      return;
    }
    try {
      const s = glbStats(buffer);
      const colour = s.textured ? "baked texture" : s.vertexColours ? "vertex colours" : "none";
      replace(stats,
        h("dt", {}, "Vertices"), h("dd", { dataset: { stat: "vertices" } }, s.vertices.toLocaleString()),
        h("dt", {}, "Faces"), h("dd", { dataset: { stat: "faces" } }, s.faces.toLocaleString()),
        h("dt", {}, "Colour"), h("dd", { dataset: { stat: "colour" } }, colour),
        h("dt", {}, "GLB size"), h("dd", { dataset: { stat: "bytes" } }, bytes(s.bytes)));
    } catch (err) {
      replace(stats, h("p", { class: "form-error" }, `Unreadable GLB: ${err.message}`));
    }
    await import(VIEWER);
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    this.objectUrl = URL.createObjectURL(new Blob([buffer], { type: "model/gltf-binary" }));
    const viewer = h("model-viewer", {
      src: this.objectUrl,
      alt: `3D preview of ${nameOf(this.id)}; drag to rotate, scroll to zoom`,
      "camera-controls": true,
      "shadow-intensity": "0.6",
      exposure: "1.1",
      "interaction-prompt": "none",
      "touch-action": "pan-y",
      tabindex: "0",
    });
    viewer.addEventListener("load", () => { box.dataset.loaded = "true"; });
    viewer.addEventListener("error", () => replace(box, h("p", { class: "form-error" }, "The preview could not render this mesh.")));
    replace(box, viewer);
  }

  actions(view) {
    const shareOut = h("div", { class: "share" });
    const share = h("button", {
      type: "button",
      onclick: async () => {
        try {
          const links = await post(`/api/jobs/${view.id}/share?ttl_s=604800`);
          const url = `${location.origin}/#/jobs/${view.id}?token=${encodeURIComponent(links.token)}`;
          const input = h("input", { type: "text", readonly: true, value: url, id: "share-url", class: "share-url" });
          replace(shareOut,
            h("label", { for: "share-url" }, `Read-only link, valid until ${when(links.expires_at)}`),
            input,
            h("button", { type: "button", onclick: () => navigator.clipboard?.writeText(url) }, "Copy"));
          input.select();
        } catch (err) {
          if (!(err instanceof ApiFailure)) throw err;
          replace(shareOut, h("p", { class: "form-error", role: "alert" }, err.message));
        }
      },
    }, "Share…");
    const rerun = h("button", {
      type: "button",
      onclick: async () => {
        try {
          this.navigate(`#/jobs/${await this.tracker.rerun(view.id)}`);
        } catch (err) {
          if (!(err instanceof ApiFailure)) throw err;
          replace(shareOut, h("p", { class: "form-error", role: "alert" }, `${err.message} (${err.code})`));
        }
      },
    }, "Run again");
    return h("div", { class: "job-actions" }, h("div", { class: "actions" }, share, rerun), shareOut);
  }

  details(view) {
    const seg = view.segmentation;
    return h("section", { class: "panel", "aria-labelledby": "details-title" },
      h("h2", { id: "details-title" }, "Details"),
      h("dl", { class: "details" },
        h("dt", {}, "Job"), h("dd", {}, view.id),
        h("dt", {}, "Submitted"), h("dd", {}, when(view.created_at)),
        h("dt", {}, "Finished"), h("dd", {}, when(view.finished_at)),
        h("dt", {}, "Attempt"), h("dd", {}, String(view.attempt)),
        seg ? [h("dt", {}, "Object found by"), h("dd", {}, `${SEGMENTATION_TEXT[seg.method] ?? seg.method}, ${(seg.mask_share * 100).toFixed(1)} % of the image`)] : null,
        view.weights?.engine ? [h("dt", {}, "Weights"), h("dd", {}, `${view.weights.engine.name} (${view.weights.engine.sha256.slice(0, 12)})`)] : null),
      view.timings?.length
        ? h("table", { class: "timings" },
          h("caption", {}, "Stage timings"),
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Stage"), h("th", { scope: "col" }, "Time"), h("th", { scope: "col" }, "Device"), h("th", { scope: "col" }, "Batch"))),
          h("tbody", {}, view.timings.map((t) => h("tr", {}, h("th", { scope: "row" }, stageName(t.stage)), h("td", {}, seconds(t.seconds)), h("td", {}, t.device), h("td", {}, String(t.batch_size))))))
        : null,
      h("details", {}, h("summary", {}, "Options"),
        h("dl", { class: "details" }, optionRows(view.options).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))));
  }
}
