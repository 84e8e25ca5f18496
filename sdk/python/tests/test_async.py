import asyncio

import pytest

from warden_sdk import Conflict, NotFound


async def test_the_async_client_does_the_same(aw):
    f = await aw.files.upload("a.txt", b"async bytes\n")
    sb = await aw.sandboxes.create(files=[f])
    async with sb:
        r = await sb.exec("cat /input/a.txt")
        assert r.stdout == "async bytes\n"
        seen = []
        r = await sb.exec("echo one; echo two", on_stdout=seen.append)
        assert r.ok and "".join(seen) == "one\ntwo\n"
        # Calls run concurrently on one client.
        results = await asyncio.gather(*(sb.exec(f"echo {i}") for i in range(8)))
        assert [x.stdout for x in results] == [f"{i}\n" for i in range(8)]
        p = await sb.spawn("read x; echo got $x", stdin=True)
        await p.send_stdin("it\n", close=True)
        assert (await p.wait()).exit_code == 0
        assert [d async for s, d in p.output()] == [b"got it\n"]
        await sb.files.write("/scratch/x.txt", "written")
        assert await sb.files.read_text("/scratch/x.txt") == "written"
        assert any([s.id == sb.id async for s in aw.sandboxes.list()])
    with pytest.raises(Conflict):
        await sb.exec("true")
    with pytest.raises(NotFound):
        await aw.files.get("file_doesnotexist00000000")
    job = await aw.reviews.submit(["sh", "-c", "echo from-async > /output/r.txt"])
    assert (await job.wait(timeout=120)).status == "succeeded"
    assert await job.read_output("r.txt") == b"from-async\n"
    assert [e.action async for e in aw.audit()][-1] in ("review.finish", "sandbox.delete")
