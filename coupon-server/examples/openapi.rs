//! Prints the OpenAPI 3.1 document of the HTTP API, as the server serves it at `/openapi.json`:
//! `cargo run -p coupon-server --example openapi > openapi.json`.

fn main() -> Result<(), serde_json::Error> {
    let document = serde_json::to_string_pretty(&coupon_server::openapi::document())?;
    println!("{document}");
    Ok(())
}
