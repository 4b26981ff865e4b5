//! Every body format, encoding and error class of `decode_push`, with Loki's exact statuses and
//! messages. Protobuf bodies are hand-assembled wire bytes, independent of our encoder.

use std::io::Write;

use lode_model::Entry;
use lode_model::api::{PushRequest, PushStream};

use super::*;

pub(super) const V1: bool = false;
pub(super) const LEGACY: bool = true;
pub(super) const JSON: Option<&str> = Some("application/json");
pub(super) const PROTO: Option<&str> = Some("application/x-protobuf");

fn limits() -> DecodeLimits {
    DecodeLimits {
        max_recv_bytes: 1 << 20,
        max_decompressed_bytes: 1 << 20,
    }
}

pub(super) fn decode(
    body: &[u8],
    ct: Option<&str>,
    ce: Option<&str>,
    legacy: bool,
) -> Result<PushRequest, DecodeError> {
    decode_push(body, ct, ce, legacy, &limits())
}

/// Asserts the error's status and exact message.
fn assert_err(r: Result<PushRequest, DecodeError>, status: u16, message: &str) {
    let e = r.expect_err("expected an error");
    assert_eq!((e.http_status(), e.to_string().as_str()), (status, message));
}

fn assert_err_prefix(r: Result<PushRequest, DecodeError>, status: u16, prefix: &str) {
    let e = r.expect_err("expected an error");
    assert_eq!(e.http_status(), status, "{e}");
    assert!(
        e.to_string().starts_with(prefix),
        "{e:?} does not start with {prefix:?}"
    );
}

fn stream(labels: &str, entries: Vec<Entry>) -> PushStream {
    PushStream {
        labels: labels.to_string(),
        entries,
    }
}

fn entry(ts: i64, line: &str, md: &[(&str, &str)]) -> Entry {
    Entry {
        ts,
        line: line.to_string(),
        metadata: md.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        parsed: Vec::new(),
    }
}

