//! Attacks stopped by: Output export.

use super::helpers::*;

// ===========================================================================
// Layer: export (warden_runtime::export: strict reads in the sandbox, cap_std on the host)
// ===========================================================================

/// Everything hostile planted in /output is skipped with a reason; nothing
/// lands outside the destination; the plain files next to them are exported.
async fn export_refuses_hostile_output(tier: Tier) {
    // A disk limit above 10 GiB so the sparse file can be made at all
    // (RLIMIT_FSIZE follows the disk limit; see file_size_limit_is_enforced).
    let sb = Sb::on(tier, spec(|s| s.limits.disk_bytes = 16 << 30)).await;
    let tok = token();
    let r = probe_args(
        &sb,
        r#"
        t = sys.argv[1]
        os.chdir('/output')
        open('good.txt', 'w').write('good ' + t)
        os.mkdir('sub')
        open('sub/inner.txt', 'w').write('inner')
        open('..dots-' + t, 'w').write('dots')
        os.symlink('/etc/passwd', 'passwd-link')
        os.symlink('/', 'root-link')
        os.symlink('../../../../tmp', 'up-link')
        os.symlink('/etc', 'dir-link')
        open('hard-a', 'w').write('shared')
        os.link('hard-a', 'hard-b')
        os.mkfifo('fifo')
        s = socket.socket(socket.AF_UNIX); s.bind('/output/sock')
        with open('sparse', 'wb') as f:
            f.truncate(10 << 30)
        open('..\\..\\..\\escape-' + t, 'w').write('escape')
        open('line\nbreak', 'w').write('nl')
        open(b'\xff\xfe-bad-utf8', 'w').write('bad')
        open('tab\there', 'w').write('tab')
        os.makedirs('/'.join(['deep'] * 40))
        open('/'.join(['deep'] * 40) + '/bottom.txt', 'w').write('bottom')
        out('sparse_size', os.stat('sparse').st_size)
        out('sparse_blocks', os.stat('sparse').st_blocks)
        "#,
        &[&tok],
    )
    .await;
    assert_eq!(get(&r, "sparse_size"), (10u64 << 30).to_string());
    let passwd_before = sha256(Path::new("/etc/passwd"));

    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("out");
    let report = warden_runtime::export::export(&sb.client, "/output", &dest, 64 << 20)
        .await
        .expect("export");

    // Control: the plain files are exported, byte for byte.
    assert_eq!(
        std::fs::read_to_string(dest.join("good.txt")).unwrap(),
        format!("good {tok}")
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("sub/inner.txt")).unwrap(),
        "inner"
    );
    assert_eq!(
        std::fs::read_to_string(dest.join(format!("..dots-{tok}"))).unwrap(),
        "dots"
    );

    let skipped = |name: &str, why: &str| {
        let hit = report
            .skipped
            .iter()
            .find(|s| s.path == format!("/output/{name}"))
            .unwrap_or_else(|| panic!("{name} not in skipped: {:#?}", report.skipped));
        assert!(
            hit.reason.contains(why),
            "{name} skipped for {:?}, expected {why:?}",
            hit.reason
        );
    };
    for l in ["passwd-link", "root-link", "up-link", "dir-link"] {
        skipped(l, "symlink");
    }
    skipped("hard-a", "hard link");
    skipped("hard-b", "hard link");
    skipped("fifo", "special file");
    skipped("sock", "special file");
    skipped("sparse", "export limit");
    skipped(&format!("..\\\\..\\\\..\\\\escape-{tok}"), "path separator");
    skipped("line\\nbreak", "control characters");
    skipped("tab\\there", "control characters");
    skipped("\\xff\\xfe-bad-utf8", "UTF-8");
    assert!(
        report
            .skipped
            .iter()
            .any(|s| s.reason.contains("nested too deep")),
        "{:#?}",
        report.skipped
    );
    let reported: BTreeSet<&str> = report.files.iter().map(|(p, _)| p.as_str()).collect();
    assert!(reported.contains("good.txt") && reported.contains("sub/inner.txt"));
    assert!(report.bytes < 1 << 20, "{} bytes exported", report.bytes);

    // The host side holds only plain files and directories, all inside dest.
    let mut found = Vec::new();
    let mut stack = vec![dest.clone()];
    while let Some(d) = stack.pop() {
        for ent in std::fs::read_dir(&d).unwrap() {
            let ent = ent.unwrap();
            let md = std::fs::symlink_metadata(ent.path()).unwrap();
            let rel = ent
                .path()
                .strip_prefix(&dest)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if md.is_dir() {
                stack.push(ent.path());
            } else {
                assert!(md.is_file(), "{rel} is not a plain file on the host");
                assert_eq!(md.nlink(), 1, "{rel}");
                assert!(md.len() < 1 << 20, "{rel} is {} bytes", md.len());
                found.push(rel);
            }
        }
    }
    found.sort();
    assert_eq!(
        found,
        [
            format!("..dots-{tok}"),
            "good.txt".into(),
            "sub/inner.txt".into()
        ],
        "unexpected files on the host"
    );
    // Nothing beside dest in the temp dir, nothing escaped into its parent.
    let beside: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(beside, ["out"], "files written next to the destination");
    for ent in std::fs::read_dir(tmp.path().parent().unwrap())
        .unwrap()
        .flatten()
    {
        assert!(
            !ent.file_name().to_string_lossy().contains(&tok),
            "{:?} escaped the destination",
            ent.path()
        );
    }
    assert_eq!(passwd_before, sha256(Path::new("/etc/passwd")));
}

