//! The engine's contract, written against `dyn KvEngine` only: every
//! backend runs each case (see [`engine_tests`]) with a function that opens
//! it at a place (a directory; a backend that keeps data elsewhere derives
//! its location from the path), so that opening the same place again sees
//! the same data.

use std::path::Path;
use std::sync::Arc;

use super::*;

/// Opens a backend at a place with quotas.
pub type Open<'a> = &'a dyn Fn(&Path, Quotas) -> Arc<dyn KvEngine>;

/// One `#[test]` per case of the suite, each opening the backend with
/// `$open` (a `fn(&Path, Quotas) -> Arc<dyn KvEngine>`).
macro_rules! engine_tests {
    ($open:expr) => {
        #[test]
        fn get_set_delete_exists_and_usage() {
            $crate::data::tests::get_set_delete_exists_and_usage(&$open);
        }
        #[test]
        fn buckets_are_per_app_and_must_exist() {
            $crate::data::tests::buckets_are_per_app_and_must_exist(&$open);
        }
        #[test]
        fn bad_names_and_keys_are_refused() {
            $crate::data::tests::bad_names_and_keys_are_refused(&$open);
        }
        #[test]
        fn list_keys_pages_in_order() {
            $crate::data::tests::list_keys_pages_in_order(&$open);
        }
        #[test]
        fn increment_counts_in_decimal_and_refuses_non_numbers() {
            $crate::data::tests::increment_counts_in_decimal_and_refuses_non_numbers(&$open);
        }
        #[test]
        fn concurrent_increments_are_exact() {
            $crate::data::tests::concurrent_increments_are_exact(&$open);
        }
        #[test]
        fn compare_and_swap_races_have_one_winner_each_round() {
            $crate::data::tests::compare_and_swap_races_have_one_winner_each_round(&$open);
        }
        #[test]
        fn batches_are_all_or_nothing() {
            $crate::data::tests::batches_are_all_or_nothing(&$open);
        }
        #[test]
        fn quotas_give_clear_errors_and_deletes_still_work() {
            $crate::data::tests::quotas_give_clear_errors_and_deletes_still_work(&$open);
        }
        #[test]
        fn data_survives_reopening_and_delete_app_removes_it() {
            $crate::data::tests::data_survives_reopening_and_delete_app_removes_it(&$open);
        }
    };
}
pub(crate) use engine_tests;

fn engine(open: Open, quotas: Quotas) -> (tempfile::TempDir, Arc<dyn KvEngine>) {
    let dir = tempfile::tempdir().unwrap();
    let kv = open(dir.path(), quotas);
    (dir, kv)
}

fn with_bucket(open: Open) -> (tempfile::TempDir, Arc<dyn KvEngine>) {
    let (dir, kv) = engine(open, Quotas::default());
    assert!(kv.create_bucket("app", "b").unwrap());
    assert!(!kv.create_bucket("app", "b").unwrap());
    (dir, kv)
}

pub fn get_set_delete_exists_and_usage(open: Open) {
    let (_dir, kv) = with_bucket(open);
    assert_eq!(kv.get("app", "b", "k").unwrap(), None);
    kv.set("app", "b", "k", b"hello").unwrap();
    assert_eq!(
        kv.get("app", "b", "k").unwrap().as_deref(),
        Some(&b"hello"[..])
    );
    assert!(kv.exists("app", "b", "k").unwrap());
    kv.set("app", "b", "k", b"hi").unwrap();
    kv.set("app", "b", "other", b"x").unwrap();
    let info = &kv.buckets("app").unwrap()[0];
    assert_eq!(
        (info.name.as_str(), info.keys, info.bytes),
        ("b", 2, 1 + 2 + 5 + 1)
    );
    kv.delete("app", "b", "k").unwrap();
    kv.delete("app", "b", "k").unwrap();
    assert!(!kv.exists("app", "b", "k").unwrap());
    let info = &kv.buckets("app").unwrap()[0];
    assert_eq!((info.keys, info.bytes), (1, 6));
}