pub(super) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn raw_deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub(super) fn snappy(data: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(data).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Protobuf

/// `PushRequest{streams: [{labels: "{a=\"b\"}", entries: [{timestamp: {1s, 2ns}, line: "hi",
/// structuredMetadata: [{k, v}]}]}]}`, assembled by hand.
#[rustfmt::skip]
const PROTO_WIRE: &[u8] = &[
    0x0a, 0x1d,                                              // streams: field 1, LEN 29
      0x0a, 0x07, b'{', b'a', b'=', b'"', b'b', b'"', b'}',  //   labels: field 1, LEN 7
      0x12, 0x12,                                            //   entries: field 2, LEN 18
        0x0a, 0x04, 0x08, 0x01, 0x10, 0x02,                  //     timestamp {seconds: 1, nanos: 2}
        0x12, 0x02, b'h', b'i',                              //     line: "hi"
        0x1a, 0x06, 0x0a, 0x01, b'k', 0x12, 0x01, b'v',      //     structuredMetadata {k, v}
];

/// `PROTO_WIRE` as a snappy block written by hand: uncompressed length 31 (varint), then one
/// literal element (tag `(31-1) << 2`).
fn proto_snappy_literal() -> Vec<u8> {
    let mut v = vec![31, 30 << 2];
    v.extend_from_slice(PROTO_WIRE);
    v
}

fn proto_expected() -> PushRequest {
    PushRequest {
        streams: vec![stream(r#"{a="b"}"#, vec![entry(1_000_000_002, "hi", &[("k", "v")])])],
    }
}

#[test]
fn protobuf_hand_written_snappy_literal() {
    assert_eq!(
        decode(&proto_snappy_literal(), PROTO, None, V1).unwrap(),
        proto_expected()
    );
    // snap agrees with the hand-written block.
    assert_eq!(
        lode_model::decompress::snappy(&proto_snappy_literal(), 1 << 10).unwrap(),
        PROTO_WIRE
    );
}

#[test]
fn protobuf_snappy_block_with_a_copy_element() {
    // "abcdabcdabcd" = literal "abcd" + copy(offset 4, len 8): tag 0b01 | (8-4)<<2, offset byte.
    #[rustfmt::skip]
    let wire: &[u8] = &[
        0x0a, 0x14,                              // streams: LEN 20
          0x12, 0x12,                            //   entries: LEN 18
            0x0a, 0x02, 0x08, 0x05,              //     timestamp {seconds: 5}
            0x12, 0x0c,                          //     line: LEN 12
    ];
    let mut line_block = vec![(wire.len() + 12) as u8];
    line_block.push(((wire.len() + 4 - 1) << 2) as u8); // literal: the prefix + "abcd"
    line_block.extend_from_slice(wire);
    line_block.extend_from_slice(b"abcd");
    line_block.extend_from_slice(&[0b01 | (4 << 2), 4]); // copy 8 bytes from 4 back
    // The outer stream LEN (20) covers entries (2 + 18); entries' LEN 18 covers 4 + 2 + 12.
    let r = decode(&line_block, PROTO, None, V1).unwrap();
    assert_eq!(
        r.streams,
        vec![stream("", vec![entry(5_000_000_000, "abcdabcdabcd", &[])])]
    );
}

#[test]
fn protobuf_with_any_non_json_type_and_encodings() {
    let body = proto_snappy_literal();
    for ct in [
        "application/x-protobuf",
        "application/octet-stream",
        "text/plain; charset=utf-8",
        "x",
    ] {
        assert_eq!(decode(&body, Some(ct), None, V1).unwrap(), proto_expected(), "{ct}");
    }
    // Content-Encoding: snappy is a no-op (Vector sets it; loki#3407).
    assert_eq!(decode(&body, PROTO, Some("snappy"), V1).unwrap(), proto_expected());
    assert_eq!(decode(&body, PROTO, Some("snappy"), LEGACY).unwrap(), proto_expected());
    // gzip or deflate around the snappy block.
    assert_eq!(decode(&gzip(&body), PROTO, Some("gzip"), V1).unwrap(), proto_expected());
    assert_eq!(
        decode(&raw_deflate(&body), PROTO, Some("deflate"), V1).unwrap(),
        proto_expected()
    );
    // snap's encoder output decodes the same.
    assert_eq!(decode(&snappy(PROTO_WIRE), PROTO, None, V1).unwrap(), proto_expected());
}

#[test]
fn protobuf_errors() {
    // Valid snappy, invalid protobuf (field 1 LEN 100 with 2 bytes of payload).
    assert_err_prefix(
        decode(&snappy(&[0x0a, 0x64, 0x01, 0x02]), PROTO, None, V1),
        400,
        "failed to decode Protobuf message",
    );
    // Invalid UTF-8 in a line is read as U+FFFD, as Loki's clients see it (not a 400 that
    // would make an agent drop the whole batch).
    let req = decode(
        &snappy(&[0x0a, 0x06, 0x12, 0x04, 0x12, 0x02, 0xff, 0xfe]),
        PROTO,
        None,
        V1,
    )
    .unwrap();
    assert_eq!(req.streams[0].entries[0].line, "\u{fffd}\u{fffd}");
    // nanos = -1 (varint of -1 as int32 is 10 bytes).
    #[rustfmt::skip]
    let neg: &[u8] = &[
        0x0a, 0x11, 0x12, 0x0f, 0x0a, 0x0d, 0x08, 0x01,
        0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    ];
    assert_err(
        decode(&snappy(neg), PROTO, None, V1),
        400,
        "invalid timestamp (seconds: 1, nanos: -1): nanos not in range [0, 1e9)",
    );
    // Not snappy at all: protobuf sent without compression.
    assert_err_prefix(decode(PROTO_WIRE, PROTO, None, V1), 400, "snappy: ");
    assert_err_prefix(decode(b"\x05garbage", PROTO, None, V1), 400, "snappy: ");
}

#[test]
fn snappy_length_bomb_is_413_before_allocation() {
    // Declares 2,849,514,666 bytes in 5 bytes.
    let bomb = [170u8, 201, 224, 206, 10];
    assert_err(
        decode(&bomb, PROTO, None, V1),
        413,
        "request body too large: decompressed message size too large than max (2849514666 vs 1048576)",
    );
    assert_err(
        decode(&bomb, Some("application/octet-stream"), Some("snappy"), V1),
        413,
        "request body too large: decompressed message size too large than max (2849514666 vs 1048576)",
    );
}

// ---------------------------------------------------------------------------------------------
// JSON v1

const V1_BODY: &str = r#"{"streams":[
  {"stream":{"job":"app","env":"prod","a":"q\"uote\n"},
   "values":[["1570818238000000000","line 1"],
             ["1570818238000000001","line \"2\"\n",{"trace_id":"abc","user_id":"u\u00e9"}]]},
  {"values":[["-5","neg"]],"stream":{}}]}"#;

fn v1_expected() -> PushRequest {
    PushRequest {
        streams: vec![
            stream(
                r#"{a="q\"uote\n", env="prod", job="app"}"#,
                vec![
                    entry(1_570_818_238_000_000_000, "line 1", &[]),
                    entry(
                        1_570_818_238_000_000_001,
                        "line \"2\"\n",
                        &[("trace_id", "abc"), ("user_id", "u\u{e9}")],
                    ),
                ],
            ),
            stream("{}", vec![entry(-5, "neg", &[])]),
        ],
    }
}

#[test]
fn json_v1() {
    assert_eq!(decode(V1_BODY.as_bytes(), JSON, None, V1).unwrap(), v1_expected());
}

#[test]
fn json_media_type_parameters_and_case() {
    for ct in [
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/json;charset=\"UTF-8\";",
    ] {
        assert_eq!(
            decode(V1_BODY.as_bytes(), Some(ct), None, V1).unwrap(),
            v1_expected(),
            "{ct}"
        );
    }
}

#[test]
fn json_v1_compressed() {
    let b = V1_BODY.as_bytes();
    assert_eq!(decode(&gzip(b), JSON, Some("gzip"), V1).unwrap(), v1_expected());
    assert_eq!(
        decode(&raw_deflate(b), JSON, Some("deflate"), V1).unwrap(),
        v1_expected()
    );
    assert_eq!(decode(&zlib(b), JSON, Some("deflate"), V1).unwrap(), v1_expected());
    // snappy is a no-op: a JSON body under Content-Encoding: snappy is read as plain JSON.
    assert_eq!(decode(b, JSON, Some("snappy"), V1).unwrap(), v1_expected());
}

#[test]
fn json_v1_leniency_matches_loki() {
    let body = r#"{"unknown":1,"streams":[
        {"stream":{"job":"a"},"values":null,"extra":[1,2]},
        null,
        {"stream":{"job":"b","job":"c"},"values":[null,["1","x",null],["2","y",{"k":"v"},"ignored",{"x":1}]]},
        {"stream":{"k8s.pod":"p","":"e"},"values":[["3","z",{}]]},
        {"stream":null}
    ]}"#;
    assert_eq!(
        decode(body.as_bytes(), JSON, None, V1).unwrap().streams,
        vec![
            stream(r#"{job="a"}"#, vec![]),
            stream(r#"{job="c"}"#, vec![entry(1, "x", &[]), entry(2, "y", &[("k", "v")])]),
            // Invalid names are the distributor's business, per stream.
            stream(r#"{="e", k8s.pod="p"}"#, vec![entry(3, "z", &[])]),
            stream("{}", vec![]),
        ]
    );
    assert_eq!(decode(b"null", JSON, None, V1).unwrap(), PushRequest::default());
    assert_eq!(decode(b"{}", JSON, None, V1).unwrap(), PushRequest::default());
    assert_eq!(
        decode(br#"{"streams":null}"#, JSON, None, V1).unwrap(),
        PushRequest::default()
    );
}

#[test]
fn json_v1_errors() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"streams":[{"stream":{"a":"b"},"values":[[1570818238000000000,"x"]]}]}"#,
            "invalid type: integer `1570818238000000000`, expected a string holding the timestamp in Unix nanoseconds at line 1 column 62",
        ),
        (
            r#"{"streams":[{"stream":{"a":"b"},"values":[["15708x","x"]]}]}"#,
            "invalid timestamp \"15708x\": expected an integer number of Unix nanoseconds in a string at line 1 column 51",
        ),
        (
            r#"{"streams":[{"stream":{"a":"b"},"values":[["1",5]]}]}"#,
            "invalid type: integer `5`, expected a string at line 1 column 48",
        ),
        (
            r#"{"streams":[{"stream":{"a":"b"},"values":[["1","x",{"k":1}]]}]}"#,
            "invalid type: integer `1`, expected a string at line 1 column 57",
        ),
        (
            r#"{"streams":[{"stream":{"a":"b"},"values":[["1","x",{"k":{"n":"v"}}]]}]}"#,
            "invalid type: map, expected a string at line 1 column 56",
        ),
        (
            r#"{"streams":[{"stream":{"a":1},"values":[]}]}"#,
            "invalid type: integer `1`, expected a string at line 1 column 28",
        ),
        (
            r#"{"streams":[{"stream":{"a":"b"},"values":[["1"]]}]}"#,
            "invalid length 1, expected a [timestamp, line] or [timestamp, line, structured metadata] array at line 1 column 47",
        ),
        (
            r#"{"streams":[{"stream":{"a":"b"},"values":[["1","x"]]}"#,
            "EOF while parsing a list at line 1 column 53",
        ),
        ("", "EOF while parsing a value at line 1 column 0"),
        (r#"{"streams":[]} x"#, "trailing characters at line 1 column 16"),
        (
            r#"{"streams":{}}"#,
            "invalid type: map, expected a sequence at line 1 column 11",
        ),
    ];
    let got: Vec<(u16, String)> = cases
        .iter()
        .map(|(body, _)| {
            let e = decode(body.as_bytes(), JSON, None, V1).unwrap_err();
            (e.http_status(), e.to_string())
        })
        .collect();
    let want: Vec<(u16, String)> = cases.iter().map(|(_, m)| (400, m.to_string())).collect();
    assert_eq!(got, want);
}

