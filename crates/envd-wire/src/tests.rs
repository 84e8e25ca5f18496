//! The wire details the SDKs depend on: proto3 JSON names and encodings,
//! binary field numbers, envelopes and error shapes.

use crate::connect::{self, Code, Codec, Error, Shape};
use crate::filesystem::{EntryInfo, FileType};
use crate::process::{
    process_event, process_selector, ProcessEvent, ProcessSelector, StartRequest, StartResponse,
};
use serde_json::json;

#[test]
fn content_types_pick_codec_and_shape() {
    assert_eq!(
        Codec::from_content_type("application/json"),
        Some((Codec::Json, Shape::Unary))
    );
    assert_eq!(
        Codec::from_content_type("application/json; charset=utf-8"),
        Some((Codec::Json, Shape::Unary))
    );
    assert_eq!(
        Codec::from_content_type("application/connect+proto"),
        Some((Codec::Proto, Shape::Stream))
    );
    assert_eq!(Codec::from_content_type("application/connect+xml"), None);
    assert_eq!(Codec::from_content_type("text/plain"), None);
    assert_eq!(
        Codec::Proto.content_type(Shape::Stream),
        "application/connect+proto"
    );
}

#[test]
fn the_sdk_start_request_decodes_from_json() {
    // What the SDKs send for commands.run("echo hi") (camelCase or not).
    let body = json!({
        "process": {"cmd": "/bin/bash", "args": ["-l", "-c", "echo hi"],
                    "envs": {"A": "1"}, "cwd": "/scratch"},
        "tag": "t1",
        "stdin": false,
        "someFieldFromTheFuture": 1
    });
    let req: StartRequest = Codec::Json.decode(body.to_string().as_bytes()).unwrap();
    let p = req.process.unwrap();
    assert_eq!(p.cmd, "/bin/bash");
    assert_eq!(p.args, ["-l", "-c", "echo hi"]);
    assert_eq!(p.envs.get("A").map(String::as_str), Some("1"));
    assert_eq!(p.cwd.as_deref(), Some("/scratch"));
    assert_eq!(req.tag.as_deref(), Some("t1"));
    assert_eq!(req.stdin, Some(false));
    // An empty JSON body is the empty message.
    let empty: StartRequest = Codec::Json.decode(b"").unwrap();
    assert!(empty.process.is_none());
    let bad = Codec::Json.decode::<StartRequest>(b"{").unwrap_err();
    assert_eq!(bad.code, Code::InvalidArgument);
}

#[test]
fn process_events_encode_as_the_sdk_parses_them() {
    let data = StartResponse {
        event: Some(ProcessEvent {
            event: Some(process_event::Event::Data(process_event::DataEvent {
                output: Some(process_event::data_event::Output::Stdout(b"hi\n".to_vec())),
            })),
        }),
    };
    let v: serde_json::Value = serde_json::from_slice(&Codec::Json.encode(&data)).unwrap();
    assert_eq!(v, json!({"event": {"data": {"stdout": "aGkK"}}}));

    let end = StartResponse {
        event: Some(ProcessEvent {
            event: Some(process_event::Event::End(process_event::EndEvent {
                exit_code: 3,
                exited: true,
                status: "exit status 3".into(),
                error: None,
            })),
        }),
    };
    let v: serde_json::Value = serde_json::from_slice(&Codec::Json.encode(&end)).unwrap();
    assert_eq!(
        v,
        json!({"event": {"end": {"exitCode": 3, "exited": true, "status": "exit status 3"}}})
    );
    // Binary: the oneof's field numbers (event.end = 3, exit_code = 1 as
    // zig-zag sint32) survive a round trip.
    let bin = Codec::Proto.encode(&end);
    assert_eq!(Codec::Proto.decode::<StartResponse>(&bin).unwrap(), end);
}

#[test]
fn selectors_and_entries_use_proto3_json() {
    let sel: ProcessSelector = Codec::Json.decode(br#"{"pid": 42}"#).unwrap();
    assert_eq!(sel.selector, Some(process_selector::Selector::Pid(42)));
    let sel: ProcessSelector = Codec::Json.decode(br#"{"tag": "web"}"#).unwrap();
    assert_eq!(
        sel.selector,
        Some(process_selector::Selector::Tag("web".into()))
    );

    let e = EntryInfo {
        name: "a.txt".into(),
        r#type: FileType::File as i32,
        path: "/scratch/a.txt".into(),
        size: 5,
        mode: 0o644,
        permissions: "-rw-r--r--".into(),
        owner: "sandbox".into(),
        group: "sandbox".into(),
        modified_time: Some(pbjson_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        }),
        ..Default::default()
    };
    let v: serde_json::Value = serde_json::from_slice(&Codec::Json.encode(&e)).unwrap();
    assert_eq!(v["type"], "FILE_TYPE_FILE");
    assert_eq!(v["size"], "5", "int64 is a JSON string in proto3");
    // RFC 3339 (pbjson writes the offset as +00:00; proto3 JSON parsers,
    // the SDKs' included, accept any offset).
    assert_eq!(v["modifiedTime"], "2023-11-14T22:13:20+00:00");
    assert_eq!(v["permissions"], "-rw-r--r--");
}

#[test]
fn envelopes_frame_one_message() {
    let env = connect::envelope(0, b"{}");
    assert_eq!(&env[..], b"\0\0\0\0\x02{}");
    assert_eq!(connect::single_message(&env).unwrap(), b"{}");
    assert_eq!(
        connect::single_message(b"\0\0\0").unwrap_err().code,
        Code::InvalidArgument
    );
    assert_eq!(
        connect::single_message(b"\x01\0\0\0\x02{}")
            .unwrap_err()
            .code,
        Code::Unimplemented,
        "compressed envelopes are refused"
    );
    assert_eq!(
        connect::single_message(b"\0\0\0\0\x05{}").unwrap_err().code,
        Code::InvalidArgument,
        "a short payload"
    );
    assert_eq!(
        connect::single_message(b"\0\xff\xff\xff\xff")
            .unwrap_err()
            .code,
        Code::ResourceExhausted
    );
}

#[test]
fn errors_have_connect_codes_statuses_and_end_stream_shape() {
    let e = Error::not_found("no such process");
    assert_eq!(e.code.http_status(), 404);
    assert_eq!(
        e.to_json(),
        json!({"code": "not_found", "message": "no such process"})
    );
    let end = connect::end_stream(Some(&e));
    assert_eq!(end[0], connect::FLAG_END_STREAM);
    let body: serde_json::Value = serde_json::from_slice(&end[5..]).unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    let ok = connect::end_stream(None);
    assert_eq!(&ok[5..], b"{}");
    assert_eq!(Code::Unauthenticated.http_status(), 401);
    assert_eq!(Code::Unimplemented.http_status(), 501);
    assert_eq!(connect::parse_timeout_ms("60000"), Some(60000));
    assert_eq!(connect::parse_timeout_ms("12345678901"), None);
    assert_eq!(connect::parse_timeout_ms("-1"), None);
}
