//! The language server's input path: any byte stream a client sends is
//! read frame by frame (`Content-Length` headers, oversized and malformed
//! frames skipped) and every body is validated as one JSON-RPC message.
//! Nothing may panic or fail to end; each frame is a message, an answer or
//! nothing.
#![no_main]

use arca::server::framing::{Frame, FrameReader, validate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A body on its own, as the validator sees it.
    let _ = validate(data);
    // The same bytes as a stream.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut reader = FrameReader::new(data);
        let mut frames = 0usize;
        while let Some(frame) = reader.next().await {
            frames += 1;
            // Every frame consumes input: a stream of n bytes has at most
            // n + 1 frames.
            assert!(frames <= data.len() + 1, "the reader does not advance");
            if let Frame::Message(body) = frame {
                assert!(validate(&body).is_ok(), "a passed message fails validation");
            }
        }
    });
});