pub fn buckets_are_per_app_and_must_exist(open: Open) {
    let (_dir, kv) = with_bucket(open);
    kv.set("app", "b", "k", b"1").unwrap();
    assert_eq!(
        kv.get("other", "b", "k"),
        Err(KvError::NoSuchBucket("b".into()))
    );
    assert_eq!(
        kv.set("app", "nope", "k", b"1"),
        Err(KvError::NoSuchBucket("nope".into()))
    );
    kv.create_bucket("other", "b").unwrap();
    assert_eq!(kv.get("other", "b", "k").unwrap(), None);
    // A bucket whose name extends another's holds its own keys.
    kv.create_bucket("app", "b2").unwrap();
    assert_eq!(
        kv.list_keys("app", "b2", None, 10).unwrap().keys,
        Vec::<String>::new()
    );
    kv.delete_bucket("app", "b").unwrap();
    assert!(!kv.has_bucket("app", "b").unwrap());
    assert!(kv.has_bucket("app", "b2").unwrap());
    kv.create_bucket("app", "b").unwrap();
    assert_eq!(kv.get("app", "b", "k").unwrap(), None);
}

pub fn bad_names_and_keys_are_refused(open: Open) {
    let (_dir, kv) = with_bucket(open);
    for bad in ["", "-x", "Upper", "a/b", "a\0b", &"x".repeat(64)] {
        assert!(matches!(
            kv.create_bucket("app", bad),
            Err(KvError::InvalidBucketName(_))
        ));
    }
    // Any string is a key, the empty one too (as in wasmtime's
    // `-Skeyvalue`); only its length is limited.
    kv.set("app", "b", "", b"v").unwrap();
    assert_eq!(kv.get("app", "b", "").unwrap(), Some(b"v".to_vec()));
    assert_eq!(kv.list_keys("app", "b", None, 10).unwrap().keys, [""]);
    let long = "k".repeat(2000);
    assert!(matches!(
        kv.set("app", "b", &long, b"v"),
        Err(KvError::InvalidKey(_))
    ));
    assert!(matches!(
        kv.get("app", "b", &long),
        Err(KvError::InvalidKey(_))
    ));
}

pub fn list_keys_pages_in_order(open: Open) {
    let (_dir, kv) = with_bucket(open);
    for i in (0..25).rev() {
        kv.set("app", "b", &format!("k{i:02}"), b"v").unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = kv.list_keys("app", "b", cursor, 10).unwrap();
        assert!(page.keys.len() <= 10);
        seen.extend(page.keys);
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25).map(|i| format!("k{i:02}")).collect();
    assert_eq!(seen, expected);
    assert!(kv
        .list_keys("app", "b", Some(u64::MAX), 10)
        .unwrap()
        .keys
        .is_empty());
}

pub fn increment_counts_in_decimal_and_refuses_non_numbers(open: Open) {
    let (_dir, kv) = with_bucket(open);
    assert_eq!(kv.increment("app", "b", "n", 1).unwrap(), 1);
    assert_eq!(kv.increment("app", "b", "n", 41).unwrap(), 42);
    assert_eq!(
        kv.get("app", "b", "n").unwrap().as_deref(),
        Some(&b"42"[..])
    );
    kv.set("app", "b", "s", b"abc").unwrap();
    assert_eq!(
        kv.increment("app", "b", "s", 1),
        Err(KvError::NotANumber("s".into()))
    );
    kv.set("app", "b", "max", u64::MAX.to_string().as_bytes())
        .unwrap();
    assert_eq!(
        kv.increment("app", "b", "max", 1),
        Err(KvError::Overflow("max".into()))
    );
}

pub fn concurrent_increments_are_exact(open: Open) {
    let (_dir, kv) = with_bucket(open);
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let kv = kv.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    kv.increment("app", "b", "n", 1).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        kv.get("app", "b", "n").unwrap().as_deref(),
        Some(&b"800"[..])
    );
}

pub fn compare_and_swap_races_have_one_winner_each_round(open: Open) {
    let (_dir, kv) = with_bucket(open);
    assert!(kv.compare_and_swap("app", "b", "k", None, b"0").unwrap());
    assert!(!kv.compare_and_swap("app", "b", "k", None, b"0").unwrap());
    // Each thread increments through a CAS loop; any lost update would
    // leave the total short.
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let kv = kv.clone();
            std::thread::spawn(move || {
                let mut wins = 0;
                for _ in 0..25 {
                    loop {
                        let old = kv.get("app", "b", "k").unwrap().unwrap();
                        let n: u64 = std::str::from_utf8(&old).unwrap().parse().unwrap();
                        let new = (n + 1).to_string();
                        if kv
                            .compare_and_swap("app", "b", "k", Some(&old), new.as_bytes())
                            .unwrap()
                        {
                            wins += 1;
                            break;
                        }
                    }
                }
                wins
            })
        })
        .collect();
    let wins: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(wins, 200);
    assert_eq!(
        kv.get("app", "b", "k").unwrap().as_deref(),
        Some(&b"200"[..])
    );
}

