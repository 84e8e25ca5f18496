"""The E2B compatibility script's volume section: E2B's `Volume` API and
`Sandbox.create(volume_mounts=...)` through the SDK, unchanged, on
Warden's volumes."""

from e2b import Sandbox, Volume, VolumeException

from compat_util import OTHER_KEY, RUN, check, expect_raises


def volumes(s, _sbx):
    name = f"compat-{RUN}"[:63]
    vol = Volume.create(name)
    check(vol.name == name and vol.volume_id.startswith("vol_"), f"Volume.create: {vol.volume_id}")
    check(vol.token, "Volume.create gives a token")
    try:
        # Written by one sandbox (as E2B's `user`, under a writable root)...
        w = s.sandbox(timeout=60, volume_mounts={"/home/user/data": vol})
        w.commands.run("echo kept > ~/data/notes.txt && mkdir -p ~/data/d")
        # ...in use: not destroyed.
        expect_raises(VolumeException, "destroy of a volume in use", Volume.destroy, vol.volume_id)
        w.kill()
        # ...read by the next, mounted by name this time.
        r = s.sandbox(timeout=60, volume_mounts={"/mnt/v": name})
        out = r.commands.run("cat /mnt/v/notes.txt; stat -c %U /mnt/v/notes.txt || ls -l /mnt/v")
        check(out.stdout.startswith("kept\n"), f"the next sandbox reads the file: {out.stdout!r}")
        check("user" in out.stdout, f"owned by the writer's user: {out.stdout!r}")
        r.kill()
        names = [v.name for v in Volume.list()]
        check(name in names, f"Volume.list: {names}")
        info = Volume.get_info(vol.volume_id)
        check(info.name == name, f"Volume.get_info: {info}")
        # Another tenant can neither see nor destroy it, nor mount it.
        check(name not in [v.name for v in Volume.list(api_key=OTHER_KEY)],
              "the other tenant lists this tenant's volume")
        check(Volume.destroy(vol.volume_id, api_key=OTHER_KEY) is False,
              "the other tenant destroyed the volume")
        expect_raises(Exception, "the other tenant mounts the volume", Sandbox.create,
                      timeout=30, volume_mounts={"/data": name}, api_key=OTHER_KEY)
    finally:
        Volume.destroy(vol.volume_id)
    check(Volume.destroy(vol.volume_id) is False, "a second destroy: not False")
