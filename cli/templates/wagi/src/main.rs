//! {{name}}: a WAGI app (CGI over WASI). The request arrives as CGI
//! environment variables (`REQUEST_METHOD`, `PATH_INFO`, `QUERY_STRING`,
//! …) with its body on stdin; the response is written to stdout: headers
//! (`Content-Type`, optionally `Status: 404 Not Found`), a blank line, the
//! body. Deploy it with `wpaas deploy`, or run it locally with `wpaas up`.

use std::env;
use std::io::{self, Write};

fn main() -> io::Result<()> {
    let var = |name: &str| env::var(name).unwrap_or_default();
    // `GREETING` comes from `wpaas config:set`.
    let greeting = env::var("GREETING").unwrap_or_else(|_| "Hello".to_string());
    let mut out = io::stdout().lock();
    write!(
        out,
        "Content-Type: text/plain\n\n{greeting} from {{name}}! ({} {})\n",
        var("REQUEST_METHOD"),
        var("PATH_INFO"),
    )?;
    out.flush()
}
