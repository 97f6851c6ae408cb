// msb for Node (ESM, no dependencies): msb serve's API (docs/api.md) as Sandbox objects.
import { spawn, execFileSync } from "node:child_process";
import http from "node:http";
import https from "node:https";
import net from "node:net";

export class MsbError extends Error {
  constructor(code, message, status, field) {
    super(message);
    this.name = "MsbError";
    this.code = code;
    this.status = status;
    this.field = field;
  }
}

function msbBinary() {
  return process.env.MSB_BIN || "msb";
}

/** Where the user's own msb serve listens (msb serve --print-socket). */
export function defaultSocket() {
  return execFileSync(msbBinary(), ["serve", "--print-socket"], { encoding: "utf8" }).trim();
}

function reachable(path) {
  return new Promise((resolve) => {
    const s = net.connect(path);
    s.once("connect", () => { s.destroy(); resolve(true); });
    s.once("error", () => resolve(false));
  });
}

export class Client {
  /** url: http(s)://host:port or unix:///path; default $MSB_API_URL, else the user's socket. */
  constructor({ url, token, autostart = true } = {}) {
    url = url ?? process.env.MSB_API_URL;
    this.token = token ?? process.env.MSB_API_TOKEN;
    this.autostart = autostart;
    if (!url) {
      this.socketPath = defaultSocket();
      this.local = true;
    } else if (url.startsWith("unix://")) {
      this.socketPath = url.slice("unix://".length);
    } else {
      const u = new URL(url);
      if (u.protocol !== "http:" && u.protocol !== "https:") throw new TypeError(`MSB_API_URL ${url}: expected http(s)://HOST:PORT or unix:///PATH`);
      this.url = u;
    }
    this.ready = null;
  }

  async ensureServer() {
    if (!this.local || !this.autostart) return;
    if (!this.ready) {
      this.ready = (async () => {
        if (await reachable(this.socketPath)) return;
        const child = spawn(msbBinary(), ["serve", "-q"], { detached: true, stdio: "ignore" });
        child.unref();
        const deadline = Date.now() + 10000;
        while (Date.now() < deadline) {
          if (await reachable(this.socketPath)) return;
          await new Promise((r) => setTimeout(r, 50));
        }
        throw new MsbError("no_server", `msb serve did not start listening on ${this.socketPath}`, 0);
      })();
    }
    return this.ready;
  }

  async raw(method, path, { query, body, contentType } = {}) {
    await this.ensureServer();
    if (query) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) {
        if (v === undefined || v === null) continue;
        for (const one of Array.isArray(v) ? v : [v]) q.append(k, String(one));
      }
      const s = q.toString();
      if (s) path += "?" + s;
    }
    const headers = {};
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    let data = null;
    if (body !== undefined && body !== null) {
      data = contentType ? body : Buffer.from(JSON.stringify(body));
      headers["Content-Type"] = contentType || "application/json";
      if (Buffer.isBuffer(data)) headers["Content-Length"] = data.length;
    }
    const opts = this.socketPath
      ? { socketPath: this.socketPath, path, method, headers }
      : { host: this.url.hostname, port: this.url.port || (this.url.protocol === "https:" ? 443 : 80), path, method, headers };
    const mod = this.url && this.url.protocol === "https:" ? https : http;
    const res = await new Promise((resolve, reject) => {
      const req = mod.request(opts, resolve);
      req.on("error", (e) => reject(new MsbError("connection", `${method} ${path}: ${e.message}`, 0)));
      if (data && typeof data.pipe === "function") data.pipe(req);
      else req.end(data);
    });
    if (res.statusCode >= 400) {
      const text = await readAll(res);
      let e;
      try { e = JSON.parse(text).error; } catch { e = { code: "internal", message: text.slice(0, 500) }; }
      throw new MsbError(e.code, e.message, res.statusCode, e.field);
    }
    return res;
  }

  async request(method, path, body, query) {
    if (body === undefined && method === "POST") body = {};
    const res = await this.raw(method, path, { body, query });
    const text = await readAll(res);
    return res.statusCode === 204 || !text ? null : JSON.parse(text);
  }

  async *stream(method, path, body, query) {
    const res = await this.raw(method, path, { body, query });
    let buf = "";
    try {
      for await (const chunk of res) {
        buf += chunk.toString("utf8");
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (!line.trim()) continue;
          const ev = JSON.parse(line);
          if (ev.type === "error" && ev.error) throw new MsbError(ev.error.code, ev.error.message, 500, ev.error.field);
          yield ev;
        }
      }
    } finally {
      res.destroy();
    }
  }
}

