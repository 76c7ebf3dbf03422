//! `s3://` locations end to end against a real SeaweedFS (tests/weed.rs).

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