/// TOCTOU: a process in the sandbox keeps swapping `/output/race` between a
/// regular file and a symlink to the sandbox's /etc/hostname while the host
/// exports repeatedly. Whatever the timing, the export either copies the
/// regular file's content or skips the entry; it never reads through the
/// link.
async fn export_survives_symlink_swap_race(tier: Tier) {
    let sb = Sb::default_on(tier).await;
    sb.client
        .spawn(ExecRequest::argv([
            "/usr/bin/python3",
            "-c",
            &dedent(
                r#"
                import os
                os.chdir('/output')
                os.symlink('/etc/hostname', 'link')
                while True:
                    open('tmpf', 'w').write('regular')
                    os.rename('tmpf', 'race')
                    os.symlink('/etc/hostname', 'tmpl')
                    os.rename('tmpl', 'race')
                "#,
            ),
        ]))
        .await
        .unwrap();
    // Wait for the swapper to be running.
    for _ in 0..200 {
        if sb.client.stat("/output/race").await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (mut copied, mut as_link) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut i = 0;
    // Until both outcomes were seen a few times: proof the race was live.
    while Instant::now() < deadline && (copied < 3 || as_link < 3) {
        i += 1;
        let dest = tmp.path().join(format!("e{i}"));
        let report = warden_runtime::export::export(&sb.client, "/output", &dest, 1 << 20)
            .await
            .expect("export");
        let race = dest.join("race");
        if let Ok(md) = std::fs::symlink_metadata(&race) {
            assert!(md.is_file(), "race exported as {md:?}");
            let c = std::fs::read_to_string(&race).unwrap();
            assert_eq!(c, "regular", "export read through the symlink");
            copied += 1;
        }
        for s in report.skipped.iter().filter(|s| s.path == "/output/race") {
            let r = s.reason.to_lowercase();
            // Listed as a symlink, or listed as a file and found to be a
            // symlink when opened (openat2 RESOLVE_NO_SYMLINKS: ELOOP).
            if r.contains("symlink") || r.contains("levels of symbolic links") {
                as_link += 1;
            } else {
                // Replaced between readdir and lstat/open: the old inode
                // (no links left) or nothing at all. Skipping it is safe.
                assert!(
                    r.contains("removed during export")
                        || r.contains("0 links")
                        || r.contains("no such file"),
                    "race skipped for {:?}",
                    s.reason
                );
            }
        }
        for name in ["link", "tmpl"] {
            assert!(!dest.join(name).exists(), "symlink {name} exported");
        }
    }
    match tier {
        Tier::Native => assert!(
            copied > 0 && as_link > 0,
            "race never observed both ways: {copied} copied, {as_link} refused in {i} exports"
        ),
        // Under gVisor (ptrace platform) the exports observed so far
        // caught the name as a symlink every time; what matters, that no
        // export ever read through it, is asserted above either way.
        Tier::Gvisor => {
            assert!(
                as_link > 0,
                "race never observed: {copied} copied in {i} exports"
            );
            if copied == 0 {
                tier.skip(
                    "seeing the swapped name as a regular file too",
                    "not observed within 5 s under gVisor",
                );
            }
        }
    }
}

both_tiers!(
    export_refuses_hostile_output,
    export_survives_symlink_swap_race,
);
