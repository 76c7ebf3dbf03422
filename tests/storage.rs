//! `s3://` locations end to end against a real SeaweedFS (tests/weed.rs).

use flowpack_action::storage::{MAX_OBJECT_BYTES, S3Location, SINGLE_PUT_MAX, StorageError, Store};

use crate::weed::{self, Weed};

#[test]
fn the_test_store_starts_refuses_anonymous_reads_and_stops() {
    let store = Weed::start();
    let url = format!("{}/{}/", store.endpoint, store.bucket);
    assert_eq!(weed::curl(&[&url]), "200", "a signed listing");
    let anonymous = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &url])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&anonymous.stdout), "403");
}

fn vars(store: &Weed) -> impl Fn(&str) -> Option<String> + use<> {
    let vars: std::collections::HashMap<&'static str, String> = store.env().into_iter().collect();
    move |name: &str| vars.get(name).cloned()
}

fn open(store: &Weed, prefix: &str) -> Store {
    Store::open_with(
        &S3Location::parse(&store.url(prefix)).unwrap(),
        None,
        &vars(store),
    )
    .unwrap()
}

#[test]
fn objects_are_written_whole_listed_read_back_and_never_replaced_unasked() {
    let store = Weed::start();
    let s3 = open(&store, "p");
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    std::fs::write(&small, b"hello object storage").unwrap();
    // Above the single-PUT bound: a multipart upload of two parts.
    let big = dir.path().join("big");
    let big_bytes: Vec<u8> = (0..(SINGLE_PUT_MAX as usize + 1234))
        .map(|i| (i % 251) as u8)
        .collect();
    std::fs::write(&big, &big_bytes).unwrap();

    s3.put_file(&small, "p/small", false).unwrap();
    s3.put_file(&big, "p/big", false).unwrap();
    assert_eq!(s3.head("p/small").unwrap(), Some(20));
    assert_eq!(s3.head("p/absent").unwrap(), None);
    let listed: Vec<(String, u64)> = s3
        .list("p/")
        .unwrap()
        .into_iter()
        .map(|o| (o.key, o.size))
        .collect();
    assert_eq!(
        listed,
        [
            ("p/big".to_string(), big_bytes.len() as u64),
            ("p/small".to_string(), 20)
        ]
    );

    let got = s3
        .get_to_temp("p/big", dir.path(), MAX_OBJECT_BYTES)
        .unwrap();
    assert_eq!(std::fs::read(got.path()).unwrap(), big_bytes);
    let got = s3
        .get_to_temp("p/small", dir.path(), MAX_OBJECT_BYTES)
        .unwrap();
    assert_eq!(std::fs::read(got.path()).unwrap(), b"hello object storage");
    // Within the limit only.
    let err = s3.get_to_temp("p/small", dir.path(), 10).unwrap_err();
    assert!(matches!(err, StorageError::Mismatch { .. }), "{err}");

    // Never replaced unless asked.
    std::fs::write(&small, b"other").unwrap();
    let err = s3.put_file(&small, "p/small", false).unwrap_err();
    assert!(matches!(err, StorageError::Exists { .. }), "{err}");
    let err = s3.put_file(&small, "p/big", false).unwrap_err();
    assert!(matches!(err, StorageError::Exists { .. }), "{err}");
    s3.put_file(&small, "p/small", true).unwrap();
    let got = s3
        .get_to_temp("p/small", dir.path(), MAX_OBJECT_BYTES)
        .unwrap();
    assert_eq!(std::fs::read(got.path()).unwrap(), b"other");

    s3.delete("p/small").unwrap();
    s3.delete("p/small").unwrap();
    assert_eq!(s3.head("p/small").unwrap(), None);
    let err = s3
        .get_to_temp("p/small", dir.path(), MAX_OBJECT_BYTES)
        .unwrap_err();
    assert!(matches!(err, StorageError::NotFound { .. }), "{err}");
}

#[test]
fn wrong_credentials_and_a_missing_bucket_are_named() {
    let store = Weed::start();
    let loc = S3Location::parse(&store.url("p")).unwrap();
    let good = vars(&store);
    let wrong_secret = |name: &str| {
        if name == "AWS_SECRET_ACCESS_KEY" {
            Some("not-the-secret".to_string())
        } else {
            good(name)
        }
    };
    let s3 = Store::open_with(&loc, None, &wrong_secret).unwrap();
    let err = s3.list("p/").unwrap_err();
    assert!(matches!(err, StorageError::Credentials { .. }), "{err}");
    assert!(err.to_string().contains("AWS_SECRET_ACCESS_KEY"), "{err}");
    assert!(!err.to_string().contains("not-the-secret"), "{err}");

    let missing = S3Location::parse("s3://no-such-bucket/p").unwrap();
    let s3 = Store::open_with(&missing, None, &good).unwrap();
    let err = s3.list("p/").unwrap_err();
    assert!(matches!(err, StorageError::NoSuchBucket { .. }), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"x").unwrap();
    let err = s3.put_file(&file, "p/f", false).unwrap_err();
    assert!(matches!(err, StorageError::NoSuchBucket { .. }), "{err}");
}
