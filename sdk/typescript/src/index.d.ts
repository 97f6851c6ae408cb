// Types of msb's Node SDK (src/index.js); the wire shapes are docs/api/openapi.yaml's.
import type { IncomingMessage } from "node:http";
import type { Readable } from "node:stream";

export declare class MsbError extends Error {
  /** the server's stable code: "not_found", "conflict", "bad_request", ... */
  code: string;
  /** HTTP status, 0 for a connection that failed */
  status: number;
  /** the request field at fault */
  field?: string;
}

export declare function defaultSocket(): string;

export interface ClientOptions { url?: string; token?: string; autostart?: boolean }
export declare class Client {
  constructor(opts?: ClientOptions);
  request(method: string, path: string, body?: unknown, query?: Record<string, unknown>): Promise<any>;
  stream(method: string, path: string, body?: unknown, query?: Record<string, unknown>): AsyncGenerator<any>;
}

export interface Volume { host: string; guest: string; readonly?: boolean; nosuid?: boolean; noexec?: boolean }
export interface CreateOptions {
  image?: string;
  name?: string;
  command?: string[];
  entrypoint?: string;
  env?: Record<string, string>;
  workdir?: string;
  user?: string;
  hostname?: string;
  cpus?: number;
  memory?: number | string;
  diskSize?: number | string;
  volumes?: Volume[];
  net?: "public" | "private" | "host" | "all" | "none";
  netRules?: string[];
  ports?: string[];
  labels?: Record<string, string>;
  maxDuration?: number;
  idleTimeout?: number;
  timeout?: number;
  start?: boolean;
  client?: Client;
}
export interface SandboxInfo {
  name: string; image: string; command: string;
  status: "created" | "running" | "stopped" | "crashed";
  exit_code: number | null; created: number | null; started: number | null; finished: number | null;
  cpus: number; memory_mib: number; tty: boolean; interactive: boolean; labels: Record<string, string>;
}
export interface ExecOptions { env?: Record<string, string>; workdir?: string; user?: string; stdin?: string; timeoutMs?: number; maxOutput?: number }
export interface ExecResult { stdout: string; stderr: string; exit_code: number; timed_out: boolean; stdout_truncated: boolean; stderr_truncated: boolean }
export type ExecEvent =
  | { type: "started" }
  | { type: "stdout" | "stderr"; data: string }
  | { type: "exit"; exit_code: number; timed_out: boolean };
export interface LogRecord { time: string; stream: "stdout" | "stderr"; data: string; partial: boolean }
export interface Metrics { name: string; running: boolean; cpu_seconds: number; memory_bytes: number; disk_bytes: number; disk_size_bytes: number; net_rx_bytes: number | null; net_tx_bytes: number | null }

declare class Files {
  uploadTar(tar: Buffer | Readable, guestDir: string): Promise<void>;
  downloadTar(guestPath: string): Promise<IncomingMessage>;
}

export declare class Sandbox {
  readonly name: string;
  readonly client: Client;
  readonly files: Files;
  static create(opts?: CreateOptions): Promise<Sandbox>;
  static get(name: string, opts?: { client?: Client }): Promise<Sandbox>;
  static list(opts?: { status?: string; labels?: Record<string, string>; client?: Client }): Promise<SandboxInfo[]>;
  info(): Promise<SandboxInfo>;
  exec(command: string[], opts?: ExecOptions): Promise<ExecResult>;
  execStream(command: string[], opts?: ExecOptions): AsyncGenerator<ExecEvent>;
  logs(opts?: { follow?: boolean; tail?: number; since?: string; stream?: "stdout" | "stderr" | "both" }): AsyncGenerator<LogRecord>;
  metrics(): Promise<Metrics>;
  start(): Promise<void>;
  stop(graceMs?: number): Promise<void>;
  restart(graceMs?: number): Promise<void>;
  kill(signal?: string | number): Promise<void>;
  wait(): Promise<number>;
  remove(opts?: { force?: boolean }): Promise<void>;
}
