// Generate: pick images (drop, browse or paste), choose options, submit one job per image.
// The API is the one judge of the options: the form does not validate them itself (novalidate),
// and a 422 naming an option is shown at that option.

import { ApiFailure, post } from "./api.js";
import { bytes, h, replace } from "./dom.js";

const ENGINE_HINTS = {
  inflate: "Weights-free: inflates the object's silhouette into a closed solid. Fast on any CPU.",
  hunyuan3d: "Tencent's Hunyuan3D-2 shape model: real 3D shape from one image. Needs a GPU worker for good speed.",
};
const TEXTURE_HINTS = {
  uv: "Bakes the image into a UV texture (front and mirrored back view).",
  vertex: "Colours each vertex from the image: smaller files, softer detail.",
  paint: "Hunyuan3D-Paint: removes the lighting and generates six views before baking. Slowest, best colour.",
  none: "Geometry only.",
};
const BACKGROUND_HINTS = {
  auto: "Use the image's transparency when it has some, else find the object.",
  always: "Always find the object, even in an image with transparency.",
  never: "Keep the whole image (or its transparency) as the object.",
};
const ACCEPT = "image/png,image/jpeg,image/webp";

function hintFor(table, value) {
  return table[value] ?? "";
}

/** One labelled control with its hint and the slot where the API's complaint about it goes. */
function field(name, label, control, hint = "") {
  control.id = `opt-${name}`;
  control.name = name;
  control.setAttribute("aria-describedby", `opt-${name}-hint opt-${name}-error`);
  return h(
    "div",
    { class: "field", dataset: { field: name } },
    h("label", { for: control.id }, label),
    control,
    h("p", { class: "hint", id: `opt-${name}-hint` }, hint),
    h("p", { class: "field-error", id: `opt-${name}-error` }),
  );
}

function select(values, selected) {
  return h("select", {}, values.map((v) => h("option", { value: v, selected: v === selected }, v)));
}

function number(value, bounds, step = 1) {
  return h("input", {
    type: "number",
    inputmode: step === 1 ? "numeric" : "decimal",
    value: value ?? "",
    min: bounds?.min,
    max: bounds?.max,
    step,
  });
}

export class GenerateView {
  constructor({ caps, tracker, navigate }) {
    this.caps = caps;
    this.tracker = tracker;
    this.navigate = navigate;
    this.files = [];
    this.onPaste = (e) => this.paste(e);
  }

