// Charts: horizontal bars with their figures written beside them (HTML), and sparklines (SVG).
// Every bar carries its key and value as data attributes and its figure as text, so what a chart
// shows can be read back (by a screen reader, or a test).

import { h, svg } from "./dom.js";

/** A horizontal bar chart in HTML, so its text keeps the page's size at any width.
 *  rows: [{key, label, value, text, highlight}] */
export function barChart({ id, title, rows, empty = "Nothing to show yet." }) {
  const fig = h("figure", { class: "chart", dataset: { chart: id } }, h("figcaption", {}, title));
  if (!rows.length) {
    fig.append(h("p", { class: "empty" }, empty));
    return fig;
  }
  const max = Math.max(...rows.map((r) => r.value), 1e-9);
  fig.append(h(
    "ul",
    { class: "bars", "aria-label": title },
    rows.map((r) => {
      const fill = h("span", { class: "bar-fill" });
      // CSSOM, not a style attribute: the page's policy allows no inline styles to be injected.
      fill.style.width = `${Math.max(0.5, (r.value / max) * 100)}%`;
      return h(
        "li",
        { class: r.highlight ? "bar highlight" : "bar", dataset: { key: r.key, value: String(r.value) } },
        h("span", { class: "bar-label" }, r.label),
        h("span", { class: "bar-track", "aria-hidden": "true" }, fill),
        h("span", { class: "bar-value" }, r.text),
      );
    }),
  ));
  return fig;
}

/** A sparkline of `values` (oldest first) in a 120×28 box, with its last value as the label. */
export function sparkline(values, { label, format = (v) => String(v), max = null }) {
  const w = 120;
  const hgt = 28;
  if (values.length < 2) return h("span", { class: "spark-empty" }, "–");
  const top = max ?? Math.max(...values, 1e-9);
  const pts = values
    .map((v, i) => `${((i / (values.length - 1)) * w).toFixed(1)},${(hgt - 2 - (Math.min(v, top) / top) * (hgt - 4)).toFixed(1)}`)
    .join(" ");
  return svg(
    "svg",
    {
      viewBox: `0 0 ${w} ${hgt}`,
      width: w,
      height: hgt,
      role: "img",
      class: "spark",
      "aria-label": `${label}: last ${format(values.at(-1))}, ${values.length} samples`,
    },
    svg("polyline", { points: pts, fill: "none" }),
  );
}
