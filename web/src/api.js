// JSON requests to the page's own origin (docs/api.md). The CSRF token lives in this
// module's memory only: never in storage, never in the URL.

let csrf = null;
export const setCsrf = (t) => { csrf = t || null; };
export const hasCsrf = () => csrf !== null;

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || (status ? `HTTP ${status}` : 'network error'));
    this.status = status;
    this.field = body && typeof body.field === 'string' ? body.field : null;
    this.retryAfter = body && Number.isFinite(body.retry_after_s) ? body.retry_after_s : null;
    this.body = body || {};
  }
}

export async function api(method, path, body, { timeoutMs = 10000 } = {}) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  init.signal = ctl.signal;
  let res;
  let text;
  try {
    res = await fetch(path, init);
    text = await res.text();
  } catch (e) {
    throw new ApiError(0, { error: e && e.name === 'AbortError' ? 'the server did not answer in time' : 'the server cannot be reached' });
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = { error: text.slice(0, 200) }; }
  }
  if (!res.ok) throw new ApiError(res.status, data || { error: `${res.status} ${res.statusText}` });
  return data;
}
