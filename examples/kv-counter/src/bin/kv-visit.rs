//! A command beside the web process (`wpaas run -- kv-visit.wasm`, or a
//! Procfile type): counts a visit in the same bucket and prints
//! `visits=N`. Every process of an app shares its buckets.

use wpaas_sdk::kv::Bucket;

fn main() {
    match Bucket::open("counter").and_then(|b| b.increment("visits", 1)) {
        Ok(n) => println!("visits={n}"),
        Err(e) => {
            eprintln!("kv-visit: {e}");
            std::process::exit(1);
        }
    }
}
