// robopost console: the REST client. Bearer token kept in sessionStorage (one tab = one session);
// errors are thrown as ApiError carrying the problem+json `detail`, so views can show the reason.

const KEY = "robopost.console.session";

export class ApiError extends Error {
  constructor(status, detail, body) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
    this.body = body;
  }
}

function load() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) || "null");
  } catch {
    return null;
  }
}

let session = load();

async function request(method, path, body) {
  const headers = { Accept: "application/json, application/problem+json" };
  if (session && session.token) headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!res.ok) {
    const detail = data && typeof data === "object" ? data.detail || data.title : null;
    const err = new ApiError(res.status, typeof detail === "string" ? detail : `HTTP ${res.status}`, data);
    if (res.status === 401 && path !== "/v1/console/login") {
      window.dispatchEvent(new CustomEvent("robopost:unauthorized"));
    }
    throw err;
  }
  return data;
}

export const api = {
  /** The bearer token of this tab's session, or null. */
  token: () => (session ? session.token : null),
  /** The logged-in user ({username, role, ...}) or null. */
  user: () => (session ? session.user : null),
  get: (path) => request("GET", path),
  post: (path, body = {}) => request("POST", path, body),
  async login(username, password) {
    const answer = await request("POST", "/v1/console/login", { username, password });
    session = { token: answer.token, csrf: answer.csrf_token, user: answer.user, expires_at: answer.expires_at };
    sessionStorage.setItem(KEY, JSON.stringify(session));
    return session.user;
  },
  async logout() {
    try {
      if (session) await request("POST", "/v1/console/logout", {});
    } catch {
      // the session may already be over: forgetting it locally is what matters
    } finally {
      this.forget();
    }
  },
  forget() {
    session = null;
    sessionStorage.removeItem(KEY);
  },
};

/** Whether `user` may act (operator or admin). */
export function mayAct(user) {
  return !!user && (user.role === "operator" || user.role === "admin");
}
