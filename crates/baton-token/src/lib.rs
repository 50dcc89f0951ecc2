//! Keystone-compatible Fernet tokens: the Fernet envelope, the msgpack payload versions and the key repository.
