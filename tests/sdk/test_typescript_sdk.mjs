// The Node SDK (sdk/typescript) against a real msb serve and real VMs, with Node's own test runner
// (tests/e2e/test-sdk-typescript.sh installs the package and runs this).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { Sandbox, MsbError, Client } from "@msb/sdk";

const P = process.env.SDK_TEST_PREFIX || "sdk-ts";
let sb;
after(async () => { if (sb) await sb.remove(); });

test("create and exec", async () => {
  sb = await Sandbox.create({ image: "busybox", name: `${P}-main`, memory: "256M", diskSize: 0, labels: { suite: P }, env: { G: "hi" } });
  const r = await sb.exec(["sh", "-c", "echo $G; echo e >&2; exit 3"]);
  assert.deepEqual([r.stdout, r.stderr, r.exit_code], ["hi\n", "e\n", 3]);
  assert.equal((await sb.exec(["cat"], { stdin: "in\n" })).stdout, "in\n");
  const t = await sb.exec(["sleep", "30"], { timeoutMs: 1000 });
  assert.equal(t.exit_code, 124);
  assert.equal(t.timed_out, true);
});

test("exec stream", async () => {
  const kinds = [];
  for await (const ev of sb.execStream(["sh", "-c", "echo a; sleep 0.2; echo b >&2; exit 4"])) {
    kinds.push(ev.type === "exit" ? `exit:${ev.exit_code}` : ev.type === "started" ? "started" : `${ev.type}:${ev.data.trim()}`);
  }
  assert.deepEqual(kinds, ["started", "stdout:a", "stderr:b", "exit:4"]);
});

test("many execs at once", async () => {
  const rs = await Promise.all([...Array(8).keys()].map((i) => sb.exec(["sh", "-c", `echo ${i}`])));
  assert.deepEqual(rs.map((r) => r.stdout), [...Array(8).keys()].map((i) => `${i}\n`));
});

test("list, get, labels", async () => {
  assert.deepEqual((await Sandbox.list({ labels: { suite: P } })).map((s) => s.name), [sb.name]);
  const got = await Sandbox.get(sb.name);
  assert.equal((await got.info()).status, "running");
});

test("errors carry the server's code", async () => {
  await assert.rejects(Sandbox.get(`${P}-missing`), (e) => e instanceof MsbError && e.code === "not_found" && e.status === 404);
  await assert.rejects(Sandbox.create({ image: "busybox", cpus: 1000 }), (e) => e.field === "cpus" && e.status === 400);
  await assert.rejects(Sandbox.create({ image: "busybox", name: sb.name }), (e) => e.status === 409);
  assert.throws(() => sb.execStream("echo x"), TypeError);
});

test("logs and metrics", async () => {
  const s = await Sandbox.create({ image: "busybox", name: `${P}-logs`, diskSize: 0, command: ["sh", "-c", "echo out1; exec sleep 1000"] });
  try {
    let recs = [];
    for (let i = 0; i < 100 && recs.length < 1; i++) {
      recs = [];
      for await (const r of s.logs({ stream: "stdout" })) recs.push(r.data);
      if (!recs.length) await new Promise((r) => setTimeout(r, 200));
    }
    assert.deepEqual(recs, ["out1"]);
    const m = await s.metrics();
    assert.ok(m.running && m.memory_bytes > 0);
  } finally {
    await s.remove();
  }
});

test("lifecycle", async () => {
  const s = await Sandbox.create({ image: "busybox", name: `${P}-life`, diskSize: 0, command: ["sh", "-c", "exit 9"] });
  try {
    assert.equal(await s.wait(), 9);
    assert.equal((await s.info()).status, "stopped");
  } finally {
    await s.remove();
  }
  await assert.rejects(s.info(), (e) => e.status === 404);
});

test("a wrong token is refused over TCP", { skip: !process.env.MSB_API_URL }, async () => {
  const c = new Client({ url: process.env.MSB_API_URL, token: "wrong-token-wrong-token" });
  await assert.rejects(Sandbox.list({ client: c }), (e) => e.status === 401);
});
