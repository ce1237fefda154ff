//! The protocol decoder on arbitrary text, from both sides: it never panics, every error carries the spec's
//! code, and whatever it accepts encodes to text it decodes again to the same message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings_protocol::{
    decode_client, decode_server, encode, peek_request_id, DecodeError, Envelope, ServerMessage, SECONDS_BELOW,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = peek_request_id(text);
    match decode_client(text) {
        Ok(envelope) => {
            let mut again = decode_client(&encode(&envelope)).expect("an encoded client message decodes");
            // Timestamps below 10^11 are seconds (docs/protocol.md, section 2), so a client's tiny timestamp, made
            // milliseconds by the first decode, reads as seconds again: the one part that may change.
            if envelope.timestamp < SECONDS_BELOW as u64 {
                again.timestamp = envelope.timestamp;
            }
            assert_eq!(again, envelope, "a client message changed through encode and decode");
        }
        Err(error) => assert_error_is_whole(error),
    }
    match decode_server(text) {
        Ok(envelope) => {
            let mut again = decode_server(&encode(&envelope)).expect("an encoded server message decodes");
            if envelope.timestamp < SECONDS_BELOW as u64 {
                again.timestamp = envelope.timestamp;
            }
            assert_eq!(again, envelope, "a server message changed through encode and decode");
        }
        Err(error) => assert_error_is_whole(error),
    }
});

/// An error names a message and every bad field a JSON pointer and a reason, and it can be sent: the `error`
/// message that carries it decodes on the client's side.
fn assert_error_is_whole(error: DecodeError) {
    let payload = &error.error;
    assert!(!payload.message.is_empty(), "an error without a message: {payload:?}");
    for field in payload.field_errors() {
        assert!(field.pointer.is_empty() || field.pointer.starts_with('/'), "not a JSON pointer: {field:?}");
        assert!(!field.reason.is_empty(), "a field error without a reason: {field:?}");
    }
    let sent = encode(&Envelope::now(error.request_id, ServerMessage::Error(error.error)));
    decode_server(&sent).expect("an error the decoder gives can be sent");
}
