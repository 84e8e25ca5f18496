//! Upload checks: types from the bytes against the tenant's allowed list, zip
//! bombs in office clothing, and the scanner hook, each refused with a clear
//! 4xx, nothing left in the store, and the refusal in the audit chain.

use crate::harness::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use zipgen::{office_zip, zip, Entry};

mod zipgen;

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// A raw upload, whatever its answer.
async fn try_upload(a: &Api, name: &str, bytes: Vec<u8>) -> Reply {
    let enc: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
    a.send(
        a.req(Method::POST, &format!("/v1/files?name={enc}"))
            .body(bytes),
    )
    .await
}

/// The object ids in a tenant's part of the store.
fn stored(server: &Server, tid: &str) -> BTreeSet<String> {
    let dir = server
        .data_dir
        .join("objects/tenants")
        .join(tid)
        .join("files");
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The tenant's `file.upload` audit entries as (actor, target, outcome).
async fn upload_audit(a: &Api) -> Vec<(String, String, String)> {
    audited(a, "file.upload").await
}

async fn put_json(api: &Api, path: &str, body: Value) -> Reply {
    api.send(api.req(Method::PUT, path).json(&body)).await
}

fn ids(files: &[&Value]) -> BTreeSet<String> {
    files
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renamed_executables_nul_floods_and_empty_files_are_refused() {
    let server = Server::start();
    let admin = server.admin();
    let (tid, a) = admin.tenant("checked", None).await;
    let csv = a
        .upload("ok.csv", b"region,amount\nnorth,10\nsouth,32\n")
        .await;
    assert_eq!(
        (csv["content_type"].as_str(), csv["scan"].is_null()),
        (Some("text/csv"), true)
    );
    let pdf = a
        .upload("ok.pdf", b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n")
        .await;
    let book = a.upload("book.xlsx", &office_zip("xl/workbook.xml")).await;
    assert_eq!(book["content_type"], XLSX);

    // An executable named like a report: the bytes decide, raw, multipart
    // or through a signed URL alike.
    let elf = std::fs::read("/bin/true").unwrap();
    let m = refused(
        &try_upload(&a, "report.pdf", elf.clone()).await,
        415,
        "type_not_allowed",
    );
    assert!(
        m.contains("executable (application/x-executable)") && m.contains("allowed: pdf, csv"),
        "{m}"
    );
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(elf.clone()).file_name("q3.xlsx"),
    );
    let r = a
        .send(a.req(Method::POST, "/v1/files").multipart(form))
        .await;
    refused(&r, 415, "type_not_allowed");
    let u = a
        .post("/v1/files/upload-url", json!({"name": "notes.txt"}))
        .await;
    let put = a
        .send(
            a.http
                .put(u.body["url"].as_str().unwrap())
                .body(elf.clone()),
        )
        .await;
    refused(&put, 415, "type_not_allowed");

    // A CSV whose text head hides a NUL flood (past the sniffed 8 KiB), and
    // one that floods at once: binary data, not text.
    let mut flood = "id,name,amount\n".to_string();
    while flood.len() < 20_000 {
        flood.push_str("1,widget,10\n");
    }
    let mut late = flood.into_bytes();
    late.extend(vec![0u8; 4 << 20]);
    let m = refused(
        &try_upload(&a, "late.csv", late).await,
        415,
        "type_not_allowed",
    );
    assert!(
        m.contains("octet-stream") && m.contains("starts as csv") && m.contains("NUL"),
        "{m}"
    );
    let mut early = b"a,b\n1,2\n".to_vec();
    early.extend(vec![0u8; 1 << 20]);
    let m = refused(
        &try_upload(&a, "early.csv", early).await,
        415,
        "type_not_allowed",
    );
    assert!(m.contains("octet-stream"), "{m}");

    // A 0-byte file: refused unless the tenant's policy lists `empty`.
    let m = refused(
        &try_upload(&a, "blank.csv", Vec::new()).await,
        422,
        "empty_file",
    );
    assert!(m.contains("0 bytes"), "{m}");

    // Nothing refused was kept, or listed.
    assert_eq!(stored(&server, &tid), ids(&[&csv, &pdf, &book]));
    assert_eq!(
        a.get("/v1/files").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let audit = upload_audit(&a).await;
    let outcomes: Vec<&str> = audit.iter().map(|(_, _, o)| o.as_str()).collect();
    assert_eq!(
        outcomes,
        [
            "ok",
            "ok",
            "ok",
            "type_not_allowed: executable",
            "type_not_allowed: executable",
            "type_not_allowed: executable",
            "type_not_allowed: octet-stream",
            "type_not_allowed: octet-stream",
            "empty_file"
        ],
        "{audit:?}"
    );
    assert_eq!(audit[5].0, "upload-url");
    assert_eq!(audit[3].1, "report.pdf");

    // The per-tenant policy: admin only, names checked, null resets it.
    let path = format!("/v1/tenants/{tid}/upload-policy");
    let p = admin.get(&path).await;
    assert_eq!(p.status, 200, "{}", p.text);
    assert_eq!(
        p.body,
        json!({"allowed_types": ["pdf", "csv", "text", "json", "xlsx", "docx", "png", "jpeg"], "default": true})
    );
    assert_eq!(a.get(&path).await.status, 401);
    let bad = put_json(&admin, &path, json!({"allowed_types": ["exe"]})).await;
    assert!(refused(&bad, 400, "bad_request").contains("unknown type \"exe\""));
    let set = put_json(&admin, &path, json!({"allowed_types": ["CSV", "empty"]})).await;
    assert_eq!(
        set.body,
        json!({"allowed_types": ["csv", "empty"], "default": false}),
        "{}",
        set.text
    );
    let blank = a.upload("blank.csv", b"").await;
    assert_eq!(
        (blank["size"].as_u64(), blank["content_type"].as_str()),
        (Some(0), Some("application/x-empty"))
    );
    let m = refused(
        &try_upload(&a, "ok.pdf", b"%PDF-1.4\n%%EOF\n".to_vec()).await,
        415,
        "type_not_allowed",
    );
    assert!(
        m.contains("pdf (application/pdf)") && m.contains("allowed: csv, empty"),
        "{m}"
    );
    let reset = put_json(&admin, &path, json!({"allowed_types": null})).await;
    assert_eq!(reset.body["default"], true, "{}", reset.text);
    let gone = admin.get("/v1/tenants/tn_nope/upload-policy").await;
    assert_eq!(gone.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zip_bombs_disguised_as_office_files_are_refused() {
    let server = Server::start_env(
        RuntimeDirs::shared(),
        &[("WARDEN_UPLOADS_MAX_ZIP_ENTRIES", "50")],
    );
    let (tid, a) = server.admin().tenant("bombed", None).await;
    let xml = |s: &str| Entry::stored(s, b"<?xml version=\"1.0\"?><x/>");
    // 2 GiB of zeros in ~13 MB: over the 1 GiB total.
    let bomb = zip(&[
        xml("[Content_Types].xml"),
        xml("xl/workbook.xml"),
        Entry::zeros("xl/worksheets/sheet1.xml", 2 << 30),
    ]);
    assert!(bomb.len() < 16 << 20, "{}", bomb.len());
    let m = refused(
        &try_upload(&a, "q3.xlsx", bomb).await,
        422,
        "archive_rejected",
    );
    assert!(
        m.starts_with("max_zip_uncompressed_bytes:") && m.contains("sheet1.xml"),
        "{m}"
    );
    // 200 MiB in ~1.3 MB: under the total, but 158:1.
    let dense = zip(&[
        xml("word/document.xml"),
        Entry::zeros("word/media/blob.bin", 200 << 20),
    ]);
    let m = refused(
        &try_upload(&a, "memo.docx", dense).await,
        422,
        "archive_rejected",
    );
    assert!(
        m.starts_with("max_zip_ratio:") && m.contains("(158:1); at most 100:1"),
        "{m}"
    );
    // 64 MiB of zeros declaring 1 MiB: passes on paper, caught inflating.
    let mut liar = Entry::zeros("xl/worksheets/sheet1.xml", 64 << 20);
    liar.size = 1 << 20;
    let m = refused(
        &try_upload(&a, "liar.xlsx", zip(&[xml("xl/workbook.xml"), liar])).await,
        422,
        "archive_rejected",
    );
    assert!(
        m.starts_with("declared_size:") && m.contains("1048576 bytes it declares"),
        "{m}"
    );
    // More entries than the limit.
    let mut many: Vec<Entry> = (0..60)
        .map(|i| xml(&format!("xl/worksheets/sheet{i}.xml")))
        .collect();
    many.push(xml("xl/workbook.xml"));
    let m = refused(
        &try_upload(&a, "wide.xlsx", zip(&many)).await,
        422,
        "archive_rejected",
    );
    assert!(
        m.starts_with("max_zip_entries:") && m.contains("61 entries"),
        "{m}"
    );
    // The same bomb behind a PDF header: sniffed as a PDF (an allowed
    // type), still opened by any zip reader (issue 15, item 18).
    let mut polyglot = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n".to_vec();
    polyglot.extend(zip(&[
        xml("word/document.xml"),
        Entry::zeros("word/media/blob.bin", 200 << 20),
    ]));
    let m = refused(
        &try_upload(&a, "report.pdf", polyglot).await,
        422,
        "archive_rejected",
    );
    assert!(m.starts_with("max_zip_ratio:"), "{m}");
    // A bare zip is not an office file, whatever its name.
    let m = refused(
        &try_upload(&a, "data.xlsx", zip(&[xml("data.xml")])).await,
        415,
        "type_not_allowed",
    );
    assert!(m.contains("zip (application/zip)"), "{m}");
    // A real-shaped workbook passes.
    let ok = a.upload("fine.xlsx", &office_zip("xl/workbook.xml")).await;
    let doc = a
        .upload("fine.docx", &office_zip("word/document.xml"))
        .await;
    assert_eq!(stored(&server, &tid), ids(&[&ok, &doc]));
    let outcomes: Vec<String> = upload_audit(&a).await.into_iter().map(|e| e.2).collect();
    assert_eq!(
        outcomes,
        [
            "archive_rejected: max_zip_uncompressed_bytes",
            "archive_rejected: max_zip_ratio",
            "archive_rejected: declared_size",
            "archive_rejected: max_zip_entries",
            "archive_rejected: max_zip_ratio",
            "type_not_allowed: zip",
            "ok",
            "ok"
        ]
    );
}

/// A stand-in for `clamdscan --no-summary --stdout {path}`: a real program
/// with clamdscan's exit codes, flagging files that carry a marker. It logs
/// each path it is given next to itself.
const SCANNER: &str = r#"#!/bin/sh
echo "$1" >> "$(dirname "$0")/calls"
if grep -q 'WARDEN-TEST-SIGNATURE' "$1"; then echo "$1: Warden.Test.Signature FOUND"; exit 1; fi
if grep -q 'BREAK-THE-SCANNER' "$1"; then echo "$1: lstat() failed" >&2; exit 2; fi
echo "$1: OK"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scanner_hook_decides_and_its_verdict_is_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("scan.sh");
    std::fs::write(&script, SCANNER).unwrap();
    let argv = format!("/bin/sh {} {{path}}", script.display());
    let server = Server::start_env(
        RuntimeDirs::shared(),
        &[("WARDEN_UPLOADS_SCANNER", argv.as_str())],
    );
    let (tid, a) = server.admin().tenant("scanned", None).await;
    let clean = a.upload("clean.csv", b"a,b\n1,2\n3,4\n").await;
    assert_eq!(clean["scan"], "clean");
    let got = a
        .get(&format!("/v1/files/{}", clean["id"].as_str().unwrap()))
        .await;
    assert_eq!(got.body["scan"], "clean");
    let bad = b"a,b\n1,WARDEN-TEST-SIGNATURE\n".to_vec();
    let m = refused(
        &try_upload(&a, "bad.csv", bad.clone()).await,
        422,
        "malware_detected",
    );
    // The scanner's line, naming the upload, never the server's storage path.
    assert_eq!(
        m,
        "the upload scanner flagged the file: bad.csv: Warden.Test.Signature FOUND"
    );
    let broken = b"a,b\n1,BREAK-THE-SCANNER\n".to_vec();
    let m = refused(
        &try_upload(&a, "odd.csv", broken.clone()).await,
        503,
        "scanner_unavailable",
    );
    assert!(
        m.contains("exit status: 2") && m.contains("odd.csv: lstat() failed"),
        "{m}"
    );
    // Type checks come first: the scanner never sees a refused type. It
    // saw the three others, in the store.
    refused(
        &try_upload(&a, "x.csv", std::fs::read("/bin/true").unwrap()).await,
        415,
        "type_not_allowed",
    );
    let calls = std::fs::read_to_string(tmp.path().join("calls")).unwrap();
    assert_eq!(calls.lines().count(), 3, "{calls}");
    assert!(
        calls.lines().all(|l| l.contains("/objects/tenants/")),
        "{calls}"
    );
    assert_eq!(stored(&server, &tid), ids(&[&clean]));
    let outcomes: Vec<String> = upload_audit(&a).await.into_iter().map(|e| e.2).collect();
    assert_eq!(
        outcomes[1],
        "malware_detected: bad.csv: Warden.Test.Signature FOUND"
    );
    assert!(
        outcomes[2].starts_with("scanner_unavailable: /bin/sh exit status: 2"),
        "{outcomes:?}"
    );
    drop(server);

    // Fail-open: a broken scanner's error is the verdict; a flag still refuses.
    let env = [
        ("WARDEN_UPLOADS_SCANNER", argv.as_str()),
        ("WARDEN_UPLOADS_SCANNER_FAIL_CLOSED", "false"),
    ];
    let server = Server::start_env(RuntimeDirs::shared(), &env);
    let (_, a) = server.admin().tenant("lenient", None).await;
    let kept = a.upload("odd.csv", &broken).await;
    assert!(
        kept["scan"]
            .as_str()
            .unwrap()
            .starts_with("error: /bin/sh exit status: 2"),
        "{kept}"
    );
    refused(
        &try_upload(&a, "bad.csv", bad).await,
        422,
        "malware_detected",
    );
}
