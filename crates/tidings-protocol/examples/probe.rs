//! Scratch probe (temporary): prints what the decoder answers for each line "client|server<TAB>text".
#![allow(clippy::print_stdout, clippy::unwrap_used)]
use std::io::BufRead;
fn main() {
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let Some((side, text)) = line.split_once('\t') else { continue };
        let text = text.replace("\\n", "\n");
        let r = if side == "client" {
            tidings_protocol::decode_client(&text).map(|e| tidings_protocol::encode(&e))
        } else {
            tidings_protocol::decode_server(&text).map(|e| tidings_protocol::encode(&e))
        };
        match r {
            Ok(enc) => println!("OK {}", &enc[..enc.len().min(300)]),
            Err(e) => println!(
                "ERR rid={:?} {}",
                e.request_id.as_ref().map(|r| r.as_str().to_owned()),
                serde_json::to_string(&e.error).unwrap()
            ),
        }
    }
}
