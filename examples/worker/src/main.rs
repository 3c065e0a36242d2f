//! A long-running process type (`worker: worker.wasm`) and a one-off
//! command in one program.
//!
//! | invocation            | behaviour                                                  |
//! |-----------------------|------------------------------------------------------------|
//! | `worker.wasm`         | prints `heartbeat N from $DYNO` every 100 ms, forever      |
//! | … with `EXIT_AFTER=k` | exits with status 3 after k heartbeats (a crashing worker) |
//! | `worker.wasm once C`  | prints its arguments, `GREETING` and `DYNO`, exits with C  |

use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let greeting = std::env::var("GREETING").unwrap_or_else(|_| "unset".into());
    if args.get(1).map(String::as_str) == Some("once") {
        let code: i32 = args.get(2).and_then(|c| c.parse().ok()).unwrap_or(0);
        println!("once: args={:?} GREETING={greeting}", &args[1..]);
        if let Ok(dyno) = std::env::var("DYNO") {
            eprintln!("once: running as {dyno}");
        }
        eprintln!("once: exiting with status {code}");
        std::process::exit(code);
    }
    let dyno = std::env::var("DYNO").unwrap_or_else(|_| "?".into());
    let exit_after: Option<u64> = std::env::var("EXIT_AFTER")
        .ok()
        .and_then(|v| v.parse().ok());
    for n in 1.. {
        println!("heartbeat {n} from {dyno} GREETING={greeting}");
        if exit_after == Some(n) {
            eprintln!("exiting after {n} heartbeats");
            std::process::exit(3);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
