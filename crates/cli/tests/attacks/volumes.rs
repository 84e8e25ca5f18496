//! Attacks stopped by: how a volume is mounted (a file system of its own,
//! nosuid and nodev, idmapped on the native tier, read-only when asked).
//!
//! A volume outlives the sandbox that wrote it and is mounted by the next
//! one, possibly as another user: what one sandbox plants there must give
//! the next (or the host) nothing it did not have, and a read-only mount
//! must stay read-only whatever the sandbox tries.

use super::helpers::*;
use warden_runtime::volume::{Lease, Volumes, MIN_BYTES};

/// A volume store in a temporary directory, one volume in it, held.
struct Vol {
    _dir: tempfile::TempDir,
    vols: Volumes,
    lease: Option<Lease>,
}

impl Vol {
    fn new() -> Vol {
        let dir = tempfile::tempdir().unwrap();
        let vols = Volumes::open(&dir.path().join("volumes")).unwrap();
        vols.create("v", MIN_BYTES).unwrap();
        let lease = Some(vols.lease("v").unwrap());
        Vol {
            _dir: dir,
            vols,
            lease,
        }
    }

    fn host_dir(&self) -> &Path {
        self.lease.as_ref().unwrap().dir()
    }

    fn spec(&self, user: SandboxUser, read_only: bool) -> SandboxSpec {
        let source = self.host_dir().to_string_lossy().into_owned();
        spec(|s| {
            s.user = user;
            s.mounts.push(warden_spec::Mount {
                source,
                target: "/vol".into(),
                read_only,
                sandbox_ids: true,
            });
        })
    }
}

impl Drop for Vol {
    fn drop(&mut self) {
        drop(self.lease.take());
        let _ = self.vols.remove_orphan("v");
    }
}

/// The options of the mount at `dir`, as this process sees them.
fn mount_options(dir: &Path) -> Vec<&'static str> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = info
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(dir.to_str().unwrap()))
        .unwrap_or_else(|| panic!("{} is not a mount point", dir.display()));
    let opts = line.split(' ').nth(5).unwrap().to_string();
    opts.split(',')
        .map(|o| &*Box::leak(o.to_string().into_boxed_str()))
        .collect()
}

