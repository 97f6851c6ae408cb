"""The Python SDK (sdk/python) against a real msb serve and real VMs (tests/e2e/test-sdk-python.sh runs it).

Phase "local" (the default): no configuration, so the SDK finds the user's socket and starts msb serve itself.
Phase "remote" (MSB_API_URL and MSB_API_TOKEN set): the same calls over TCP with the token.
"""
import asyncio
import hashlib
import os
import time

import pytest

import msb
from msb import AsyncSandbox, BadRequest, Conflict, NotFound, Sandbox

PREFIX = os.environ.get("SDK_TEST_PREFIX", "sdk-py")
REMOTE = bool(os.environ.get("MSB_API_URL"))


@pytest.fixture(scope="module")
def sb():
    with Sandbox.create(image="busybox", name=f"{PREFIX}-main", memory="256M", disk_size=0,
                        labels={"suite": PREFIX}, env={"GREETING": "hello"}) as s:
        yield s


def test_create_and_exec(sb):
    r = sb.exec(["sh", "-c", "echo $GREETING; echo oops >&2; exit 3"])
    assert isinstance(r, msb.ExecResult)
    assert (r.stdout, r.stderr, r.exit_code, r.ok) == ("hello\n", "oops\n", 3, False)
    assert sb.exec(["cat"], stdin="in\n").stdout == "in\n"
    t = sb.exec(["sleep", "30"], timeout=1)
    assert t.timed_out and t.exit_code == 124
    assert sb.exec(["no-such-program"]).exit_code == 127


def test_exec_stream(sb):
    evs = list(sb.exec_stream(["sh", "-c", "echo a; sleep 0.3; echo b >&2; exit 4"]))
    assert [e.type for e in evs] == ["started", "stdout", "stderr", "exit"]
    assert (evs[1].data, evs[2].data, evs[3].exit_code) == ("a\n", "b\n", 4)


def test_list_get_and_labels(sb):
    names = [s.name for s in Sandbox.list(labels={"suite": PREFIX})]
    assert names == [sb.name]
    assert Sandbox.list(labels={"suite": "other"}) == []
    info = Sandbox.get(sb.name).info()
    assert (info.status, info.memory_mib, info.labels["suite"]) == ("running", 256, PREFIX)


def test_errors_carry_the_servers_code(sb):
    with pytest.raises(NotFound) as e:
        Sandbox.get(f"{PREFIX}-missing")
    assert e.value.code == "not_found" and e.value.status == 404 and "no sandbox named" in e.value.message
    with pytest.raises(BadRequest) as e:
        Sandbox.create(image="busybox", cpus=1000)
    assert e.value.field == "cpus"
    with pytest.raises(Conflict):
        Sandbox.create(image="busybox", name=sb.name)
    with pytest.raises(TypeError):
        sb.exec("echo not a list")


def test_files_as_trees(sb, tmp_path):
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha\n")
    blob = os.urandom(300_000)
    (src / "sub" / "blob").write_bytes(blob)
    sb.files.upload(str(src), "/tmp")
    assert sb.exec(["cat", "/tmp/tree/a.txt"]).stdout == "alpha\n"
    out = tmp_path / "back"
    out.mkdir()
    sb.files.download("/tmp/tree", str(out))
    assert hashlib.sha256((out / "tree" / "sub" / "blob").read_bytes()).digest() == hashlib.sha256(blob).digest()


def test_logs_and_metrics():
    with Sandbox.create(image="busybox", name=f"{PREFIX}-logs", disk_size=0,
                        command=["sh", "-c", "echo out1; echo err1 >&2; exec sleep 1000"]) as s:
        deadline = time.time() + 30
        recs = []
        while time.time() < deadline and len(recs) < 2:
            recs = list(s.logs())
            time.sleep(0.2)
        assert sorted((r.stream, r.data) for r in recs) == [("stderr", "err1"), ("stdout", "out1")]
        assert [r.data for r in s.logs(stream="stdout")] == ["out1"]
        m = s.metrics()
        assert m.running and m.cpu_seconds > 0 and m.memory_bytes > 0


def test_lifecycle():
    s = Sandbox.create(image="busybox", name=f"{PREFIX}-life", disk_size=0, command=["sh", "-c", "exit 9"])
    try:
        assert s.wait() == 9
        assert s.status == "stopped"
        s.start()
        assert s.wait() == 9
    finally:
        s.remove()
    with pytest.raises(NotFound):
        s.info()


def test_async_twin():
    async def main():
        async with await AsyncSandbox.create(image="busybox", name=f"{PREFIX}-async", disk_size=0) as a:
            r = await a.exec(["echo", "async"])
            assert r.stdout == "async\n"
            kinds = [e.type async for e in a.exec_stream(["sh", "-c", "echo x"])]
            assert kinds == ["started", "stdout", "exit"]
            # several at once on one sandbox
            rs = await asyncio.gather(*(a.exec(["sh", "-c", f"echo {i}"]) for i in range(5)))
            assert [x.stdout for x in rs] == [f"{i}\n" for i in range(5)]
            names = [s.name for s in await AsyncSandbox.list()]
            assert a.name in names
        assert a.name not in [s.name for s in Sandbox.list()]

    asyncio.run(main())


@pytest.mark.skipif(not REMOTE, reason="the remote phase runs with MSB_API_URL set (test-sdk-python.sh)")
def test_remote_needs_its_token():
    c = msb.Client(url=os.environ["MSB_API_URL"], token="wrong-token-wrong-token")
    with pytest.raises(msb.Unauthorized):
        Sandbox.list(client=c)
