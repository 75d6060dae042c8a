//! Fuzz target for the S3 XML request parsers (CompleteMultipartUpload,
//! Delete, CreateBucketConfiguration): no panic on any input, and what they
//! accept respects the documented bounds. Keys also go through a round trip:
//! rendered (escaped, or percent-encoded for `encoding-type=url`) and read
//! back, they must come out unchanged.
//!
//! ```text
//! scripts/fuzz 60 s3_xml
//! ```
#![no_main]

use libfuzzer_sys::fuzz_target;
use nuage_fuzz::xml::{
    CompleteMultipartUpload, CreateBucketConfiguration, Delete, EncodingType,
    InitiateMultipartUploadResult, ListBucketResult, ListVersion, MAX_DELETE_OBJECTS,
    MAX_PART_NUMBER,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = CompleteMultipartUpload::from_xml(data) {
        assert!(!c.parts.is_empty() && c.parts.len() <= MAX_PART_NUMBER as usize);
        for p in &c.parts {
            assert!((1..=MAX_PART_NUMBER).contains(&p.part_number));
            assert!(!p.etag.is_empty() && !p.etag.contains('"'));
        }
    }
    if let Ok(d) = Delete::from_xml(data) {
        assert!(!d.objects.is_empty() && d.objects.len() <= MAX_DELETE_OBJECTS);
        for o in d.objects.iter().take(4) {
            round_trip(&o.key);
        }
    }
    let _ = CreateBucketConfiguration::from_xml(data);

    // Any text as a key (XML cannot carry NUL even as a reference).
    let text = String::from_utf8_lossy(data).replace('\0', "");
    round_trip(&text);
});

/// Escaped into an S3 document and parsed back, a key is unchanged; so it
/// is when percent-encoded and decoded.
fn round_trip(key: &str) {
    let rendered = InitiateMultipartUploadResult {
        bucket: "b".into(),
        key: key.into(),
        upload_id: "u".into(),
    }
    .to_xml();
    let escaped = rendered
        .split_once("<Key>")
        .and_then(|(_, rest)| rest.split_once("</Key>"))
        .map(|(k, _)| k)
        .expect("the rendered document has a Key");
    let body = format!("<Delete><Object><Key>{escaped}</Key></Object></Delete>");
    if !key.contains('\0') {
        match Delete::from_xml(body.as_bytes()) {
            Ok(d) => assert_eq!(d.objects[0].key, key, "{body}"),
            Err(e) => panic!("rendered key does not parse back: {e}: {body}"),
        }
    }

    let listing = ListBucketResult {
        name: "b".into(),
        prefix: key.into(),
        delimiter: Some(key.into()),
        max_keys: 1000,
        is_truncated: true,
        encoding_type: Some(EncodingType::Url),
        contents: vec![],
        common_prefixes: vec![key.into()],
        version: ListVersion::V1 {
            marker: key.into(),
            next_marker: Some(key.into()),
        },
    }
    .to_xml();
    let encoded = listing
        .split_once("<Prefix>")
        .and_then(|(_, rest)| rest.split_once("</Prefix>"))
        .map(|(k, _)| k)
        .expect("the rendered listing has a Prefix");
    assert!(encoded
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.~/%".contains(&b)));
    assert_eq!(percent_decode(encoded).as_deref(), Some(key.as_bytes()));
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}
