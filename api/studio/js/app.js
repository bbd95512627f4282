// ORFEAS Studio: a hash-routed single page over the job API. Signing in exchanges an API key
// for the API's session cookie; a share link (`#/jobs/ID?token=…`) opens one job read-only.

import { ApiFailure, call, get, useShareToken } from "./api.js";
import { GenerateView } from "./generate.js";
import { h, replace, toast } from "./dom.js";
import { HistoryView } from "./history.js";
import { JobView } from "./job.js";
import { OperatorsView } from "./operators.js";
import { Tracker } from "./tracker.js";

const main = document.getElementById("main");
const account = document.getElementById("account");
const opsLink = document.getElementById("nav-operators");

const state = { caps: null, me: null, tracker: null, view: null, shared: false };

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = raw.split("?");
  return { path, params: new URLSearchParams(query) };
}

function signInView() {
  const key = h("input", { type: "password", id: "api-key", name: "key", autocomplete: "off", required: true, "aria-describedby": "api-key-hint api-key-error" });
  const error = h("p", { class: "field-error", id: "api-key-error", role: "alert" });
  const form = h("form", {
    class: "signin",
    onsubmit: async (e) => {
      e.preventDefault();
      error.textContent = "";
      try {
        await call("POST", "/api/session", { bearer: key.value.trim() });
        key.value = "";
        await loadMe();
        navigate("#/");
      } catch (err) {
        if (!(err instanceof ApiFailure)) throw err;
        error.textContent = `${err.message} (${err.code})`;
        key.setAttribute("aria-invalid", "true");
        key.focus();
      }
    },
  },
  h("div", { class: "field" },
    h("label", { for: "api-key" }, "API key"),
    key,
    h("p", { class: "hint", id: "api-key-hint" }, "The key stays with the API: the page keeps only a session cookie, which ends when you sign out or after the API's session time."),
    error),
  h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Sign in")));
  return { render: () => h("div", { class: "view signin-view" }, h("h1", {}, "Sign in to ORFEAS Studio"), form) };
}

function renderAccount() {
  const me = state.me;
  if (state.shared) {
    replace(account, h("span", {}, "Shared job (read only)"));
    return;
  }
  if (!me) {
    replace(account);
    return;
  }
  if (!me.key) {
    replace(account, h("span", { class: "muted" }, "Keys are off on this API"));
    return;
  }
  replace(account,
    h("span", {}, `${me.key.name} (${me.key.scope})`),
    h("button", {
      type: "button",
      class: "link",
      onclick: async () => {
        await call("DELETE", "/api/session").catch(() => null);
        state.me = null;
        renderAccount();
        navigate("#/signin");
      },
    }, "Sign out"));
}

async function loadMe() {
  try {
    state.me = await get("/api/me");
  } catch (err) {
    if (!(err instanceof ApiFailure) || err.status !== 401) throw err;
    state.me = null;
  }
  const admin = state.me && (!state.me.key || state.me.key.scope === "admin");
  opsLink.hidden = !admin;
  renderAccount();
}

function route() {
  const { path, params } = parseHash();
  state.view?.leave?.();
  let view;
  let title;
  const jobMatch = path.match(/^\/jobs\/([0-9a-f-]{36})$/i);
  if (state.shared && !jobMatch) {
    view = { render: () => h("div", { class: "view" }, h("h1", {}, "Shared job"), h("p", {}, "This link opens one job only.")) };
    title = "Shared job";
  } else if (jobMatch) {
    view = new JobView({ id: jobMatch[1], tracker: state.tracker, navigate });
    title = "Job";
  } else if (!state.me && path !== "/signin") {
    navigate("#/signin");
    return;
  } else if (path === "/signin") {
    view = signInView();
    title = "Sign in";
  } else if (path === "/history") {
    view = new HistoryView({ tracker: state.tracker, navigate, params });
    title = "History";
  } else if (path === "/operators") {
    view = new OperatorsView({ navigate });
    title = "Operators";
  } else {
    view = new GenerateView({ caps: state.caps, tracker: state.tracker, navigate });
    title = "Generate";
  }
  state.view = view;
  replace(main, view.render());
  document.title = `${title} · ORFEAS Studio`;
  for (const a of document.querySelectorAll("#nav a")) {
    const current = a.getAttribute("href") === `#${path}`;
    if (current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  // Move focus to the new view's heading, so keyboard and screen-reader users land on it.
  const heading = main.querySelector("h1");
  if (heading) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
}

async function start() {
  const { path, params } = parseHash();
  const token = params.get("token");
  if (token && path.startsWith("/jobs/")) {
    useShareToken(token);
    state.shared = true;
    for (const li of document.querySelectorAll("#nav li")) li.hidden = true;
  }
  try {
    state.caps = await get("/api/capabilities");
    if (!state.shared) await loadMe();
  } catch (err) {
    replace(main, h("div", { class: "view" }, h("h1", {}, "ORFEAS Studio"),
      h("p", { class: "form-error", role: "alert" }, `The API did not answer: ${err.message}`)));
    return;
  }
  renderAccount();
  state.tracker = new Tracker({ caps: state.caps, readOnly: state.shared });
  window.addEventListener("hashchange", route);
  route();
}

// The skip link moves focus without touching the hash (the hash is the router's).
document.getElementById("skip").addEventListener("click", (e) => {
  e.preventDefault();
  main.focus();
});

window.addEventListener("unhandledrejection", (e) => {
  toast(`Something went wrong: ${e.reason?.message ?? e.reason}`, { kind: "error" });
});

start();