#[test]
fn v0_body_on_v1_path_gives_streams_without_entries() {
    // Loki answers 204 and stores nothing.
    assert_eq!(
        decode(V0_BODY.as_bytes(), JSON, None, V1).unwrap().streams,
        vec![stream("{}", vec![]), stream("{}", vec![])]
    );
}

// ---------------------------------------------------------------------------------------------
// JSON legacy v0

const V0_BODY: &str = r#"{"streams":[
  {"labels":"{job=\"app\"}","entries":[
     {"ts":"2019-10-11T18:23:58.000000001Z","line":"x","structuredMetadata":[{"name":"trace_id","value":"abc"}]},
     {"ts":"2019-10-11T20:23:58.5+02:00","line":"y"}]},
  {"labels":"{job=\"b\"}","entries":null,"unknown":true}]}"#;

fn v0_expected() -> PushRequest {
    PushRequest {
        streams: vec![
            stream(
                r#"{job="app"}"#,
                vec![
                    entry(1_570_818_238_000_000_001, "x", &[("trace_id", "abc")]),
                    entry(1_570_818_238_500_000_000, "y", &[]),
                ],
            ),
            stream(r#"{job="b"}"#, vec![]),
        ],
    }
}

#[test]
fn json_legacy() {
    assert_eq!(decode(V0_BODY.as_bytes(), JSON, None, LEGACY).unwrap(), v0_expected());
    assert_eq!(
        decode(
            &gzip(V0_BODY.as_bytes()),
            Some("application/json; charset=utf-8"),
            Some("gzip"),
            LEGACY
        )
        .unwrap(),
        v0_expected()
    );
    // Missing fields and nulls.
    let body = r#"{"streams":[{"entries":[null,{"line":"l"},{"ts":null,"structuredMetadata":{"a":"b"}}]}]}"#;
    assert_eq!(
        decode(body.as_bytes(), JSON, None, LEGACY).unwrap().streams,
        vec![stream("", vec![entry(0, "l", &[]), entry(0, "", &[("a", "b")])])]
    );
}

#[test]
fn json_legacy_errors() {
    assert_err(
        decode(
            br#"{"streams":[{"labels":"{}","entries":[{"ts":"yesterday","line":"x"}]}]}"#,
            JSON,
            None,
            LEGACY,
        ),
        400,
        "parsing time \"yesterday\" as RFC3339: premature end of input at line 1 column 55",
    );
    assert_err(
        decode(
            br#"{"streams":[{"labels":"{}","entries":[{"ts":1,"line":"x"}]}]}"#,
            JSON,
            None,
            LEGACY,
        ),
        400,
        "invalid type: integer `1`, expected an RFC3339 timestamp string at line 1 column 45",
    );
    assert_err(
        decode(br#"{"streams":[{"labels":{"a":"b"}}]}"#, JSON, None, LEGACY),
        400,
        "invalid type: map, expected a string at line 1 column 22",
    );
}

#[test]
fn v1_body_on_legacy_path_decodes_per_legacy_schema() {
    assert_eq!(
        decode(V1_BODY.as_bytes(), JSON, None, LEGACY).unwrap().streams,
        vec![stream("", vec![]), stream("", vec![])]
    );
}

// ---------------------------------------------------------------------------------------------
// Headers and sizes

#[test]
fn unsupported_content_encoding() {
    for ce in ["br", "GZIP", "zstd", "gzip, deflate"] {
        assert_err(
            decode(V1_BODY.as_bytes(), JSON, Some(ce), V1),
            400,
            &format!("Content-Encoding \"{ce}\" not supported"),
        );
    }
}

#[test]
fn missing_or_bad_content_type() {
    assert_err(decode(V1_BODY.as_bytes(), None, None, V1), 400, "mime: no media type");
    assert_err(
        decode(&proto_snappy_literal(), Some(""), None, V1),
        400,
        "mime: no media type",
    );
    assert_err(
        decode(V1_BODY.as_bytes(), Some("application/json; charset"), None, V1),
        400,
        "mime: invalid media parameter",
    );
    // A bare type is valid (as in Go) and, not being application/json, takes the protobuf path.
    assert_eq!(
        decode(&proto_snappy_literal(), Some("application"), None, V1).unwrap(),
        proto_expected()
    );
}

#[test]
fn bad_compressed_data() {
    assert_err_prefix(decode(b"not gzip", JSON, Some("gzip"), V1), 400, "gzip: ");
    // Go's wording for a body that is not gzip at all.
    assert_err(
        decode(b"this body is not gzip at all", JSON, Some("gzip"), V1),
        400,
        "gzip: invalid header",
    );
    assert_err_prefix(decode(b"\xff\xff\xff", JSON, Some("deflate"), V1), 400, "deflate: ");
}

#[test]
fn size_caps_are_413() {
    let small = DecodeLimits {
        max_recv_bytes: 1 << 20,
        max_decompressed_bytes: 100,
    };
    let big = format!(
        r#"{{"streams":[{{"stream":{{"a":"b"}},"values":[["1","{}"]]}}]}}"#,
        "x".repeat(200)
    );
    let e = decode_push(&gzip(big.as_bytes()), JSON, Some("gzip"), V1, &small).unwrap_err();
    assert_eq!(e.http_status(), 413);
    assert_eq!(
        e.to_string(),
        "request body too large: decompressed message size too large than max (101 vs 100)"
    );
    let e = decode_push(&raw_deflate(big.as_bytes()), JSON, Some("deflate"), V1, &small).unwrap_err();
    assert_eq!(e.http_status(), 413);
    let e = decode_push(&snappy(big.as_bytes()), PROTO, None, V1, &small).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "request body too large: decompressed message size too large than max ({} vs 100)",
            big.len()
        )
    );
    let tiny = DecodeLimits {
        max_recv_bytes: 10,
        max_decompressed_bytes: 1 << 20,
    };
    assert_err(
        decode_push(V1_BODY.as_bytes(), JSON, None, V1, &tiny),
        413,
        &format!(
            "request body too large: message size too large than max ({} vs 10)",
            V1_BODY.len()
        ),
    );
    // Exactly at the cap is fine.
    let exact = DecodeLimits {
        max_recv_bytes: V1_BODY.len(),
        max_decompressed_bytes: V1_BODY.len(),
    };
    assert!(decode_push(&gzip(V1_BODY.as_bytes()), JSON, Some("gzip"), V1, &exact).is_ok());
}

