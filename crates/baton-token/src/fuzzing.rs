//! Entry points for the fuzz targets in `fuzz/` and for replaying their corpora in the normal
//! test suite (`tests/token.rs`): each takes arbitrary bytes, must never panic, and asserts the
//! properties that hold for any input. Not part of the crate's API.

use crate::fernet::{FernetKey, KeySet};
use crate::payload::PayloadCodec;

/// A fixed, non-null key: the fuzzer cannot forge its HMAC, so junk input only exercises the
/// checks made before any cryptography, and the round trips below exercise the rest.
fn fuzz_keys() -> KeySet {
    let mut bytes = [0u8; 32];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::try_from(i).unwrap_or(0).wrapping_mul(7).wrapping_add(1);
    }
    let key = FernetKey::from_bytes(bytes).expect("the fuzzing key is not the null key");
    KeySet::new(vec![key]).expect("one key")
}

/// The Fernet envelope: `data` as token text (refused without panic), as key-file text, and as
/// a plaintext that must come back from `decrypt(encrypt_at(..))` with its timestamp; every
/// one-byte change of that token's text is refused or yields the same plaintext (base64
/// spellings that decode to the same bytes do not exist: trailing bits must be zero).
pub fn fernet_envelope(data: &[u8]) {
    let keys = fuzz_keys();
    let text = String::from_utf8_lossy(data);
    if let Ok(d) = keys.decrypt(&text) {
        panic!("a token the fuzzer made up decrypted: {d:?}");
    }
    let _ = FernetKey::from_base64(&text);

    // Past 4 KiB the token would pass MAX_TOKEN_LENGTH, which decrypt refuses by design.
    let (head, plaintext) = data.split_at(data.len().min(9));
    let plaintext = &plaintext[..plaintext.len().min(4096)];
    let mut stamp = [0u8; 8];
    for (s, h) in stamp.iter_mut().zip(head) {
        *s = *h;
    }
    let timestamp = u64::from_be_bytes(stamp);
    let flip = head.get(8).copied().unwrap_or(0);
    let token = keys.encrypt_at(plaintext, timestamp, [flip; 16]);
    let back = keys.decrypt(&token).expect("our own token decrypts");
    assert_eq!(back.payload, plaintext);
    assert_eq!(back.timestamp, timestamp);
    assert!(
        keys.decrypt(&format!("{token}=")).is_ok(),
        "padding is tolerated"
    );

    let mut tampered = token.into_bytes();
    let at = usize::from(flip) % tampered.len();
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8_lossy(&tampered);
    assert!(
        keys.decrypt(&tampered).is_err(),
        "a changed token must not decrypt"
    );
}

/// Every payload version's decoder: never panics; whatever decodes and re-encodes decodes to
/// the same payload again (one encode normalises ids, as Keystone's does, then it is stable).
pub fn token_payload(data: &[u8]) {
    let codec = PayloadCodec::keystone_defaults();
    let Ok(payload) = codec.decode(data) else {
        return;
    };
    let Ok(encoded) = codec.encode(&payload) else {
        return;
    };
    let again = codec.decode(&encoded).expect("an encoded payload decodes");
    assert_eq!(again.payload_version(), payload.payload_version());
    let encoded_again = codec.encode(&again).expect("a decoded payload encodes");
    assert_eq!(
        encoded_again, encoded,
        "encode(decode(encode(p))) == encode(p)"
    );
    assert_eq!(codec.decode(&encoded_again).ok(), Some(again));
}
