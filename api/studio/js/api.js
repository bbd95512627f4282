// The job API as the Studio uses it. The browser authenticates with the session cookie that
// `POST /api/session` sets (HttpOnly: the key itself is never kept by the page), or, for a shared
// job, with the share link's token appended to that job's read-only routes.

/** A refused request: the API's error code, message, the option it names (422) and, for 429 and
 *  503, how long to wait. */
export class ApiFailure extends Error {
  constructor(status, code, message, { field = null, retryAfter = null } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
    this.retryAfter = retryAfter;
  }
}

let shareToken = null;

/** Read-only access to one shared job, for a visitor without a session. */
export function useShareToken(token) {
  shareToken = token;
}

export function sharing() {
  return shareToken !== null;
}

/** `path` with the share token, when the page was opened from a share link. */
export function withToken(path) {
  if (!shareToken) return path;
  return `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(shareToken)}`;
}

async function failure(resp) {
  let body = null;
  try {
    body = await resp.json();
  } catch {
    // Not every refusal has a JSON body (a proxy's 502, say).
  }
  const err = body?.error ?? {};
  const retry = Number.parseInt(resp.headers.get("Retry-After") ?? "", 10);
  return new ApiFailure(resp.status, err.code ?? `http_${resp.status}`, err.message ?? resp.statusText, {
    field: err.field ?? null,
    retryAfter: Number.isFinite(retry) ? retry : null,
  });
}

/** Calls the API; resolves to the parsed JSON body (null for 204), rejects with ApiFailure. */
export async function call(method, path, { form = null, bearer = null, headers: extra = {} } = {}) {
  const headers = { Accept: "application/json", ...extra };
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  let resp;
  try {
    resp = await fetch(withToken(path), { method, headers, body: form, credentials: "same-origin" });
  } catch (e) {
    throw new ApiFailure(0, "network", `The API could not be reached (${e.message}).`);
  }
  if (!resp.ok) throw await failure(resp);
  if (resp.status === 204) return null;
  return resp.json();
}

export const get = (path) => call("GET", path);
export const post = (path, opts) => call("POST", path, opts);
