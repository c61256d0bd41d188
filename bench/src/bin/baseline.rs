//! The baseline of `cargo xtask bench`: the least an axum server can do for a
//! request on this machine — answer a fixed JSON body of a given size. The
//! mock's figures are printed as ratios to this one, measured in the same run.
//!
//! Usage: `baseline PORT BODY_BYTES`

use axum::http::header;
use axum::routing::get;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(port), Some(size)) =
        (args.get(1).and_then(|p| p.parse::<u16>().ok()), args.get(2).and_then(|s| s.parse::<usize>().ok()))
    else {
        eprintln!("usage: baseline PORT BODY_BYTES");
        return std::process::ExitCode::from(2);
    };
    // A JSON string padded to the wanted size: {"data":"xxxx…"}.
    let body = format!("{{\"data\":\"{}\"}}", "x".repeat(size.saturating_sub(11)));
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("baseline: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let app = axum::Router::new().fallback(get(move || {
            let body = body.clone();
            async move { ([(header::CONTENT_TYPE, "application/json; charset=utf-8")], body) }
        }));
        match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(listener) => {
                println!("baseline listening on http://127.0.0.1:{port}");
                let _ = axum::serve(listener, app).await;
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("baseline: cannot listen on {port}: {e}");
                std::process::ExitCode::from(1)
            }
        }
    })
}