pub fn batches_are_all_or_nothing(open: Open) {
    let quotas = Quotas {
        max_keys: 3,
        ..Quotas::default()
    };
    let (_dir, kv) = engine(open, quotas);
    kv.create_bucket("app", "b").unwrap();
    let entries: Vec<(String, Vec<u8>)> = ["a", "b", "a"]
        .iter()
        .map(|k| (k.to_string(), b"v".to_vec()))
        .collect();
    kv.set_many("app", "b", &entries).unwrap();
    assert_eq!(kv.buckets("app").unwrap()[0].keys, 2);
    let got = kv
        .get_many("app", "b", &["a".into(), "zz".into(), "b".into()])
        .unwrap();
    assert_eq!(got, vec![Some(b"v".to_vec()), None, Some(b"v".to_vec())]);
    let too_many: Vec<(String, Vec<u8>)> = ["c", "d"]
        .iter()
        .map(|k| (k.to_string(), b"v".to_vec()))
        .collect();
    assert!(matches!(
        kv.set_many("app", "b", &too_many),
        Err(KvError::QuotaExceeded(_))
    ));
    assert!(!kv.exists("app", "b", "c").unwrap());
    kv.delete_many("app", "b", &["a".into(), "b".into(), "nope".into()])
        .unwrap();
    assert_eq!(kv.buckets("app").unwrap()[0].keys, 0);
}

pub fn quotas_give_clear_errors_and_deletes_still_work(open: Open) {
    let quotas = Quotas {
        max_keys: 100,
        max_bytes: 64,
        max_value_bytes: 16,
        max_key_bytes: 8,
        max_buckets: 2,
    };
    let (_dir, kv) = engine(open, quotas);
    kv.create_bucket("app", "a").unwrap();
    kv.create_bucket("app", "b").unwrap();
    let err = kv.create_bucket("app", "c").unwrap_err();
    assert!(err.to_string().contains("limit is 2"), "{err}");
    let err = kv.set("app", "a", "k", &[0; 17]).unwrap_err();
    assert!(err.to_string().contains("limit is 16 per value"), "{err}");
    // Bytes count over all the app's buckets.
    kv.set("app", "a", "k1", &[0; 16]).unwrap();
    kv.set("app", "b", "k2", &[0; 16]).unwrap();
    kv.set("app", "a", "k3", &[0; 16]).unwrap();
    let err = kv.set("app", "b", "k4", &[0; 16]).unwrap_err();
    assert!(matches!(err, KvError::QuotaExceeded(_)), "{err}");
    assert!(err.to_string().contains("limit of 64"), "{err}");
    // Shrinking a value is allowed at the limit, and so is deleting.
    kv.set("app", "a", "k1", b"x").unwrap();
    kv.delete("app", "a", "k3").unwrap();
    kv.set("app", "b", "k4", &[0; 16]).unwrap();
}

pub fn data_survives_reopening_and_delete_app_removes_it(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    {
        let kv = open(dir.path(), Quotas::default());
        kv.create_bucket("app", "b").unwrap();
        kv.create_bucket("app2", "b").unwrap();
        kv.set("app", "b", "k", b"durable").unwrap();
        kv.set("app2", "b", "k", b"kept").unwrap();
    }
    let kv = open(dir.path(), Quotas::default());
    assert_eq!(
        kv.get("app", "b", "k").unwrap().as_deref(),
        Some(&b"durable"[..])
    );
    kv.delete_app("app").unwrap();
    assert!(kv.buckets("app").unwrap().is_empty());
    assert_eq!(
        kv.get("app", "b", "k"),
        Err(KvError::NoSuchBucket("b".into()))
    );
    assert_eq!(
        kv.get("app2", "b", "k").unwrap().as_deref(),
        Some(&b"kept"[..])
    );
}
