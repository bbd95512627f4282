// Small DOM helpers shared by the views: element building, formatting, toasts.

/** Builds an element: h("a", {href: "#/"}, "text", child, …). `on*` attributes become listeners;
 *  `null`/`false` attributes and children are skipped. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** An SVG element (charts). */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) el.setAttribute(name, String(value));
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function seconds(s) {
  if (s === null || s === undefined || Number.isNaN(s)) return "–";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

export function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return `${v.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}

export function when(iso) {
  if (!iso) return "–";
  return new Date(iso).toLocaleString();
}

export function shortId(id) {
  return id.slice(0, 8);
}

/** Human names of the five stages, in order (the API's names are the keys). */
export const STAGES = [
  ["image_loading", "Image loading"],
  ["image_preprocessing", "Background removal & recentering"],
  ["shape_generation", "Shape generation"],
  ["texture_synthesis", "Texture synthesis"],
  ["mesh_export", "Mesh export"],
];

export function stageName(stage) {
  return STAGES.find(([k]) => k === stage)?.[1] ?? stage;
}

/** A message in the live region at the bottom right; it stays until dismissed or for `ms`. */
export function toast(text, { kind = "info", ms = 8000, link = null } = {}) {
  const box = document.getElementById("toasts");
  const item = h(
    "div",
    { class: `toast toast-${kind}` },
    h("p", {}, text),
    link ? h("a", { href: link.href }, link.text) : null,
    h("button", { type: "button", class: "link", onclick: () => item.remove() }, "Dismiss"),
  );
  box.append(item);
  if (ms) setTimeout(() => item.remove(), ms);
  return item;
}

/** Replaces a container's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}
