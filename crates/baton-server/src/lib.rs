//! The identity HTTP API: version discovery, token issue/validate/revoke, policy.
