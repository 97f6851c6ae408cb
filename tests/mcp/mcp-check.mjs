// msb's MCP server through the official client SDK: initialize, list the tools, call each one.
//   node mcp-check.mjs stdio MSB_BINARY PREFIX
//   node mcp-check.mjs http URL TOKEN PREFIX
// Prints "ok <what>" lines and exits 1 at the first check that fails.
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [mode, a, b, c] = process.argv.slice(2);
const prefix = mode === "stdio" ? b : c;
const transport = mode === "stdio"
  ? new StdioClientTransport({ command: a, args: ["mcp"] })
  : new StreamableHTTPClientTransport(new URL(a), { requestInit: { headers: { Authorization: `Bearer ${b}` } } });

const client = new Client({ name: "msb-tests", version: "1.0.0" });
const ok = (what) => console.log(`ok ${what}`);
const text = (r) => r.content.map((x) => x.text).join("");
try {
  await client.connect(transport);
  assert.equal(client.getServerVersion().name, "msb");
  ok("initialize");
  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name).sort();
  assert.deepEqual(names, ["exec", "logs", "metrics", "sandbox_create", "sandbox_get", "sandbox_list", "sandbox_remove", "sandbox_stop"]);
  for (const t of tools) assert.ok(t.description && t.inputSchema && t.inputSchema.type === "object", t.name);
  ok("tools/list: 8 tools, each with a schema and a description");

  const name = `${prefix}-mcp`;
  let r = await client.callTool({ name: "sandbox_create", arguments: { image: "busybox", name, disk_size: "0", memory: "256M" } });
  assert.equal(r.isError, false, text(r));
  assert.equal(JSON.parse(text(r)).status, "running");
  ok("sandbox_create");
  r = await client.callTool({ name: "exec", arguments: { name, command: ["sh", "-c", "echo hi; echo err >&2; exit 3"] } });
  assert.match(text(r), /^exit_code: 3\n--- stdout ---\nhi\n/);
  assert.match(text(r), /--- stderr ---\nerr\n/);
  ok("exec");
  r = await client.callTool({ name: "exec", arguments: { name, command: ["sh", "-c", "head -c 200000 /dev/zero | tr '\\0' x"] } });
  assert.match(text(r), /\[\.\.\. \d+ more bytes cut by msb\]/);
  ok("exec output bounded, with a marker");
  r = await client.callTool({ name: "sandbox_list", arguments: {} });
  assert.ok(JSON.parse(text(r)).sandboxes.some((s) => s.name === name));
  ok("sandbox_list");
  r = await client.callTool({ name: "sandbox_get", arguments: { name } });
  assert.equal(JSON.parse(text(r)).memory_mib, 256);
  ok("sandbox_get");
  r = await client.callTool({ name: "logs", arguments: { name, tail: 10 } });
  assert.equal(r.isError, false, text(r));
  ok("logs");
  r = await client.callTool({ name: "metrics", arguments: { name } });
  assert.ok(JSON.parse(text(r)).memory_bytes > 0);
  ok("metrics");
  r = await client.callTool({ name: "sandbox_stop", arguments: { name, grace_ms: 1000 } });
  assert.equal(JSON.parse(text(r)).status, "stopped");
  ok("sandbox_stop");
  r = await client.callTool({ name: "exec", arguments: { name, command: ["true"] } });
  assert.equal(r.isError, true);
  assert.match(text(r), /not running/);
  ok("a tool that fails is a tool error");
  r = await client.callTool({ name: "sandbox_remove", arguments: { name } });
  assert.equal(JSON.parse(text(r)).removed, true);
  r = await client.callTool({ name: "sandbox_get", arguments: { name } });
  assert.equal(r.isError, true);
  assert.match(text(r), /no sandbox named/);
  ok("sandbox_remove");
  r = await client.callTool({ name: "sandbox_create", arguments: { image: "busybox", cpus: 1000 } });
  assert.equal(r.isError, true);
  assert.match(text(r), /cpus/);
  ok("bad arguments named");
  r = await client.callTool({ name: "sandbox_create", arguments: { image: "busybox", volumes: [{ host: "/", guest: "/h" }] } });
  assert.equal(r.isError, true);
  assert.match(text(r), /volumes: not an argument of sandbox_create/);
  ok("arguments outside a tool's schema refused (no host volumes for an agent)");
  await assert.rejects(client.callTool({ name: "no_such_tool", arguments: {} }));
  ok("an unknown tool is a protocol error");
  await client.close();
} catch (e) {
  console.log(`FAIL ${e.stack || e}`);
  process.exit(1);
}