  render() {
    const caps = this.caps;
    const d = caps.defaults;
    const o = caps.options;
    this.input = h("input", {
      type: "file",
      id: "images",
      multiple: true,
      accept: ACCEPT,
      class: "visually-hidden",
      onchange: () => {
        this.add([...this.input.files]);
        this.input.value = "";
      },
    });
    this.thumbs = h("ul", { class: "thumbs", "aria-label": "Images to submit" });
    const drop = h(
      "div",
      { class: "drop", id: "drop" },
      this.input,
      h("p", {}, "Drop images here, paste one, or"),
      h("label", { for: "images", class: "button" }, "Choose images…"),
      h("p", { class: "hint" }, `PNG, JPEG or WebP, up to ${bytes(caps.max_upload_bytes)} each. One job per image.`),
    );
    drop.addEventListener("dragover", (e) => {
      e.preventDefault();
      drop.classList.add("over");
    });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      this.add([...(e.dataTransfer?.files ?? [])]);
    });

    const engine = select(caps.engines, d.engine);
    const engineHint = h("p", { class: "hint", id: "opt-engine-hint" }, hintFor(ENGINE_HINTS, d.engine));
    const texture = select(caps.texture_modes, d.texture);
    const background = select(caps.background_modes, d.remove_background);
    const hunyuan = h(
      "fieldset",
      { class: "engine-options", id: "hunyuan3d-options" },
      h("legend", {}, "Hunyuan3D-2"),
      field("steps", "Denoising steps", number(null, o.steps), `Empty: the checkpoint's own (5 for turbo, 50 for v2-0). ${o.steps.min}–${o.steps.max}.`),
      field("guidance_scale", "Guidance scale", number(d.guidance_scale, o.guidance_scale, 0.5), "How closely the shape follows the image (5 is the model's default)."),
      field(
        "octree_resolution",
        "Resolution",
        select(
          [128, 192, 256, 384, 512].filter((r) => r >= o.octree_resolution.min && r <= o.octree_resolution.max).map(String),
          String(d.octree_resolution),
        ),
        "Grid the surface is extracted from: higher is finer and slower (time grows with its cube).",
      ),
    );
    const inflate = h(
      "fieldset",
      { class: "engine-options", id: "inflate-options" },
      h("legend", {}, "Inflate"),
      field("inflation", "Thickness", number(d.inflation, o.inflation, 0.05), "1 is as thick as a body of revolution; smaller is flatter."),
    );
    const textureSize = field(
      "texture_size",
      "Texture size",
      select(["512", "1024", "2048", "4096"], String(d.texture_size)),
      "Side of the baked texture in texels.",
    );
    const formats = h(
      "fieldset",
      { class: "formats", id: "opt-formats", "aria-describedby": "opt-formats-error" },
      h("legend", {}, "Formats"),
      caps.formats.map((f) =>
        h("label", { class: "check" }, h("input", { type: "checkbox", name: "formats", value: f, checked: d.formats.includes(f) }), ` ${f.toUpperCase()}`),
      ),
      h("p", { class: "hint" }, "GLB is what the preview shows."),
      h("p", { class: "field-error", id: "opt-formats-error" }),
    );
    const sync = () => {
      engineHint.textContent = hintFor(ENGINE_HINTS, engine.value);
      hunyuan.hidden = engine.value !== "hunyuan3d";
      inflate.hidden = engine.value !== "inflate";
      textureSize.hidden = texture.value !== "uv";
      document.getElementById("opt-texture-hint").textContent = hintFor(TEXTURE_HINTS, texture.value);
      document.getElementById("opt-remove_background-hint").textContent = hintFor(BACKGROUND_HINTS, background.value);
    };
    engine.addEventListener("change", sync);
    texture.addEventListener("change", sync);
    background.addEventListener("change", sync);

    this.formError = h("div", { class: "form-error", role: "alert" });
    this.submitButton = h("button", { type: "submit", class: "primary", disabled: true }, "Generate");
    this.form = h(
      "form",
      { novalidate: true, onsubmit: (e) => this.submit(e), "aria-labelledby": "generate-title" },
      drop,
      this.thumbs,
      h(
        "div",
        { class: "options" },
        h("div", { class: "field", dataset: { field: "engine" } },
          h("label", { for: "opt-engine" }, "Engine"),
          Object.assign(engine, { id: "opt-engine", name: "engine" }),
          engineHint,
          h("p", { class: "field-error", id: "opt-engine-error" })),
        inflate,
        hunyuan,
        field("face_count", "Face budget", number(d.face_count, { min: 0, max: o.face_count.max }), "Fewer faces preview faster; 0 keeps every face."),
        field("texture", "Texture", texture, hintFor(TEXTURE_HINTS, d.texture)),
        textureSize,
        field("remove_background", "Background removal", background, hintFor(BACKGROUND_HINTS, d.remove_background)),
        field("seed", "Seed", number(d.seed, { min: 0 }), "The same seed and image give the same mesh."),
        formats,
        h("label", { class: "check" }, h("input", { type: "checkbox", name: "cutout", id: "opt-cutout", checked: true }), " Keep the cut-out the engine saw"),
      ),
      this.formError,
      h("div", { class: "actions" }, this.submitButton),
    );
    engine.setAttribute("aria-describedby", "opt-engine-hint opt-engine-error");
    this.live = h("section", { "aria-labelledby": "live-title", class: "live" },
      h("h2", { id: "live-title" }, "Your jobs"),
      this.tracker.list());
    const root = h(
      "div",
      { class: "view generate" },
      h("h1", { id: "generate-title" }, "Generate 3D meshes"),
      this.form,
      this.live,
    );
    queueMicrotask(sync);
    document.addEventListener("paste", this.onPaste);
    return root;
  }

  leave() {
    document.removeEventListener("paste", this.onPaste);
    for (const f of this.files) URL.revokeObjectURL(f.url);
  }

  paste(e) {
    const files = [...(e.clipboardData?.items ?? [])]
      .filter((i) => i.kind === "file")
      .map((i) => i.getAsFile())
      .filter(Boolean);
    if (files.length) {
      e.preventDefault();
      this.add(files.map((f, i) => (f.name && f.name !== "image.png" ? f : new File([f], `pasted-${Date.now()}-${i}.png`, { type: f.type }))));
    }
  }

  add(files) {
    const limit = this.caps.max_upload_bytes;
    for (const file of files) {
      // The API would refuse it (413) after the whole upload; say so before sending it.
      const error = file.size > limit ? `Over the upload limit of ${bytes(limit)}.` : null;
      this.files.push({ file, url: URL.createObjectURL(file), error });
    }
    this.renderThumbs();
  }

  renderThumbs() {
    replace(
      this.thumbs,
      this.files.map((item, i) =>
        h(
          "li",
          { class: item.error ? "thumb has-error" : "thumb" },
          h("img", {
            src: item.url,
            alt: "",
            width: 96,
            height: 96,
            // A file the browser cannot show either: say so instead of a broken-image icon.
            onerror: (e) => e.target.replaceWith(h("span", { class: "no-preview" }, "No preview")),
          }),
          h("span", { class: "name" }, item.file.name),
          h("span", { class: "size" }, bytes(item.file.size)),
          item.error ? h("p", { class: "thumb-error", role: "alert" }, item.error) : null,
          h("button", {
            type: "button",
            class: "link",
            "aria-label": `Remove ${item.file.name}`,
            onclick: () => {
              URL.revokeObjectURL(item.url);
              this.files.splice(i, 1);
              this.renderThumbs();
            },
          }, "Remove"),
        ),
      ),
    );
    // During a 429's wait the countdown owns the button.
    if (this.holding) return;
    const n = this.files.length;
    this.submitButton.disabled = n === 0;
    this.submitButton.textContent = n > 1 ? `Generate ${n} meshes` : "Generate";
  }

  options() {
    const f = new FormData(this.form);
    const engine = f.get("engine");
    const text = (name) => (f.get(name) ?? "").toString().trim();
    const num = (name) => (text(name) === "" ? undefined : Number(text(name)));
    const opts = {
      engine,
      seed: num("seed"),
      face_count: num("face_count"),
      formats: f.getAll("formats"),
      texture: text("texture"),
      remove_background: text("remove_background"),
      cutout: f.get("cutout") === "on",
    };
    if (opts.texture === "uv") opts.texture_size = num("texture_size");
    if (engine === "inflate") opts.inflation = num("inflation");
    if (engine === "hunyuan3d") {
      opts.steps = num("steps");
      opts.guidance_scale = num("guidance_scale");
      opts.octree_resolution = num("octree_resolution");
    }
    return opts;
  }

  clearErrors() {
    this.formError.replaceChildren();
    for (const el of this.form.querySelectorAll(".field-error")) el.textContent = "";
    for (const el of this.form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  }

  showFieldError(err) {
    const slot = document.getElementById(`opt-${err.field}-error`);
    const control = document.getElementById(`opt-${err.field}`);
    if (!slot) return false;
    slot.textContent = err.message;
    control?.setAttribute("aria-invalid", "true");
    control?.focus();
    return true;
  }

  async submit(e) {
    e.preventDefault();
    this.clearErrors();
    const opts = this.options();
    if (opts.formats.length === 0) {
      this.showFieldError({ field: "formats", message: "Choose at least one format." });
      return;
    }
    this.submitButton.disabled = true;
    const pending = this.files.filter((f) => f.file.size <= this.caps.max_upload_bytes);
    for (const item of pending) {
      const form = new FormData();
      form.append("image", item.file, item.file.name);
      form.append("options", JSON.stringify(opts));
      try {
        const job = await post("/api/jobs", {
          form,
          // A retried submission of the same pick never makes a second job.
          headers: { "Idempotency-Key": (item.key ??= crypto.randomUUID()) },
        });
        this.files.splice(this.files.indexOf(item), 1);
        URL.revokeObjectURL(item.url);
        this.tracker.add(job, item.file.name);
      } catch (err) {
        if (!(err instanceof ApiFailure)) throw err;
        if (err.field && err.field !== "image" && this.showFieldError(err)) break;
        if (err.status === 429 || err.status === 503) {
          const wait = err.retryAfter ? ` Try again in ${err.retryAfter} s.` : "";
          this.formError.replaceChildren(h("p", {}, `${err.message}.${wait}`));
          if (err.retryAfter) this.holdSubmit(err.retryAfter);
          break;
        }
        if (err.status === 401) {
          this.navigate("#/signin");
          return;
        }
        item.error = `${err.message} (${err.code})`;
      }
    }
    this.renderThumbs();
  }

  /** After a 429, the button says how long until the API takes more. */
  holdSubmit(secs) {
    let left = secs;
    this.holding = true;
    const tick = () => {
      if (!this.submitButton.isConnected) return;
      if (left <= 0) {
        this.holding = false;
        this.renderThumbs();
        return;
      }
      this.submitButton.disabled = true;
      this.submitButton.textContent = `Wait ${left} s`;
      left -= 1;
      setTimeout(tick, 1000);
    };
    tick();
  }
}