async function readAll(res) {
  const parts = [];
  for await (const c of res) parts.push(c);
  return Buffer.concat(parts).toString("utf8");
}

function execBody(command, o = {}) {
  if (!Array.isArray(command)) throw new TypeError('command: an array of arguments, e.g. ["sh", "-c", "echo hi"]');
  const b = { command };
  if (o.env) b.env = o.env;
  if (o.workdir) b.workdir = o.workdir;
  if (o.user) b.user = o.user;
  if (o.stdin !== undefined) b.stdin = o.stdin;
  if (o.timeoutMs) b.timeout_ms = o.timeoutMs;
  if (o.maxOutput !== undefined) b.max_output = o.maxOutput;
  return b;
}

const CREATE_KEYS = { diskSize: "disk_size", netRules: "net_rules", maxDuration: "max_duration", idleTimeout: "idle_timeout", noPool: "no_pool", autoRemove: "auto_remove" };

class Files {
  constructor(sb) { this.sb = sb; }
  /** A tar stream (or Buffer) extracted at guestDir (made if missing). */
  async uploadTar(tar, guestDir) {
    const res = await this.sb.client.raw("PUT", this.sb.path("/archive"), { query: { path: guestDir }, body: tar, contentType: "application/x-tar" });
    await readAll(res);
  }
  /** A tar of guestPath, as a readable stream. */
  async downloadTar(guestPath) {
    return this.sb.client.raw("GET", this.sb.path("/archive"), { query: { path: guestPath } });
  }
}

export class Sandbox {
  constructor(name, client, info) {
    this.name = name;
    this.client = client;
    this.info_ = info;
    this.files = new Files(this);
  }

  /** Create (and start) a sandbox; its main command defaults to one that keeps it running. */
  static async create(opts = {}) {
    const { client: c0, ...rest } = opts;
    const client = c0 || new Client();
    const body = { image: "busybox", command: ["sleep", "2147483647"] };
    for (const [k, v] of Object.entries(rest)) if (v !== undefined) body[CREATE_KEYS[k] || k] = v;
    const info = await client.request("POST", "/v1/sandboxes", body);
    return new Sandbox(info.name, client, info);
  }

  static async get(name, { client } = {}) {
    client = client || new Client();
    return new Sandbox(name, client, await client.request("GET", `/v1/sandboxes/${encodeURIComponent(name)}`));
  }

  static async list({ status, labels, client } = {}) {
    client = client || new Client();
    const label = Object.entries(labels || {}).map(([k, v]) => `${k}=${v}`);
    return (await client.request("GET", "/v1/sandboxes", undefined, { status, label })).sandboxes;
  }

  path(tail = "") { return `/v1/sandboxes/${encodeURIComponent(this.name)}${tail}`; }
  async info() { return (this.info_ = await this.client.request("GET", this.path())); }
  async exec(command, opts) { return this.client.request("POST", this.path("/exec"), execBody(command, opts)); }
  execStream(command, opts) { return this.client.stream("POST", this.path("/exec/stream"), execBody(command, opts)); }
  logs({ follow, tail, since, stream } = {}) { return this.client.stream("GET", this.path("/logs"), undefined, { follow, tail, since, stream }); }
  async metrics() { return this.client.request("GET", this.path("/metrics")); }
  async start() { this.info_ = await this.client.request("POST", this.path("/start")); }
  async stop(graceMs = 10000) { this.info_ = await this.client.request("POST", this.path("/stop"), { grace_ms: graceMs }); }
  async restart(graceMs = 10000) { this.info_ = await this.client.request("POST", this.path("/restart"), { grace_ms: graceMs }); }
  async kill(signal = "KILL") { this.info_ = await this.client.request("POST", this.path("/kill"), { signal }); }
  async wait() { return (await this.client.request("POST", this.path("/wait"))).exit_code; }
  async remove({ force = true } = {}) { await this.client.request("DELETE", this.path(), undefined, { force }); }
}
