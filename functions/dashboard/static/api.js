// The API client: the only code that sends the token, and only to the API this page came from.

// The page is at <api>/ and its modules at <api>/dashboard/, so the API is one level up from here.
const BASE = new URL("../", import.meta.url);
const TOKEN_KEY = "webhooks.token";

export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  signIn: (token) => sessionStorage.setItem(TOKEN_KEY, token),
  signOut: () => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || (status ? `the API answered ${status}` : "the API cannot be reached"));
    this.status = status;
    this.code = error.code || "error";
    this.fields = Array.isArray(error.fields) ? error.fields : [];
  }
}

// Called when the API refuses the token (wrong, revoked or expired).
let onUnauthorized = () => {};
export function whenUnauthorized(callback) {
  onUnauthorized = callback;
}

export async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${session.token() || ""}` };
  const init = { method, headers, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(new URL(path, BASE), init);
  } catch {
    throw new ApiError(0, null);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (response.status === 401) {
    onUnauthorized();
  }
  if (!response.ok) {
    throw new ApiError(response.status, data);
  }
  return data;
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// Reads a list's pages until `want` items, the end, or `maxReads` reads: the API filters after reading
// a page, so a filtered page may be short, even empty, with a cursor still following.
export async function readPages(path, params, key, want, cursor = null, maxReads = 10) {
  const items = [];
  let next = cursor;
  for (let reads = 0; reads < maxReads && items.length < want; reads += 1) {
    const answer = await api("GET", `${path}${query({ ...params, limit: want - items.length, cursor: next })}`);
    items.push(...answer[key]);
    next = answer.next_cursor;
    if (!next) break;
  }
  return { items, cursor: next };
}