#[test]
fn errors_convert_to_api_errors() {
    let e: ApiError = DecodeError::MediaType("mime: no media type").into();
    assert_eq!(
        (e.code, e.message.as_str()),
        (ErrorCode::BadRequest, "mime: no media type")
    );
    let e: ApiError = DecodeError::DecompressedTooLarge { size: 2, max: 1 }.into();
    assert_eq!(e.code.http_status(), 413);
}

#[test]
fn invalid_utf8_costs_neither_the_line_nor_the_request() {
    // JSON: a Latin-1 byte in a line, a label value and a metadata value; the other stream intact.
    let body =
        b"{\"streams\":[{\"stream\":{\"job\":\"caf\xe9\"},\"values\":[[\"5\",\"caf\xe9 au lait\",{\"k\":\"\xff\"}]]},\
                 {\"stream\":{\"job\":\"good\"},\"values\":[[\"6\",\"fine\"]]}]}";
    let req = decode(body, JSON, None, V1).unwrap();
    assert_eq!(req.streams.len(), 2);
    assert_eq!(req.streams[0].labels, "{job=\"caf\u{fffd}\"}");
    let e = &req.streams[0].entries[0];
    assert_eq!((e.ts, e.line.as_str()), (5, "caf\u{fffd} au lait"));
    assert_eq!(e.metadata, vec![("k".to_string(), "\u{fffd}".to_string())]);
    assert_eq!(req.streams[1].entries[0].line, "fine");
    // Invalid bytes outside strings are still a syntax error.
    assert!(decode(b"{\"streams\":\xff}", JSON, None, V1).is_err());

    // Protobuf: labels {a="\xff"}, line "x\xfey" with metadata n="\xc3", ts 1s+2ns.
    let labels: &[u8] = b"{a=\"\xff\"}";
    let mut entry = vec![0x0a, 0x04, 0x08, 0x01, 0x10, 0x02, 0x12, 0x03, b'x', 0xfe, b'y'];
    entry.extend_from_slice(&[0x1a, 0x06, 0x0a, 0x01, b'n', 0x12, 0x01, 0xc3]);
    let mut stream = vec![0x0a, labels.len() as u8];
    stream.extend_from_slice(labels);
    stream.push(0x12);
    stream.push(entry.len() as u8);
    stream.extend_from_slice(&entry);
    let mut raw = vec![0x0a, stream.len() as u8];
    raw.extend_from_slice(&stream);
    let req = decode(&snappy(&raw), PROTO, None, V1).unwrap();
    assert_eq!(req.streams[0].labels, "{a=\"\u{fffd}\"}");
    let e = &req.streams[0].entries[0];
    assert_eq!((e.ts, e.line.as_str()), (1_000_000_002, "x\u{fffd}y"));
    assert_eq!(e.metadata, vec![("n".to_string(), "\u{fffd}".to_string())]);
    // Still malformed protobuf when the bytes are not a message at all.
    assert!(decode(&snappy(&[0x0a, 0x64, 0xff]), PROTO, None, V1).is_err());
}