/// Root of one sandbox plants a setuid-root program and tries device
/// nodes on the volume; the next sandbox's `sandbox` user runs the program
/// as itself (nosuid) and can neither remove nor replace it (sticky
/// root), the host holds it only behind a root-only,
/// nosuid mount point. What a sandbox writes is owned on disk by its own
/// ids, not by the host range it ran in.
async fn what_one_sandbox_plants_gives_the_next_nothing(tier: Tier) {
    let v = Vol::new();
    let root = Sb::on(tier, v.spec(SandboxUser::Root, false)).await;
    let r = probe(
        &root,
        r#"
        import shutil, stat
        shutil.copy('/usr/bin/id', '/vol/id')
        os.chmod('/vol/id', 0o4755)
        out('mode', oct(os.stat('/vol/id').st_mode & 0o7777))
        out('mknod', tryf(lambda: os.mknod('/vol/null', stat.S_IFCHR | 0o666, os.makedev(1, 3))))
        out('euid_root', subprocess.run(['/vol/id', '-u'], capture_output=True, text=True).stdout.strip())
        "#,
    )
    .await;
    // The bit is set: the attack is real.
    assert_eq!(get(&r, "mode"), "0o4755", "{tier:?}: {r:?}");
    assert_eq!(get(&r, "mknod"), "EPERM", "{tier:?}: {r:?}");
    assert_eq!(get(&r, "euid_root"), "0", "{tier:?}: {r:?}");
    drop(root);

    let next = Sb::on(tier, v.spec(SandboxUser::Sandbox, false)).await;
    let r = probe(
        &next,
        r#"
        out('euid', subprocess.run(['/vol/id', '-u'], capture_output=True, text=True).stdout.strip())
        out('owner', os.stat('/vol/id').st_uid)
        out('write', tryf(lambda: open('/vol/mine', 'w').write('x')))
        out('steal', tryf(lambda: open('/vol/id', 'a').write('x')))
        open('/vol/fake', 'w').write('#!/bin/sh\n')
        out('unlink_root', tryf(lambda: os.unlink('/vol/id')))
        out('replace_root', tryf(lambda: os.rename('/vol/fake', '/vol/id')))
        out('unlink_own', tryf(lambda: os.unlink('/vol/fake')))
        "#,
    )
    .await;
    // nosuid: the planted program runs with the caller's ids.
    assert_eq!(get(&r, "euid"), "1000", "{tier:?}: {r:?}");
    assert_eq!(get(&r, "owner"), "0", "{tier:?}: {r:?}");
    // Control: the volume is writable to it; root's file is not.
    assert_eq!(get(&r, "write"), "OK", "{tier:?}: {r:?}");
    assert_eq!(get(&r, "steal"), "EACCES", "{tier:?}: {r:?}");
    // Sticky root: root's program cannot be removed by another user.
    assert_eq!(get(&r, "unlink_root"), "EPERM", "{tier:?}: {r:?}");
    if tier.is_gvisor() {
        // The Sentry of the runsc release here (2022-12) does not apply
        // the sticky bit to the target of a rename: replacing root's
        // program works (docs/security.md, "Known limits"). Its own file
        // is then gone, moved over root's.
        assert_eq!(get(&r, "replace_root"), "OK", "{tier:?}: {r:?}");
        assert_eq!(get(&r, "unlink_own"), "ENOENT", "{tier:?}: {r:?}");
    } else {
        // ...nor replaced (control: its own file goes).
        assert_eq!(get(&r, "replace_root"), "EPERM", "{tier:?}: {r:?}");
        assert_eq!(get(&r, "unlink_own"), "OK", "{tier:?}: {r:?}");
    }
    drop(next);

    // On the host: the sandbox's ids as they are, behind a mount that is
    // nosuid and nodev, in a directory only root may enter.
    let md = std::fs::metadata(v.host_dir().join("mine")).unwrap();
    assert_eq!((md.uid(), md.gid()), (1000, 1000), "{tier:?}");
    let opts = mount_options(v.host_dir());
    assert!(
        opts.contains(&"nosuid") && opts.contains(&"nodev"),
        "{opts:?}"
    );
    let parent = std::fs::metadata(v.host_dir().parent().unwrap()).unwrap();
    assert_eq!(parent.mode() & 0o777, 0o700, "{tier:?}");
}

/// A read-only volume refuses writes, and remounting it read-write (or
/// mounting anything over it) is refused; the loop device behind it is
/// not in the sandbox. Control: the same writes on a read-write mount.
async fn a_read_only_volume_stays_read_only(tier: Tier) {
    let v = Vol::new();
    let sb = Sb::on(tier, v.spec(SandboxUser::Root, true)).await;
    const MS_RDONLY_REMOUNT_BIND: i64 = 32 | 4096; // MS_REMOUNT | MS_BIND
    let r = probe(
        &sb,
        &format!(
            r#"
        out('write', tryf(lambda: open('/vol/x', 'w').write('x')))
        out('mkdir', tryf(lambda: os.mkdir('/vol/d')))
        out('remount', sc(165, b'none', b'/vol', b'none', {MS_RDONLY_REMOUNT_BIND}, 0))
        out('over', sc(165, b'none', b'/vol', b'tmpfs', 0, 0))
        out('loops', len([d for d in os.listdir('/dev') if d.startswith('loop')]))
        "#
        ),
    )
    .await;
    assert_eq!(get(&r, "write"), "EROFS", "{tier:?}: {r:?}");
    assert_eq!(get(&r, "mkdir"), "EROFS", "{tier:?}: {r:?}");
    assert_eq!(get(&r, "remount"), "EPERM", "{tier:?}: {r:?}");
    assert_eq!(get(&r, "over"), "EPERM", "{tier:?}: {r:?}");
    assert_eq!(get(&r, "loops"), "0", "{tier:?}: {r:?}");
    drop(sb);
    assert!(!v.host_dir().join("x").exists());

    let rw = Sb::on(tier, v.spec(SandboxUser::Root, false)).await;
    let r = probe(
        &rw,
        "out('write', tryf(lambda: open('/vol/x', 'w').write('x')))",
    )
    .await;
    assert_eq!(get(&r, "write"), "OK", "{tier:?}: {r:?}");
    drop(rw);
    assert!(v.host_dir().join("x").exists());
}

both_tiers!(
    what_one_sandbox_plants_gives_the_next_nothing,
    a_read_only_volume_stays_read_only,
);
